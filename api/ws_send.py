"""Writing several WebSocket messages in one socket write, below Hypercorn's per-message path.

An ASGI ``websocket.send`` carries one message, and under Hypercorn each one is its own trip
through ``WSStream.app_send``, h11 and a locked, shielded ``send_all``: 75–110 µs of the
server's CPU a message here, which capped a hub near 10,000 fleet frames a second. Framed
with the same wsproto connection and handed to the same stream in one piece, ten messages
cost about 12 µs each (docs/performance.md has the measurement). When the client
negotiated no extension, a frame is the same bytes for every session, so the frame of an
event going to many sessions is built once (:func:`shared_text_frame`, cached by the
identity of the text, which the sessions share).

:class:`BatchedWebsocketSend` is the ASGI wrapper that finds Hypercorn's WebSocket stream behind
the ``send`` callable it is given and puts a :data:`~actors.sockets.connection.SendTexts` for it
into the scope's extensions (:data:`SEND_TEXTS`). :func:`sender_for` is what a socket handler
uses (through :meth:`api.socket_port.SocketPort.sender`; :func:`socket_sender` for a Quart
route): that writer, or, under any other server (Quart's test client, a Hypercorn whose
internals moved), one message send per message, which is slower and otherwise the same.

The writer keeps Hypercorn's rules. With an extension offered, the bytes come from the
stream's own wsproto connection (so permessage-deflate, if negotiated, still applies). Every
write takes the stream's own send path (the connection's send lock, TLS). Once the socket is
closing, a write goes through Hypercorn's per-message path, so it is dropped or refused
exactly as ``websocket.send`` would be. Cancelling a write can cut it short exactly as
cancelling ``websocket.send`` can (Hypercorn shields the socket write itself).
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from hypercorn.protocol.events import Data
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from quart import websocket
from wsproto.connection import ConnectionState
from wsproto.events import TextMessage
from wsproto.utilities import LocalProtocolError

from actors.sockets.connection import SendTexts
from api.asgi_scope import Scope
from api.edge import ASGIApp
from hub.identity_cache import IdentityCache

SEND_TEXTS = "tvm.websocket.send_texts"
"""The scope extension that holds the batched writer of this socket."""

ASGISend = Callable[[dict[str, Any]], Awaitable[None]]


class BatchedWebsocketSend:
    """ASGI wrapper: gives each WebSocket scope served by Hypercorn a batched writer."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[..., Awaitable[Any]],
        send: Callable[..., Awaitable[Any]],
    ) -> None:
        if scope["type"] == "websocket":
            writer = hypercorn_writer(send)
            if writer is not None:
                # Hypercorn builds a scope per connection and never reuses it: adding the
                # extension in place spares a copy per socket (10,000 idle sockets hold theirs).
                extensions = scope.get("extensions")
                if extensions is None:
                    extensions = scope["extensions"] = {}
                extensions[SEND_TEXTS] = writer
                try:
                    await self._app(scope, receive, send)
                finally:
                    # The stream holds the scope, the writer the stream: without this cycle
                    # a closed socket's objects are freed at once, not at a full collection.
                    del extensions[SEND_TEXTS]
                return
        await self._app(scope, receive, send)


def hypercorn_writer(send: ASGISend) -> SendTexts | None:
    """The batched writer of the Hypercorn stream behind ``send``; None if there is none."""
    stream = getattr(send, "__self__", None)
    if not isinstance(stream, WSStream):
        return None
    return _StreamWriter(stream, send)


class _StreamWriter:
    """Frames the texts (shared frames when no extension was offered, else the stream's
    wsproto connection) and writes them to the stream as one piece."""

    __slots__ = ("_send", "_stream")

    def __init__(self, stream: WSStream, send: ASGISend) -> None:
        self._stream = stream
        self._send = send

    async def __call__(self, texts: Sequence[str]) -> None:
        stream = self._stream
        if stream.closed or stream.state is not ASGIWebsocketState.CONNECTED:
            await self._one_by_one(texts)  # whatever Hypercorn does with a send at this point
            return
        connection = stream.connection
        if stream.handshake.extensions is None and connection.state is ConnectionState.OPEN:
            data = b"".join([shared_text_frame(text) for text in texts])  # nothing to negotiate
        else:
            try:
                data = b"".join([connection.send(TextMessage(data=text)) for text in texts])
            except LocalProtocolError:  # wsproto is closing; Hypercorn drops such a send too
                return
        await stream.send(Data(stream_id=stream.stream_id, data=data))

    async def _one_by_one(self, texts: Sequence[str]) -> None:
        for text in texts:
            await self._send({"type": "websocket.send", "text": text})


def text_frame(text: str) -> bytes:
    """``text`` as one final, unmasked text frame with no extension bits (RFC 6455 §5.2)."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 0x10000:
        return struct.pack("!BBH", 0x81, 126, length) + payload
    return struct.pack("!BBQ", 0x81, 127, length) + payload


_SHARED_FRAME_CHARS = 64 * 1024  # larger texts (a session's own snapshot) are not kept
_frames: IdentityCache[str, bytes] = IdentityCache(4096)


def shared_text_frame(text: str) -> bytes:
    """:func:`text_frame`, built once per text object however many sockets it goes to.

    The cache holds the text, so its identity cannot be reused while the entry lives. Texts
    over 64 Ki characters are framed each time instead of kept.
    """
    if len(text) > _SHARED_FRAME_CHARS:
        return text_frame(text)
    return _frames.get(text, text_frame)


def sender_for(scope: Scope, send_each: SendTexts) -> SendTexts:
    """The writer for the socket of ``scope``: batched under Hypercorn, else ``send_each``."""
    extensions: dict[str, Any] = scope.get("extensions") or {}
    writer: SendTexts | None = extensions.get(SEND_TEXTS)
    return send_each if writer is None else writer


def socket_sender() -> SendTexts:
    """The writer for Quart's current socket: batched under Hypercorn, else one
    ``websocket.send`` a message."""
    return sender_for(cast(Scope, websocket.scope), _send_each)


async def _send_each(texts: Sequence[str]) -> None:
    for text in texts:
        await websocket.send(text)
