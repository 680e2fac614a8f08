"""A TCP port in front of the test Redis that a test can close, open again, or make silent:
Redis going away and coming back, or hanging, without touching the real (shared) Redis."""

from __future__ import annotations

import urllib.parse

import trio


class RedisProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` (a ``redis://`` or ``unix://`` URL) while
    open; nothing listens while closed; a silent proxy reads what it is sent and never
    answers. The port stays the same across :meth:`close` and :meth:`open`."""

    def __init__(self, target: str) -> None:
        self._target = urllib.parse.urlsplit(target)
        self.port = 0
        self.silent = False
        self._scope: trio.CancelScope | None = None
        self._closed = trio.Event()

    @property
    def url(self) -> str:
        """The URL a client uses to reach Redis through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def open(self, nursery: trio.Nursery) -> None:
        """Listen (on the same port as before, if any) in ``nursery``; returns once listening."""
        await nursery.start(self._serve)

    async def close(self) -> None:
        """Stop listening and cut every connection; returns once they are closed."""
        if self._scope is not None:
            self._scope.cancel()
            await self._closed.wait()
            self._scope = None

    async def _serve(self, *, task_status: trio.TaskStatus[None]) -> None:
        self._closed = trio.Event()
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
                self.port = listeners[0].socket.getsockname()[1]
                async with trio.open_nursery() as handlers:
                    task_status.started()
                    await trio.serve_listeners(self._handle, listeners, handler_nursery=handlers)
        finally:
            self._closed.set()

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            if self.silent:
                async for _ in client:  # read everything, answer nothing
                    pass
                return
            upstream = await self._connect_target()
            async with upstream, trio.open_nursery() as pumps:
                pumps.start_soon(_pump, client, upstream, pumps.cancel_scope)
                pumps.start_soon(_pump, upstream, client, pumps.cancel_scope)

    async def _connect_target(self) -> trio.abc.Stream:
        if self._target.scheme == "unix":
            return await trio.open_unix_socket(self._target.path)
        return await trio.open_tcp_stream(
            self._target.hostname or "127.0.0.1", self._target.port or 6379
        )


async def _pump(source: trio.abc.Stream, sink: trio.abc.Stream, scope: trio.CancelScope) -> None:
    try:
        async for chunk in source:
            await sink.send_all(chunk)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    scope.cancel()
