"""The registry: get-or-start creates each actor once, lookups, and the /debug/actors snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.testing

from hub.runtime import ActorRef, Inbox, Reply
from hub.runtime.testing import open_registry

HANG_GUARD = 600.0  # virtual seconds: the autojump clock gets there only if a test is stuck


@dataclass(frozen=True, slots=True)
class Note:
    text: str


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Crash:
    pass


@dataclass(frozen=True, slots=True)
class CountNotes:
    reply: Reply[int]


ScribeMessage = Note | Pause | Crash | CountNotes


class Scribe:
    """Takes a second to start (loading its state), then keeps notes."""

    def __init__(self, created: list[str], key: str) -> None:
        created.append(key)
        self.notes: list[str] = []
        self.connection = "connected"

    async def run(self, inbox: Inbox[ScribeMessage], *, task_status: trio.TaskStatus[None]) -> None:
        await trio.sleep(1)
        task_status.started()
        async for message in inbox:
            match message:
                case Note(text):
                    self.notes.append(text)
                case Pause(seconds):
                    await trio.sleep(seconds)
                case Crash():
                    raise RuntimeError("scribe crashed")
                case CountNotes(reply):
                    reply.send(len(self.notes))

    def describe(self) -> dict[str, Any]:
        return {"notes": len(self.notes), "connection": self.connection, "kind": "spoofed"}


async def test_concurrent_get_or_start_of_one_key_creates_one_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    created: list[str] = []
    refs: list[ActorRef[ScribeMessage]] = []

    with trio.fail_after(HANG_GUARD):
        async with open_registry() as registry:

            async def get(key: str) -> None:
                ref = await registry.get_or_start("scribe", key, lambda: Scribe(created, key))
                refs.append(ref)

            async with trio.open_nursery() as callers:
                for _ in range(10):
                    callers.start_soon(get, "s1")
                callers.start_soon(get, "s2")
            assert trio.current_time() == 1.0  # everyone waited for the one slow start
            assert sorted(created) == ["s1", "s2"]
            first = registry.lookup("scribe", "s1")
            assert first is not None
            assert sum(ref is first for ref in refs) == 10
            assert [ref.key for ref in registry.refs("scribe")] == ["s1", "s2"]
            assert registry.refs("vehicle") == []
            assert registry.lookup("scribe", "s3") is None


async def test_snapshot_reports_depth_restarts_activity_and_what_the_actor_adds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    created: list[str] = []
    with trio.fail_after(HANG_GUARD):
        async with open_registry() as registry:
            scribe = await registry.get_or_start("scribe", "s1", lambda: Scribe(created, "s1"))
            scribe.tell_nowait(Crash())  # at t=1; restarted at 1.1, started at 2.1
            await trio.sleep_until(3)
            scribe.tell_nowait(Note("hello"))
            assert await scribe.ask(CountNotes) == 1
            scribe.tell_nowait(Pause(10))
            await trio.testing.wait_all_tasks_blocked()
            for text in ("a", "b", "c"):
                scribe.tell_nowait(Note(text))
            [row] = registry.snapshot()
            assert row == {
                "kind": "scribe",
                "key": "s1",
                "mailbox_depth": 3,
                "mailbox_capacity": 100,
                "blocked_senders": 0,
                "restarts": 1,
                "last_restart_at": pytest.approx(1.1, abs=1e-9),
                "running": True,
                "last_activity": 3.0,
                "notes": 1,
                "connection": "connected",
            }


async def test_snapshot_survives_an_actor_whose_describe_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    created: list[str] = []
    with trio.fail_after(HANG_GUARD):
        async with open_registry() as registry:
            scribe = Scribe(created, "s1")
            scribe.notes = None  # type: ignore[assignment]  # len(None) fails in describe()
            await registry.get_or_start("scribe", "s1", lambda: scribe)
            [row] = registry.snapshot()
            assert row["describe_error"].startswith("TypeError(")
            assert (row["key"], row["running"]) == ("s1", True)
