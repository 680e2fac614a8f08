"""ConflatingQueue and SessionLink: latest telemetry per vehicle and kind, nothing else lost."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from actors.session.conflation import (
    SLOW_CONSUMER,
    ConflatingQueue,
    SessionLink,
    SlowConsumerError,
)
from actors.sockets.outbound import OVERLOADED, LinkClosedError

GUARD = 600.0  # virtual seconds


def location(vehicle_id: str, seq: int) -> dict[str, Any]:
    return {"type": "location_update", "vehicle_id": vehicle_id, "seq": seq}


def status(vehicle_id: str, seq: int) -> dict[str, Any]:
    return {"type": "status_update", "vehicle_id": vehicle_id, "seq": seq}


def alert(alert_id: str) -> dict[str, Any]:
    return {"type": "alert", "alert_id": alert_id, "vehicle_id": "v1"}


def command_status(command_id: str, state: str) -> dict[str, Any]:
    return {"type": "command_status", "command_id": command_id, "vehicle_id": "v1", "status": state}


def drain(queue: ConflatingQueue) -> list[dict[str, Any]]:
    frames = []
    while True:
        try:
            frames.append(queue.pop_nowait())
        except trio.WouldBlock:
            return frames


def test_a_newer_telemetry_event_replaces_the_waiting_one_in_place() -> None:
    queue = ConflatingQueue()
    queue.push(location("v1", 1))
    queue.push(location("v2", 1))
    queue.push(status("v1", 2))
    queue.push(location("v1", 3))
    queue.push(location("v1", 4))

    assert queue.depth == 3
    assert queue.conflated == 2
    assert drain(queue) == [location("v1", 4), location("v2", 1), status("v1", 2)]
    assert queue.depth == 0


def test_telemetry_sent_already_is_not_conflated_with_the_next() -> None:
    queue = ConflatingQueue()
    queue.push(location("v1", 1))
    assert queue.pop_nowait() == location("v1", 1)
    queue.push(location("v1", 2))
    assert drain(queue) == [location("v1", 2)]
    assert queue.conflated == 0


def test_alerts_and_command_statuses_are_never_dropped_or_reordered() -> None:
    queue = ConflatingQueue()
    must_deliver = []
    for n in range(50):
        queue.push(location("v1", n))
        queue.push(status("v2", n))
        frame = alert(f"a{n}") if n % 2 else command_status(f"cmd_{n}", "sent")
        queue.push(frame)
        must_deliver.append(frame)
    frames = drain(queue)

    assert [f for f in frames if f["type"] in ("alert", "command_status")] == must_deliver
    assert [f for f in frames if f["type"] == "location_update"] == [location("v1", 49)]
    assert [f for f in frames if f["type"] == "status_update"] == [status("v2", 49)]
    assert queue.conflated == 2 * 49


def test_a_must_deliver_backlog_past_the_limit_is_a_slow_consumer() -> None:
    queue = ConflatingQueue(limit=3)
    for n in range(3):
        queue.push(alert(f"a{n}"))
    for n in range(100):  # telemetry does not count: it is conflated instead
        queue.push(location("v1", n))

    with pytest.raises(SlowConsumerError):
        queue.push(command_status("cmd_1", "sent"))
    assert queue.must_deliver == 3
    assert queue.depth == 4


async def test_a_session_link_closes_1013_when_its_peer_falls_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        link = SessionLink(ConflatingQueue(limit=2))
        assert link.send_nowait(alert("a1"))
        assert link.send_nowait(alert("a2"))

        assert not link.send_nowait(alert("a3"))
        assert link.closed
        with pytest.raises(LinkClosedError) as closed:
            await link.next_frame()
        assert (closed.value.code, closed.value.reason) == (OVERLOADED, SLOW_CONSUMER)
        assert not link.send_nowait(location("v1", 1))


async def test_pop_waits_for_the_next_frame(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(GUARD):
        queue = ConflatingQueue()
        start = trio.current_time()
        popped: list[tuple[float, dict[str, Any]]] = []

        async def consumer() -> None:
            frame = await queue.pop()
            popped.append((trio.current_time() - start, frame))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consumer)
            await trio.sleep(2)
            queue.push(alert("a1"))

        assert popped == [(2.0, alert("a1"))]


async def test_frames_behind_a_reservation_wait_until_it_is_filled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        link = SessionLink()
        reservation = link.queue.reserve()
        link.send_nowait(location("v1", 5))
        link.send_nowait(alert("a1"))
        link.send_nowait({"type": "ping", "timestamp": "t"})  # a heartbeat jumps the queue

        assert await link.next_frame() == {"type": "ping", "timestamp": "t"}
        with pytest.raises(trio.WouldBlock):
            link.queue.pop_nowait()

        start = trio.current_time()
        got: list[tuple[float, dict[str, Any]]] = []

        async def writer() -> None:
            for _ in range(4):
                frame = await link.next_frame()
                got.append((trio.current_time() - start, frame))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await trio.sleep(1)
            assert link.fill(reservation, [{"type": "subscribed"}, location("v1", 4)])

        assert got == [
            (1.0, {"type": "subscribed"}),
            (1.0, location("v1", 4)),
            (1.0, location("v1", 5)),
            (1.0, alert("a1")),
        ]
        assert link.depth() == 0


async def test_next_frame_nowait_takes_what_is_ready_and_never_passes_a_reservation() -> None:
    # What the socket writer adds to a write without waiting: ready frames in order, nothing
    # from behind an unfilled reservation, nothing once the link is closed.
    link = SessionLink()
    link.send_nowait(alert("a1"))
    reservation = link.queue.reserve()
    link.send_nowait(location("v1", 5))
    assert link.next_frame_nowait() == alert("a1")
    assert link.next_frame_nowait() is None  # the snapshot is not ready yet
    assert link.fill(reservation, [{"type": "subscribed"}])
    assert link.next_frame_nowait() == {"type": "subscribed"}
    assert link.next_frame_nowait() == location("v1", 5)
    assert link.next_frame_nowait() is None
    link.send_nowait(alert("a2"))
    link.close(1000, "session ended")
    assert link.next_frame_nowait() is None


async def test_a_reservation_filled_past_the_limit_closes_the_link(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        link = SessionLink(ConflatingQueue(limit=2))
        reservation = link.queue.reserve()
        link.send_nowait(alert("a1"))

        assert not link.fill(reservation, [alert("r1"), alert("r2")])
        with pytest.raises(LinkClosedError) as closed:
            await link.next_frame()
        assert closed.value.code == OVERLOADED


async def test_closing_wakes_the_writer_with_the_close_code(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        link = SessionLink()
        start = trio.current_time()
        written: list[tuple[float, dict[str, Any]]] = []
        outcome: list[tuple[float, int, str]] = []

        async def writer() -> None:
            while True:
                try:
                    frame = await link.next_frame()
                except LinkClosedError as closed:
                    outcome.append((trio.current_time() - start, closed.code, closed.reason))
                    return
                written.append((trio.current_time() - start, frame))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await trio.sleep(3)
            link.send_nowait(alert("a1"))
            await trio.sleep(1)
            link.close(1000, "bye")

        assert written == [(3.0, alert("a1"))]
        assert outcome == [(4.0, 1000, "bye")]
        with pytest.raises(trio.ClosedResourceError):
            await link.queue.pop()
