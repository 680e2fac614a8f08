"""The Router: fan-out rules, per-vehicle seq, replay after ``since``, overload (CONTRACT §6.2)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from actors.router.actor import (
    ROUTER_BURST,
    ROUTER_KEY,
    ROUTER_KIND,
    ReplayLimits,
    RouterState,
)
from actors.router.messages import (
    Attach,
    PublishEvent,
    SessionHandle,
    Subscribe,
)
from actors.router.sink import RouterSink, start_router
from actors.sockets.encoded import Frame, frame_dict
from hub.contract import ws_events
from hub.runtime import Registry
from hub.runtime.testing import open_registry
from tests.task_steps import TaskSteps

GUARD = 600.0  # virtual seconds: every test runs on autojump_clock
MINUTE = 60.0
TIME = "2025-12-16T10:30:45.123Z"


def FROZEN() -> float:
    """A clock for tests that do not move time."""
    return 0.0


class Peer:
    """A session as the Router sees it: deliver and close functions that record what they get."""

    def __init__(self, session_id: str, role: str = "viewer") -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed: list[tuple[int, str]] = []
        self.alive = True
        self.handle = SessionHandle(session_id, role, self.deliver, self.close)

    def deliver(self, frame: Frame) -> bool:
        if self.alive:
            self.frames.append(frame_dict(frame))
        return self.alive

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))

    def types(self) -> list[str]:
        return [frame["type"] for frame in self.frames]

    def seqs(self) -> list[int]:
        return [frame["seq"] for frame in self.frames]


def location(vehicle_id: str) -> dict[str, Any]:
    return ws_events.location_update(
        vehicle_id, "2025-12-16T10:30:45.123Z", {"latitude": 35.0, "longitude": 139.0}, seq=0
    )


def alert(vehicle_id: str, alert_id: str = "alt_1") -> dict[str, Any]:
    return ws_events.alert(
        alert_id,
        vehicle_id,
        severity="critical",
        kind="emergency_stop",
        message="stop",
        timestamp="2025-12-16T10:30:45.123Z",
    )


def status(command_id: str, vehicle_id: str = "v1") -> dict[str, Any]:
    return ws_events.command_status(command_id, vehicle_id, "sent", None)


def attach(state: RouterState, *peers: Peer) -> None:
    for peer in peers:
        state.attach(peer.handle)


def frozen_router(*peers: Peer, **subscriptions: list[str]) -> RouterState:
    """A RouterState on the frozen clock with ``peers`` attached, then each session named in
    ``subscriptions`` subscribed (without replay) to its vehicles, in that order."""
    state = RouterState(clock=FROZEN)
    attach(state, *peers)
    for session_id, vehicle_ids in subscriptions.items():
        state.subscribe(session_id, vehicle_ids, None)
    return state


@contextmanager
def guarded_buffer(limits: ReplayLimits) -> Iterator[RouterState]:
    """A RouterState on trio's (virtual) clock replaying within ``limits``, with session s1
    attached; the body fails after GUARD virtual seconds instead of hanging."""
    with trio.fail_after(GUARD):
        state = RouterState(limits)
        attach(state, Peer("s1"))
        yield state


@asynccontextmanager
async def running_router(
    make_state: Callable[[], RouterState] | None = None, **options: int
) -> AsyncIterator[tuple[Registry, RouterSink]]:
    """The Router actor started in a fresh registry (``start_router(registry, make_state,
    **options)``): ``(registry, sink)``; the body fails after GUARD virtual seconds."""
    with trio.fail_after(GUARD):
        async with open_registry() as registry:
            yield registry, await start_router(registry, make_state, **options)


def test_vehicle_events_go_only_to_sessions_subscribed_to_it_or_to_all() -> None:
    v1_watcher, v2_watcher, everything, both = Peer("s1"), Peer("s2"), Peer("s3"), Peer("s4")
    state = frozen_router(
        v1_watcher, v2_watcher, everything, both, s1=["v1"], s2=["v2"], s3=["*"], s4=["*", "v1"]
    )

    state.publish_event("v1", location("v1"))

    assert v1_watcher.types() == ["location_update"]
    assert v2_watcher.frames == []
    assert everything.types() == ["location_update"]
    assert both.types() == ["location_update"]  # once, though it matches twice


def test_seq_grows_per_vehicle_and_the_publisher_dict_is_untouched() -> None:
    peer = Peer("s1")
    state = frozen_router(peer, s1=["*"])
    original = location("v1")

    for vehicle_id in ("v1", "v2", "v1", "v1", "v2"):
        state.publish_event(vehicle_id, original if vehicle_id == "v1" else location("v2"))

    assert [(f["vehicle_id"], f["seq"]) for f in peer.frames] == [
        ("v1", 1),
        ("v2", 1),
        ("v1", 2),
        ("v1", 3),
        ("v2", 2),
    ]
    assert original["seq"] == 0
    assert state.current_seq("v1") == 3


def test_alerts_reach_every_admin_and_operator_and_only_subscribed_viewers() -> None:
    admin, operator = Peer("a", "admin"), Peer("o", "operator")
    watching, elsewhere, everything = Peer("w"), Peer("e"), Peer("x")
    state = frozen_router(
        *(admin, operator, watching, elsewhere, everything),
        o=["v1"],  # subscribed staff still get it once
        w=["v1"],
        e=["v2"],
        x=["*"],
    )

    state.publish_alert(alert("v1"))

    for peer in (admin, operator, watching, everything):
        assert peer.types() == ["alert"], peer.handle.session_id
        assert peer.frames[0]["seq"] == 1  # part of v1's stream
    assert elsewhere.frames == []


def test_command_status_goes_to_its_sender_once_and_to_the_subscribers() -> None:
    sender, watcher, everything, other = (
        Peer("s", "operator"),
        Peer("w"),
        Peer("x"),
        Peer("o", "admin"),
    )
    state = frozen_router(
        sender, watcher, everything, other, s=["v1", "*"], w=["v1"], x=["*"], o=["v2"]
    )

    state.publish_command_status("v1", status("cmd_1"), "s")
    state.publish_command_status("v2", status("cmd_2", "v2"), "s")

    assert [f["command_id"] for f in sender.frames] == ["cmd_1", "cmd_2"]
    assert [f["command_id"] for f in watcher.frames] == ["cmd_1"]
    assert [f["command_id"] for f in everything.frames] == ["cmd_1", "cmd_2"]
    assert [f["command_id"] for f in other.frames] == ["cmd_2"]
    assert "seq" not in sender.frames[0]


def test_a_sender_that_subscribed_to_nothing_still_gets_its_statuses() -> None:
    sender = Peer("s", "operator")
    state = frozen_router(sender)

    state.publish_command_status("v1", status("cmd_1"), "s")
    state.publish_command_status("v1", status("cmd_2"), None)

    assert [f["command_id"] for f in sender.frames] == ["cmd_1"]


def test_replay_after_since_when_the_buffer_covers_the_gap() -> None:
    state = RouterState(clock=FROZEN)
    for _ in range(5):
        state.publish_event("v1", location("v1"))
    state.publish_event("v2", location("v2"))
    peer = Peer("s1")
    attach(state, peer)

    result = state.subscribe("s1", ["v1", "v2", "v3"], {"v1": 2, "v2": 1, "v3": 0, "v9": 0})

    assert [(e["vehicle_id"], e["seq"]) for e in map(frame_dict, result.replay)] == [
        ("v1", 3),
        ("v1", 4),
        ("v1", 5),
    ]
    # v2: nothing missed; v3: never seen; v9: not subscribed, so not answered.
    assert result.replayed == {"v1": True, "v2": True, "v3": True}
    assert result.subscriptions == {"v1", "v2", "v3"}
    assert peer.frames == []  # the session sends the replay itself, after `subscribed`


def test_replay_says_false_for_a_gap_it_cannot_fill_or_a_seq_it_never_gave() -> None:
    state = RouterState(ReplayLimits(max_events=3), clock=FROZEN)
    for _ in range(10):
        state.publish_event("v1", location("v1"))
    attach(state, Peer("s1"))

    covered = state.subscribe("s1", ["*"], {"v1": 7})  # buffer holds 8..10
    gap = state.subscribe("s1", ["*"], {"v1": 6})
    after_restart = state.subscribe("s1", ["*"], {"v1": 11})

    assert (covered.replayed, [e.get("seq") for e in covered.replay]) == ({"v1": True}, [8, 9, 10])
    assert (gap.replayed, gap.replay) == ({"v1": False}, ())
    assert (after_restart.replayed, after_restart.replay) == ({"v1": False}, ())


async def test_the_buffer_keeps_the_events_of_the_last_five_minutes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with guarded_buffer(ReplayLimits(max_age=5 * MINUTE)) as state:
        for _ in range(20):  # one every 10 s: the last 200 s
            state.publish_event("v1", location("v1"))
            await trio.sleep(10)
        # Now t = 200 s: every event is younger than 5 minutes, all 20 are kept.
        assert state.subscribe("s1", ["v1"], {"v1": 0}).replayed == {"v1": True}

        await trio.sleep(110)  # t = 310 s: only the event of t = 0 (seq 1) is over 5 minutes
        state.publish_event("v1", location("v1"))

        assert state.subscribe("s1", ["v1"], {"v1": 1}).replayed == {"v1": True}  # 2..21
        assert state.subscribe("s1", ["v1"], {"v1": 0}).replayed == {"v1": False}


async def test_the_buffer_keeps_at_most_max_events_even_within_five_minutes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with guarded_buffer(ReplayLimits(max_age=5 * MINUTE, max_events=8)) as state:
        for _ in range(4):
            state.publish_event("v1", location("v1"))
        await trio.sleep(6 * MINUTE)
        state.publish_event("v1", location("v1"))
        state.publish_event("v1", location("v1"))  # seq 1..4 are over 5 minutes old now

        assert state.subscribe("s1", ["v1"], {"v1": 4}).replayed == {"v1": True}  # 5, 6
        assert state.subscribe("s1", ["v1"], {"v1": 3}).replayed == {"v1": False}

        for _ in range(20):  # a burst: more than max_events within 5 minutes
            state.publish_event("v1", location("v1"))
        assert state.subscribe("s1", ["v1"], {"v1": 18}).replayed == {"v1": True}  # 19..26
        assert state.subscribe("s1", ["v1"], {"v1": 17}).replayed == {"v1": False}


async def test_a_quiet_vehicles_events_expire_without_new_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with guarded_buffer(ReplayLimits(max_age=5 * MINUTE)) as state:
        state.publish_event("v1", location("v1"))
        await trio.sleep(6 * MINUTE)
        state.expire_replays()

        assert state.describe()["replay_events"] == 0
        assert state.subscribe("s1", ["v1"], {"v1": 0}).replayed == {"v1": False}


def test_subscriptions_die_with_the_session() -> None:
    peer = Peer("s1", "admin")
    state = frozen_router(peer, s1=["v1", "*"])

    assert state.detach("s1")
    state.publish_event("v1", location("v1"))
    state.publish_alert(alert("v1"))
    assert peer.frames == []
    assert state.describe()["subscriptions"] == 0

    assert state.attach(Peer("s1").handle).subscriptions == frozenset()


def test_unsubscribe_stops_the_named_vehicles_only() -> None:
    peer = Peer("s1")
    state = frozen_router(peer, s1=["v1", "v2", "*"])

    assert state.unsubscribe("s1", ["*", "v2"]) == {"v1"}
    state.publish_event("v2", location("v2"))
    state.publish_event("v1", location("v1"))

    assert [f["vehicle_id"] for f in peer.frames] == ["v1"]


def test_a_session_whose_link_closed_is_detached_at_once() -> None:
    gone, alive = Peer("s1"), Peer("s2")
    state = frozen_router(gone, alive, s1=["v1"], s2=["v1"])
    gone.alive = False

    state.publish_event("v1", location("v1"))

    assert "s1" not in state.sessions
    assert alive.seqs() == [1]


def test_a_restarted_session_gets_its_subscriptions_back() -> None:
    first = Peer("s1")
    state = frozen_router(first, s1=["v1"])

    again = Peer("s1")
    attached = state.attach(again.handle)
    state.publish_event("v1", location("v1"))

    assert (attached.resumed, attached.subscriptions) == (True, frozenset({"v1"}))
    assert (first.frames, again.seqs()) == ([], [1])


async def test_the_sink_delivers_through_the_router_actor_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_router() as (registry, sink):
        router = registry.lookup("router", "main")
        assert router is sink.ref
        peer = Peer("s1", "operator")
        await sink.ref.ask(lambda reply: Attach(peer.handle, reply))
        published_at = trio.current_time()

        sink.vehicle_event("v1", location("v1"))  # not subscribed: not for s1
        sink.alert(alert("v1"))
        sink.command_status("v1", status("cmd_1"), sender_session="s1")
        await trio.testing.wait_all_tasks_blocked()

        assert peer.types() == ["alert", "command_status"]
        assert trio.current_time() == published_at  # no waiting anywhere on the way
        row = registry.snapshot()[0]
        assert (row["kind"], row["key"], row["sessions"], row["staff_sessions"]) == (
            "router",
            "main",
            1,
            1,
        )
        assert (row["vehicles_numbered"], row["delivered"], row["overflow"]) == (1, 2, 0)


async def test_a_full_mailbox_drops_telemetry_but_keeps_statuses_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    numbered_from_1000 = partial(RouterState, seq_origin=1000)
    async with running_router(numbered_from_1000, mailbox_size=3) as (registry, sink):
        peer = Peer("s1", "operator")
        await sink.ref.ask(lambda reply: Attach(peer.handle, reply))
        await sink.ref.ask(lambda reply: Subscribe("s1", ("v1",), None, reply))

        # No checkpoint in between: the Router cannot take anything until we yield. The
        # first message goes straight to the waiting Router, the next three fill the box.
        for n in range(4):
            sink.command_status("v1", status(f"cmd_{n}"), sender_session="s1")
        sink.vehicle_event("v1", location("v1"))  # mailbox full: dropped
        sink.command_status("v1", status("cmd_4"), sender_session="s1")
        sink.vehicle_event(
            "v1", ws_events.vehicle_connection("v1", False, "2025-12-16T10:30:45.123Z", 0)
        )
        sink.alert(alert("v1"))
        sink.vehicle_event("v1", location("v1"))  # overflow waiting: dropped too
        await trio.testing.wait_all_tasks_blocked()

        assert sink.dropped == 2
        assert peer.types() == [*["command_status"] * 5, "vehicle_connection", "alert"]
        assert [f["command_id"] for f in peer.frames[:5]] == [f"cmd_{n}" for n in range(5)]
        assert [f["seq"] for f in peer.frames[5:]] == [1001, 1002]
        assert registry.snapshot()[0]["overflow"] == 0


async def attached(sink: RouterSink, *peers: Peer) -> None:
    for peer in peers:
        handle = peer.handle
        await sink.ref.ask(lambda reply: Attach(handle, reply))  # noqa: B023  # asked at once


async def test_the_router_answers_whether_staff_is_online_and_which_vehicles_are_connected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_router() as (_, sink):
        viewer, operator = Peer("s1", "viewer"), Peer("s2", "operator")
        await attached(sink, viewer)
        assert await sink.staff_online() is False  # a viewer does not handle alerts
        await attached(sink, operator)
        assert await sink.staff_online() is True
        sink.detach("s2")
        assert await sink.staff_online() is False

        for vehicle_id, connected in (("v1", True), ("v2", True), ("v1", False)):
            sink.vehicle_event(
                vehicle_id, ws_events.vehicle_connection(vehicle_id, connected, TIME, seq=0)
            )
        assert await sink.connected_vehicles() == {"v2"}


async def test_a_router_that_does_not_answer_means_no_staff_online(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_router() as (registry, sink):
        await attached(sink, Peer("s1", "admin"))
        await registry.supervisor.stop_child(ROUTER_KIND, ROUTER_KEY)
        started = trio.current_time()
        assert await sink.staff_online() is False
        assert await sink.connected_vehicles() == frozenset()
        assert trio.current_time() == started  # a stopped Router answers at once


async def test_a_stopped_router_closes_every_session_with_1001(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_router() as (registry, sink):
        first, second = Peer("s1", "operator"), Peer("s2")
        await attached(sink, first, second)
        await registry.supervisor.stop_child(ROUTER_KIND, ROUTER_KEY)
        assert first.closed == second.closed == [(1001, "server going away")]


async def test_a_crashed_router_closes_every_session_with_1011_and_restarts_knowing_none(
    autojump_clock: trio.testing.MockClock,
) -> None:
    origins = iter([1000, 5000])
    async with running_router(lambda: RouterState(seq_origin=next(origins))) as (registry, sink):
        old = Peer("s1", "operator")
        await attached(sink, old)
        await sink.ref.ask(lambda reply: Subscribe("s1", ("v1",), None, reply))
        sink.vehicle_event("v1", location("v1"))
        await trio.testing.wait_all_tasks_blocked()
        assert old.seqs() == [1001]

        sink.ref.tell_nowait(PublishEvent("v1", None))  # type: ignore[arg-type]  # a bug
        await trio.testing.wait_all_tasks_blocked()
        assert old.closed == [(1011, "internal error")]

        await trio.sleep(1)  # past the restart backoff
        [router] = registry.supervisor.children()
        assert (router.restarts, router.running) == (1, True)
        with pytest.raises(LookupError):  # its sessions must attach again
            await sink.ref.ask(lambda reply: Subscribe("s1", ("v1",), None, reply))
        assert await sink.staff_online() is False
        again = Peer("s1", "operator")
        await attached(sink, again)
        await sink.ref.ask(lambda reply: Subscribe("s1", ("v1",), {"v1": 1001}, reply))
        sink.vehicle_event("v1", location("v1"))
        await trio.testing.wait_all_tasks_blocked()
        assert again.seqs() == [5001]  # numbered above anything the old one gave
        assert old.seqs() == [1001]


async def test_events_waiting_in_the_mailbox_are_fanned_out_in_bursts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The Router takes up to ROUTER_BURST more waiting messages in the same step, so a
    # session's writer finds them together and writes them at once.
    steps = TaskSteps()  # frames delivered in one step of the Router share one count
    delivered_in_step: list[int] = []
    peer = Peer("s1")
    deliver = peer.deliver

    all_delivered = trio.Event()

    def noting_step(frame: Frame) -> bool:
        delivered_in_step.append(steps.steps)
        alive = deliver(frame)
        if len(peer.frames) == 120:
            all_delivered.set()
        return alive

    peer.handle = SessionHandle("s1", "viewer", noting_step, peer.close)
    async with running_router(lambda: frozen_router(peer, s1=["*"])) as (_, sink):
        trio.lowlevel.add_instrument(steps)
        try:
            for _ in range(120):
                sink.vehicle_event("v1", location("v1"))
            await all_delivered.wait()
        finally:
            trio.lowlevel.remove_instrument(steps)
    assert peer.seqs() == list(range(1, 121))
    per_step = list(Counter(delivered_in_step).values())
    assert per_step == [1 + ROUTER_BURST, 1 + ROUTER_BURST, 120 - 2 * (1 + ROUTER_BURST)]
