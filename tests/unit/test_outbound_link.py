"""OutboundLink: urgent frames first, close discards what waits, a lagging peer closes 1013."""

from __future__ import annotations

import gc
import weakref

import pytest
import trio
import trio.testing

from actors.sockets.outbound import OVERLOADED, LinkClosedError, OutboundLink

GUARD = 60.0  # virtual seconds under autojump_clock


def _frame(name: str) -> dict[str, str]:
    return {"type": "test", "name": name}


async def test_frames_come_out_in_the_order_they_were_sent() -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink()
        for name in ("a", "b", "c"):
            assert link.send_nowait(_frame(name))
        assert link.depth() == 3
        assert [(await link.next_frame())["name"] for _ in range(3)] == ["a", "b", "c"]
        assert link.depth() == 0


async def test_an_urgent_frame_overtakes_frames_already_waiting() -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink()
        link.send_nowait(_frame("normal_1"))
        link.send_nowait(_frame("normal_2"))
        link.send_nowait(_frame("stop_1"), urgent=True)
        link.send_nowait(_frame("stop_2"), urgent=True)
        names = [(await link.next_frame())["name"] for _ in range(4)]
        assert names == ["stop_1", "stop_2", "normal_1", "normal_2"]


async def test_next_frame_nowait_takes_urgent_then_normal_and_nothing_once_closed() -> None:
    link = OutboundLink()
    assert link.next_frame_nowait() is None
    link.send_nowait(_frame("normal"))
    link.send_nowait(_frame("stop"), urgent=True)
    taken = [link.next_frame_nowait(), link.next_frame_nowait(), link.next_frame_nowait()]
    assert taken == [_frame("stop"), _frame("normal"), None]
    link.send_nowait(_frame("late"))
    link.close(1000, "done")
    assert link.next_frame_nowait() is None


async def test_next_frame_waits_for_a_frame_and_wakes_when_one_is_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink()
        start = trio.current_time()
        received: list[tuple[float, dict[str, str]]] = []

        async def writer() -> None:
            frame = await link.next_frame()
            received.append((trio.current_time() - start, frame))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await trio.sleep(3)
            assert received == []
            link.send_nowait(_frame("late"))
        assert received == [(3.0, _frame("late"))]


async def test_close_discards_waiting_frames_and_next_frame_raises_the_close_code() -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink()
        link.send_nowait(_frame("normal"))
        link.send_nowait(_frame("stop"), urgent=True)
        link.close(4009, "replaced")
        assert link.closed
        assert link.depth() == 0
        with pytest.raises(LinkClosedError) as raised:
            await link.next_frame()
        assert (raised.value.code, raised.value.reason) == (4009, "replaced")
        # Still closed the same way on every later call; nothing more can be queued.
        assert not link.send_nowait(_frame("after"))
        with pytest.raises(LinkClosedError) as again:
            await link.next_frame()
        assert (again.value.code, again.value.reason) == (4009, "replaced")


async def test_the_first_close_wins() -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink()
        link.close(4008, "heartbeat_timeout")
        link.close(1000, "peer closed")
        with pytest.raises(LinkClosedError) as raised:
            await link.next_frame()
        assert (raised.value.code, raised.value.reason) == (4008, "heartbeat_timeout")


async def test_a_closed_link_is_freed_at_once_without_the_cycle_collector() -> None:
    """The link kept the exception it raised, whose traceback held the link: every closed
    socket's objects then waited for a full collection (2 s over 10,000 closed sockets)."""
    link = OutboundLink()
    link.close(1000, "peer closed")
    codes: list[int] = []
    gc.disable()
    try:
        for _ in range(2):
            try:
                await link.next_frame()
            except LinkClosedError as closed:
                codes.append(closed.code)
        gone = weakref.ref(link)
        del link
        assert gone() is None
    finally:
        gc.enable()
    assert codes == [1000, 1000]


async def test_close_wakes_a_writer_waiting_for_a_frame(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink()
        start = trio.current_time()
        closed_at: list[float] = []
        codes: list[int] = []

        async def writer() -> None:
            try:
                await link.next_frame()
            except LinkClosedError as closed:
                closed_at.append(trio.current_time() - start)
                codes.append(closed.code)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await trio.sleep(7)
            link.close(4003, "rate_limit")
        assert closed_at == [7.0]
        assert codes == [4003]


async def test_a_peer_that_stops_reading_closes_the_link_with_1013_at_capacity() -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink(capacity=3)
        assert all(link.send_nowait(_frame(str(index))) for index in range(3))
        assert not link.closed
        assert not link.send_nowait(_frame("one too many"))
        assert link.closed
        assert link.depth() == 0
        with pytest.raises(LinkClosedError) as raised:
            await link.next_frame()
        assert raised.value.code == OVERLOADED == 1013


async def test_urgent_frames_count_towards_capacity_too() -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink(capacity=2)
        link.send_nowait(_frame("a"))
        link.send_nowait(_frame("b"))
        assert not link.send_nowait(_frame("stop"), urgent=True)
        with pytest.raises(LinkClosedError) as raised:
            await link.next_frame()
        assert raised.value.code == 1013


async def test_a_reader_keeping_up_never_hits_capacity() -> None:
    with trio.fail_after(GUARD):
        link = OutboundLink(capacity=2)
        for index in range(10):
            assert link.send_nowait(_frame(str(index)))
            assert (await link.next_frame())["name"] == str(index)
        assert not link.closed


async def test_each_link_has_its_own_id_and_knows_when_it_opened(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(GUARD):
        first = OutboundLink(label="wheelchair_001")
        await trio.sleep(2)
        second = OutboundLink(label="wheelchair_001")
        assert first.link_id != second.link_id
        assert first.link_id.startswith("wheelchair_001#")
        assert second.opened_at - first.opened_at == 2.0
        assert second.last_received == second.opened_at
