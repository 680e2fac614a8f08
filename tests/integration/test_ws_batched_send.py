"""api.ws_send under a real Hypercorn on a real socket: several messages in one write arrive
as separate messages, in order, compressed when the client asked for it, and a write after
the peer closed is dropped the way ``websocket.send`` drops it.

The client is wsproto over a trio socket, so the test sees each message exactly as a peer
does (and can offer permessage-deflate, as browsers do).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import websocket
from quart_trio import QuartTrio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from api.ws_send import SEND_TEXTS, BatchedWebsocketSend, hypercorn_writer, socket_sender

pytestmark = pytest.mark.hang_guard(60)

MESSAGES = [f'{{"type":"location_update","n":{n},"pad":"{"x" * (n % 300)}"}}' for n in range(300)]


class Recorder:
    """What the server side saw: whether it had the batched writer, and how sends ended."""

    def __init__(self) -> None:
        self.batched: bool | None = None
        self.after_close: str | None = None
        self.peer_closed = trio.Event()
        self.late_write_done = trio.Event()


def _app(recorder: Recorder) -> QuartTrio:
    app = QuartTrio(__name__)

    @app.websocket("/burst")
    async def burst() -> None:
        await websocket.accept()
        recorder.batched = SEND_TEXTS in websocket.scope.get("extensions", {})
        await socket_sender()(MESSAGES)
        await websocket.receive()  # until the client closes

    @app.websocket("/late")
    async def late() -> None:
        await websocket.accept()
        send = socket_sender()
        # Quart cancels a handler whose peer left; shielded, this one writes after that.
        with trio.CancelScope(shield=True):
            await recorder.peer_closed.wait()
            await trio.sleep(0.2)  # Hypercorn has seen the close by now
            try:
                await send(["too late", "also too late"])
            except Exception as error:  # the test reports it
                recorder.after_close = f"raised {error!r}"
            else:
                recorder.after_close = "dropped"
            recorder.late_write_done.set()

    return app


@asynccontextmanager
async def serving(recorder: Recorder) -> AsyncIterator[int]:
    """The app behind BatchedWebsocketSend on Hypercorn's trio worker, on a free port."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    stop = trio.Event()
    app: Any = BatchedWebsocketSend(_app(recorder))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config, shutdown_trigger=stop.wait))
        yield int(binds[0].rsplit(":", 1)[1])
        stop.set()


class Client:
    """A wsproto client connection: the messages it received, and how the server closed."""

    def __init__(self, stream: trio.SocketStream, deflate: bool) -> None:
        self.stream = stream
        self.protocol = WSConnection(ConnectionType.CLIENT)
        self.offer = [PerMessageDeflate()] if deflate else []
        self.messages: list[str] = []
        self.accepted = False
        self.accepted_extensions: list[str] = []
        self._partial: list[str] = []

    async def open(self, path: str) -> None:
        await self.stream.send_all(
            self.protocol.send(Request(host="127.0.0.1", target=path, extensions=self.offer))
        )
        await self.read_until(lambda: self.accepted)

    async def read_until(self, done: Callable[[], bool]) -> None:
        while not done():
            data = await self.stream.receive_some(65536)
            assert data, "the server closed the connection"
            self.protocol.receive_data(data)
            for event in self.protocol.events():
                if isinstance(event, AcceptConnection):
                    self.accepted = True
                    self.accepted_extensions = [ext.name for ext in event.extensions]
                elif isinstance(event, TextMessage):
                    self._partial.append(event.data)
                    if event.message_finished:
                        self.messages.append("".join(self._partial))
                        self._partial.clear()

    async def close(self) -> None:
        await self.stream.send_all(self.protocol.send(CloseConnection(code=1000)))


@asynccontextmanager
async def connected(port: int, path: str, *, deflate: bool = False) -> AsyncIterator[Client]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        client = Client(stream, deflate)
        await client.open(path)
        yield client


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "permessage-deflate"])
async def test_a_burst_written_at_once_arrives_as_separate_messages_in_order(
    deflate: bool,
) -> None:
    recorder = Recorder()
    with trio.fail_after(30):
        async with serving(recorder) as port, connected(port, "/burst", deflate=deflate) as client:
            await client.read_until(lambda: len(client.messages) >= len(MESSAGES))
            await client.close()
    assert recorder.batched is True  # Hypercorn's stream was found: the fast path ran
    assert client.accepted_extensions == (["permessage-deflate"] if deflate else [])
    assert client.messages == MESSAGES


async def test_a_write_after_the_peer_closed_is_dropped_not_raised() -> None:
    recorder = Recorder()
    with trio.fail_after(30):
        async with serving(recorder) as port:
            async with connected(port, "/late") as client:
                await client.close()
                await trio.sleep(0.1)
            recorder.peer_closed.set()
            await recorder.late_write_done.wait()
    assert recorder.after_close == "dropped"


def test_a_send_that_is_not_hypercorns_gets_no_batched_writer() -> None:
    async def plain_send(message: dict[str, Any]) -> None:
        pass

    assert hypercorn_writer(plain_send) is None
