"""A minimal HTTP/1.1 client over trio sockets: keep-alive, one request at a time per connection.

The generator shares the machine with the hub, so it must be cheap: requests are prebuilt
bytes (:func:`post_request`), a response is parsed just enough for its status and body
(``Content-Length`` or chunked), and nothing is validated beyond that. Only for 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

import trio

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 4 * 1024 * 1024
RECEIVE_BYTES = 65536


class HttpProtocolError(Exception):
    """The server's answer was not HTTP/1.1 as this client understands it, or it closed."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A response's status code and body."""

    status: int
    body: bytes


def post_request(host: str, path: str, token: str, body: bytes) -> bytes:
    """A complete ``POST`` request with a bearer token and a JSON body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def request_template(
    host: str, path: str, token: str, body: str, marker: str
) -> Callable[[str], bytes]:
    """A fast builder of ``POST`` requests whose body differs only where ``marker`` stands.

    The replacement must have ``marker``'s length (the ``Content-Length`` is computed once).
    """
    prefix_text, _, suffix_text = body.partition(marker)
    head = post_request(host, path, token, body.encode())
    head = head[: len(head) - len(body.encode())]
    prefix = head + prefix_text.encode()
    suffix = suffix_text.encode()
    size = len(marker)

    def build(value: str) -> bytes:
        if len(value) != size:
            raise ValueError("replacement must keep the body's length")
        return prefix + value.encode("ascii") + suffix

    return build


class HttpConnection:
    """One keep-alive connection; :meth:`request` must not be called concurrently."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self.reusable = True

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        """Connect (blocks for the TCP handshake; the caller sets the deadline)."""
        return cls(await trio.open_tcp_stream(host, port))

    async def request(self, data: bytes) -> Answer:
        """Send one complete request and read its response.

        Blocks until the whole response is read. On cancellation or any error the connection
        is left unusable (``reusable`` False): close it.
        """
        self.reusable = False
        await self._stream.send_all(data)
        head = await self._read_head()
        status, length, chunked, close = _parse_head(head)
        if chunked:
            body = await self._read_chunked()
        else:
            body = await self._read_exactly(length)
        self.reusable = not close
        return Answer(status, body)

    async def aclose(self) -> None:
        """Close the socket (never raises for a peer that is gone)."""
        with trio.move_on_after(1, shield=True), suppress(OSError, trio.BrokenResourceError):
            await self._stream.aclose()

    async def _fill(self) -> None:
        data = await self._stream.receive_some(RECEIVE_BYTES)
        if not data:
            raise HttpProtocolError("connection closed by the server")
        self._buffer += data

    async def _read_head(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self._buffer[:end])
                del self._buffer[: end + 4]
                return head
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise HttpProtocolError("response head too large")
            await self._fill()

    async def _read_exactly(self, size: int) -> bytes:
        if size > MAX_BODY_BYTES:
            raise HttpProtocolError("response body too large")
        while len(self._buffer) < size:
            await self._fill()
        body = bytes(self._buffer[:size])
        del self._buffer[:size]
        return body

    async def _read_line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise HttpProtocolError("chunk header too large")
            await self._fill()

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int((await self._read_line()).split(b";")[0], 16)
            if size == 0:
                while await self._read_line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise HttpProtocolError("response body too large")
            parts.append(await self._read_exactly(size))
            await self._read_line()


def _parse_head(head: bytes) -> tuple[int, int, bool, bool]:
    """Status, content length, chunked?, close? of a response head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise HttpProtocolError(f"bad status line {lines[0][:80]!r}")
    status = int(parts[1])
    length = 0
    chunked = False
    close = parts[0] == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    return status, length, chunked, close


REUSE_IDLE_LIMIT = 4.0
"""Seconds an idle connection may wait and still be reused. The hub (Hypercorn's default)
closes a keep-alive connection idle for 5 s; a request written on it just then is lost
with the connection, so like any HTTP client this one does not reuse connections that old."""


class ConnectionPool:
    """Up to ``limit`` keep-alive connections to one server, opened on demand.

    A request waits for a free connection when all ``limit`` are busy (the delay counts in its
    latency, since latency runs from the intended send time). Failed connections are dropped,
    and so are connections idle for :data:`REUSE_IDLE_LIMIT` or longer.
    """

    def __init__(self, host: str, port: int, limit: int) -> None:
        self._host = host
        self._port = port
        self._slots = trio.Semaphore(limit)
        self._idle: list[tuple[HttpConnection, float]] = []  # with the time it became idle

    async def warm(self) -> None:
        """Open one connection ahead of the load (blocks for the TCP handshake)."""
        connection = await HttpConnection.open(self._host, self._port)
        self._idle.append((connection, trio.current_time()))

    async def request(self, data: bytes) -> Answer:
        """Send ``data`` on a free connection and return the answer.

        Blocks for a free slot, the connect if needed, and the response. Raises ``OSError``,
        ``trio.BrokenResourceError`` or :class:`HttpProtocolError` when the connection fails.
        """
        async with self._slots:
            connection = await self._fresh_idle()
            if connection is None:
                connection = await HttpConnection.open(self._host, self._port)
            try:
                answer = await connection.request(data)
            finally:
                if connection.reusable:
                    self._idle.append((connection, trio.current_time()))
                else:
                    await connection.aclose()
            return answer

    async def _fresh_idle(self) -> HttpConnection | None:
        """The most recently used idle connection the server has not closed by now, if any;
        the older ones are closed (the list is in the order they became idle)."""
        if not self._idle:
            return None
        connection, since = self._idle.pop()
        if trio.current_time() - since < REUSE_IDLE_LIMIT:
            return connection
        stale = [connection, *(each for each, _ in self._idle)]
        self._idle = []
        for each in stale:
            await each.aclose()
        return None

    async def aclose(self) -> None:
        """Close the idle connections (busy ones are closed by their requests)."""
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            await connection.aclose()
