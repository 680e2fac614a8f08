"""The tests' own waiting helpers: a wait that runs out says what it waited for and saw."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.unit.waiting import WaitedTooLongError, until, waiting_for

GUARD = 600.0  # virtual seconds under autojump_clock


async def test_a_wait_that_runs_out_names_what_it_waited_for_and_what_it_saw(
    autojump_clock: trio.testing.MockClock,
) -> None:
    frames = ["welcome"]
    with trio.fail_after(GUARD):
        start = trio.current_time()
        with pytest.raises(WaitedTooLongError) as waited:
            await until(lambda: "pong" in frames, what="a pong", seen=lambda: frames, seconds=5)
        assert trio.current_time() - start == pytest.approx(5.0)
    assert str(waited.value) == "waited 5 s for a pong; saw ['welcome']"


async def test_a_condition_met_without_time_passing_is_seen_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[str] = []

    async def answer() -> None:
        seen.append("pong")

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            nursery.start_soon(answer)
            await until(lambda: bool(seen), what="a pong", seen=lambda: seen, seconds=5)
            assert trio.current_time() == start


async def test_an_outer_deadline_is_not_reported_as_this_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(trio.TooSlowError), trio.fail_after(1), waiting_for("a pong", list, 10):
        await trio.sleep_forever()
