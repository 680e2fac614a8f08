"""One WebSocket as the socket handlers see it, whichever way it is served.

The handlers of :mod:`api.ws_vehicle` and :mod:`api.ws_fleet` speak to a :class:`SocketPort`.
:class:`AsgiSocket` is the socket straight from the server's ASGI messages, as the lean path
(:mod:`api.lean_sockets`) serves it; :class:`QuartSocket` is Quart's ``websocket`` of the
routes Quart serves (``TVM_FAST_PATHS=false``). Both read the token, the headers and the query
the same way, and both write batched frames under Hypercorn (:mod:`api.ws_send`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, cast

import trio
from quart import websocket
from quart.wrappers import Websocket

from actors.sockets.connection import PeerGoneError, SendTexts
from api.asgi_scope import Receive, Scope, Send, query_pairs
from api.ws_send import sender_for


class SocketPort(ABC):
    """An accepted (or about to be accepted) WebSocket: its request, its messages."""

    __slots__ = ()

    @property
    @abstractmethod
    def scope(self) -> Scope:
        """The ASGI scope of the socket's opening request."""

    @abstractmethod
    def query_value(self, name: str) -> str | None:
        """The first value of the query parameter ``name`` (None when absent)."""

    @abstractmethod
    def header(self, name: str) -> str | None:
        """The first value of the request header ``name`` (any case; None when absent)."""

    @abstractmethod
    async def accept(self) -> None:
        """Complete the handshake (once; later calls do nothing). Raises PeerGoneError if the
        peer left first."""

    @abstractmethod
    async def receive(self) -> str | bytes:
        """The next message from the peer; blocks until one arrives. Raises PeerGoneError once
        the peer closed the socket or the connection broke."""

    @abstractmethod
    async def send(self, text: str) -> None:
        """Send one text message (dropped once the socket is closed)."""

    @abstractmethod
    async def close(self, code: int, reason: str) -> None:
        """Close with ``code`` and ``reason`` (once; later calls do nothing)."""

    def sender(self) -> SendTexts:
        """The writer of several messages at once: batched under Hypercorn, else one
        :meth:`send` a message."""
        return sender_for(self.scope, self._send_each)

    async def _send_each(self, texts: Sequence[str]) -> None:
        for text in texts:
            await self.send(text)


class AsgiSocket(SocketPort):
    """The socket of an ASGI ``websocket`` scope, served without a framework."""

    __slots__ = ("_accepted", "_closed", "_receive", "_scope", "_send")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._scope = scope
        self._receive = receive
        self._send = send
        self._accepted = False
        self._closed = False

    @property
    def scope(self) -> Scope:
        return self._scope

    def query_value(self, name: str) -> str | None:
        return next((value for key, value in query_pairs(self._scope) if key == name), None)

    def header(self, name: str) -> str | None:
        # Asked once or twice a socket (token, request id): a scan, and no copy kept.
        wanted = name.lower().encode("latin-1")
        for key, value in self._scope["headers"]:
            if key.lower() == wanted:
                return bytes(value).decode("latin-1")
        return None

    async def accept(self) -> None:
        if self._accepted:
            return
        while (message := await self._receive())["type"] != "websocket.connect":
            if message["type"] == "websocket.disconnect":
                raise PeerGoneError
        await self._send({"type": "websocket.accept"})
        self._accepted = True

    async def receive(self) -> str | bytes:
        while True:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text: str | None = message.get("text")
                return text if text is not None else bytes(message.get("bytes") or b"")
            if kind == "websocket.disconnect":
                raise PeerGoneError

    async def send(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


_QUART_PEER_GONE = (
    ConnectionError,
    trio.EndOfChannel,
    trio.ClosedResourceError,
    trio.BrokenResourceError,
)


class QuartSocket(SocketPort):
    """Quart's ``websocket`` of the current socket route."""

    __slots__ = ("_closed", "_websocket")

    def __init__(self) -> None:
        self._websocket: Websocket = cast(Any, websocket)._get_current_object()
        self._closed = False

    @property
    def scope(self) -> Scope:
        return cast(Scope, self._websocket.scope)

    def query_value(self, name: str) -> str | None:
        value: str | None = self._websocket.args.get(name)
        return value

    def header(self, name: str) -> str | None:
        value: str | None = self._websocket.headers.get(name)
        return value

    async def accept(self) -> None:
        await self._websocket.accept()  # Quart accepts once and ignores a second call

    async def receive(self) -> str | bytes:
        try:
            message: str | bytes = await self._websocket.receive()
        except _QUART_PEER_GONE:
            raise PeerGoneError from None
        return message

    async def send(self, text: str) -> None:
        await self._websocket.send(text)

    async def close(self, code: int, reason: str) -> None:
        if self._closed:  # Quart raises on a second close
            return
        self._closed = True
        await self._websocket.close(code, reason)
