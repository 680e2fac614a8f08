"""A minimal WebSocket client: wsproto's state machine over a trio socket, text frames only.

Cheaper than a general client (no background task per connection, no message queue beyond
what one read produces), so one generator process can hold thousands of sockets. One task
reads (:meth:`WsClient.receive_text`); any task may send (sends are serialised by a lock).
Protocol-level pings and the closing handshake are answered inside ``receive_text``.
"""

from __future__ import annotations

from collections import deque
from contextlib import suppress

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

RECEIVE_BYTES = 65536
ABNORMAL_CLOSE = 1006


class WsHandshakeError(Exception):
    """The server refused the upgrade (``status``) or closed before accepting it."""

    def __init__(self, status: int) -> None:
        super().__init__(f"WebSocket upgrade refused ({status})")
        self.status = status


class WsClosedError(Exception):
    """The connection is closed: by the server (its ``code``), by us, or dropped (1006)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed {code} {reason}".strip())
        self.code = code
        self.reason = reason


class SocketRefusedError(Exception):
    """The server answered with an ``error`` frame (``code``) instead of the expected frame."""

    def __init__(self, code: str) -> None:
        super().__init__(f"socket refused: {code}")
        self.code = code


class WsClient:
    """An open client connection."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._protocol = WSConnection(ConnectionType.CLIENT)
        self._send_lock = trio.StrictFIFOLock()
        self._messages: deque[str] = deque()
        self._partial: list[str] = []
        self._accepted = False
        self._rejected: int | None = None
        self.close_code: int | None = None
        self.close_reason = ""

    @classmethod
    async def connect(cls, host: str, port: int, target: str) -> WsClient:
        """Open ``ws://host:port/target`` and finish the upgrade.

        Blocks for the TCP connect and the handshake; the caller sets the deadline. Raises
        ``OSError`` (connect), :class:`WsHandshakeError` or :class:`WsClosedError`.
        """
        stream = await trio.open_tcp_stream(host, port)
        client = cls(stream)
        try:
            await client._send_bytes(client._protocol.send(Request(host=host, target=target)))
            while not client._accepted:
                await client._read()
                if client._rejected is not None:
                    raise WsHandshakeError(client._rejected)
        except BaseException:
            await client._close_stream()
            raise
        return client

    async def send_text(self, text: str) -> None:
        """Send one text message (blocks while the socket's send buffer is full).

        Raises :class:`WsClosedError` once the connection is closed.
        """
        if self._protocol.state is not ConnectionState.OPEN:
            raise WsClosedError(self.close_code or ABNORMAL_CLOSE, self.close_reason)
        await self._send_bytes(self._protocol.send(TextMessage(data=text)))

    async def receive_text(self) -> str:
        """The next text message; blocks until one arrives.

        Raises :class:`WsClosedError` when the connection closes (messages that arrived
        before the close are returned first).
        """
        while not self._messages:
            if self.close_code is not None:
                raise WsClosedError(self.close_code, self.close_reason)
            await self._read()
        return self._messages.popleft()

    async def aclose(self, code: int = 1000) -> None:
        """Start the closing handshake and close the socket (bounded to 1 s, never raises)."""
        with trio.move_on_after(1, shield=True):
            if self._protocol.state is ConnectionState.OPEN:
                with suppress(WsClosedError, OSError, trio.BrokenResourceError):
                    await self._send_bytes(self._protocol.send(CloseConnection(code=code)))
            await self._close_stream()

    async def _close_stream(self) -> None:
        if self.close_code is None:
            self.close_code = ABNORMAL_CLOSE
        with suppress(OSError, trio.BrokenResourceError):
            await self._stream.aclose()

    async def _send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            try:
                await self._stream.send_all(data)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as error:
                self.close_code = self.close_code or ABNORMAL_CLOSE
                raise WsClosedError(self.close_code, str(error)) from None

    async def _read(self) -> None:
        try:
            data = await self._stream.receive_some(RECEIVE_BYTES)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.close_code = self.close_code or ABNORMAL_CLOSE
            if not self._accepted and self._rejected is None:
                raise WsClosedError(self.close_code, "closed during the handshake")
            return
        self._protocol.receive_data(data)
        for event in self._protocol.events():
            await self._handle(event)

    async def _handle(self, event: Event) -> None:
        match event:
            case TextMessage():
                self._partial.append(event.data)
                if event.message_finished:
                    self._messages.append("".join(self._partial))
                    self._partial.clear()
            case Ping():
                with suppress(WsClosedError):
                    await self._send_bytes(self._protocol.send(event.response()))
            case CloseConnection():
                self.close_code = event.code
                self.close_reason = event.reason or ""
                if self._protocol.state is ConnectionState.REMOTE_CLOSING:
                    with suppress(WsClosedError):
                        await self._send_bytes(self._protocol.send(event.response()))
            case AcceptConnection():
                self._accepted = True
            case RejectConnection():
                self._rejected = event.status_code
            case BytesMessage() | RejectData():
                pass
            case _:
                pass
