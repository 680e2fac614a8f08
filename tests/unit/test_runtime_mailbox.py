"""The mailbox: bounded, pushes back on senders when full, and closes for good on stop.

Every test runs on ``autojump_clock``, so the moment a blocked sender gets through is exact.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from hub.runtime import ActorStoppedError, Mailbox, MailboxFullError

HANG_GUARD = 600.0  # virtual seconds: the autojump clock gets there only if a test is stuck


async def test_send_waits_while_full_until_a_message_is_taken(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox: Mailbox[str] = Mailbox(2)
    delivered_at: list[float] = []

    async def send_third() -> None:
        await mailbox.send("c")
        delivered_at.append(trio.current_time())

    with trio.fail_after(HANG_GUARD):
        async with trio.open_nursery() as nursery:
            await mailbox.send("a")
            await mailbox.send("b")
            nursery.start_soon(send_third)
            await trio.sleep(3)
            assert (mailbox.depth(), mailbox.blocked_senders(), delivered_at) == (2, 1, [])
            assert await mailbox.receive() == "a"
        assert delivered_at == [3.0]
        assert [await mailbox.receive(), await mailbox.receive()] == ["b", "c"]


async def test_send_nowait_on_a_full_mailbox_raises_and_sends_nothing() -> None:
    mailbox: Mailbox[int] = Mailbox(1, name="vehicle wheelchair_001")
    mailbox.send_nowait(1)
    with pytest.raises(MailboxFullError, match="vehicle wheelchair_001") as info:
        mailbox.send_nowait(2)
    assert isinstance(info.value, trio.WouldBlock)
    assert (mailbox.depth(), mailbox.capacity) == (1, 1)
    with trio.fail_after(1):
        assert await mailbox.receive() == 1


async def test_close_hands_back_waiting_messages_and_releases_blocked_senders(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox: Mailbox[str] = Mailbox(1)
    with trio.fail_after(HANG_GUARD):
        async with trio.open_nursery() as nursery:
            mailbox.send_nowait("waiting")
            nursery.start_soon(mailbox.send, "blocked")
            await trio.testing.wait_all_tasks_blocked()
            assert mailbox.close() == ["waiting", "blocked"]
        assert mailbox.closed
        assert mailbox.close() == []
        with pytest.raises(ActorStoppedError):
            await mailbox.send("late")
        with pytest.raises(ActorStoppedError):
            mailbox.send_nowait("late")


def test_capacity_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Mailbox[int](0)
