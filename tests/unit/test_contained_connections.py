"""ContainedTCPServer: a write that meets a close in progress closes the connection.

Hypercorn closes a socket (``send_eof``) outside the lock its writes take; a write by another
task at that moment raised trio's BusyResourceError, which ended the whole server. Here the
close in progress is another task inside the stream's send, held there by the test.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.events import Closed, RawData
from hypercorn.trio.worker_context import WorkerContext

from api.contained_connections import ContainedTCPServer


class Protocol:
    """Records what the server tells the connection's protocol."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def handle(self, event: Any) -> None:
        self.events.append(event)


async def test_a_write_during_a_close_in_progress_closes_the_connection() -> None:
    send_side = trio.testing.MemorySendStream()
    stream = trio.StapledStream(send_side, trio.testing.MemoryReceiveStream())
    release = trio.Event()

    async def held() -> None:
        await release.wait()

    server = ContainedTCPServer(
        None,  # type: ignore[arg-type]
        Config(),
        WorkerContext(None),
        {},
        stream,  # type: ignore[arg-type]
    )
    protocol = Protocol()
    server.protocol = protocol  # type: ignore[assignment]
    async with trio.open_nursery() as nursery:
        send_side.send_all_hook = held
        nursery.start_soon(stream.send_all, b"closing")  # the other task, mid-send
        await trio.testing.wait_all_tasks_blocked()
        await server.protocol_send(RawData(data=b"close frame"))
        assert [type(event) for event in protocol.events] == [Closed]
        release.set()
    assert send_side.get_data_nowait() == b"closing"
