"""The Router with a bus between hubs: it publishes instead of numbering, fans out what the bus
relays (numbered fleet-wide), numbers on its own hub while the bus is away, and lifts the
shared counters above those numbers when the bus returns.

The bus here is a fake that records what it is given (unit test of the Router's logic); the
real one is exercised with real Redis and two hub processes in ``tests/e2e/test_two_hubs.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.router.actor import (
    Overflow,
    Router,
    RouterState,
)
from actors.router.messages import (
    BusState,
    DeliverHere,
    PublishCommandStatus,
    PublishEvent,
    RelayedEvent,
    RelayedStatus,
)
from actors.router.replay import ReplayLimits
from tests.unit.test_router import FROZEN, Peer, location

VEHICLE = "wheelchair_001"


@dataclass
class FakeBus:
    up: bool = True
    events: list[tuple[str, str, int, Callable[[], None] | None]] = field(default_factory=list)
    statuses: list[tuple[str, str | None, str]] = field(default_factory=list)
    floors: list[dict[str, int]] = field(default_factory=list)

    def publish_event(
        self,
        vehicle_id: str,
        type: str,
        text_before_seq: str,
        *,
        floor: int,
        alert: bool = False,
        fallback: Callable[[], None] | None = None,
    ) -> bool:
        if not self.up:
            return False
        self.events.append((vehicle_id, text_before_seq, floor, fallback))
        return True

    def publish_status(
        self,
        vehicle_id: str,
        sender_session: str | None,
        text: str,
        fallback: Callable[[], None] | None,
    ) -> bool:
        if not self.up:
            return False
        self.statuses.append((vehicle_id, sender_session, text))
        return True

    def publish_alert(self, text: str, fallback: Callable[[], None] | None) -> bool:
        return self.up

    def raise_floors(self, floors: Mapping[str, int]) -> None:
        self.floors.append(dict(floors))


def router_with(bus: FakeBus) -> tuple[Router, Peer, list[DeliverHere]]:
    lost: list[DeliverHere] = []
    state = RouterState(ReplayLimits(), seq_origin=1000, clock=FROZEN)
    router = Router(state, Overflow(), bus=bus, deliver_here=lost.append)
    watcher = Peer("s1")
    state.attach(watcher.handle)
    state.subscribe("s1", [VEHICLE], None)
    return router, watcher, lost


def relayed(seq: int, text_before_seq: str) -> RelayedEvent:
    return RelayedEvent(VEHICLE, seq, "location_update", f"{text_before_seq}{seq}}}", False)


def subscribe_since(router: Router, since: int) -> Any:
    return router.state.subscribe("s1", [VEHICLE], {VEHICLE: since})


def test_with_the_bus_up_an_event_is_published_not_delivered_until_the_bus_relays_it() -> None:
    bus = FakeBus()
    router, watcher, _ = router_with(bus)
    router.handle(PublishEvent(VEHICLE, location(VEHICLE)))
    assert watcher.frames == []
    ((vehicle_id, text, floor, _),) = bus.events
    assert vehicle_id == VEHICLE and floor == 0  # nothing delivered for it on this hub yet
    assert json.loads(f"{text}7}}")["seq"] == 7  # the bus only adds the number
    router.handle(relayed(5_000_001, text))
    router.handle(relayed(5_000_002, text))
    assert watcher.seqs() == [5_000_001, 5_000_002]
    assert watcher.frames[0]["location"]["latitude"] == 35.0
    router.handle(PublishEvent(VEHICLE, location(VEHICLE)))
    assert bus.events[-1][2] == 5_000_002  # the floor: the last seq this hub delivered


def test_a_relayed_event_below_what_was_delivered_is_dropped_and_replay_follows_the_bus() -> None:
    bus = FakeBus()
    router, watcher, _ = router_with(bus)
    router.handle(PublishEvent(VEHICLE, location(VEHICLE)))
    text = bus.events[0][1]
    for seq in (10, 11, 12):
        router.handle(relayed(seq, text))
    router.handle(relayed(11, text))
    assert watcher.seqs() == [10, 11, 12]
    assert router.state.stale == 1
    answer = subscribe_since(router, 10)
    assert answer.replayed == {VEHICLE: True}
    assert [frame.seq for frame in answer.replay] == [11, 12]
    router.handle(relayed(50, text))  # a jump: the numbers between cannot be replayed
    assert subscribe_since(router, 12).replayed == {VEHICLE: False}


def test_with_the_bus_away_the_hub_numbers_itself_and_lifts_the_counters_when_it_returns() -> None:
    bus = FakeBus(up=False)
    router, watcher, _ = router_with(bus)
    router.handle(PublishEvent(VEHICLE, location(VEHICLE)))
    router.handle(PublishEvent(VEHICLE, location(VEHICLE)))
    assert watcher.seqs() == [1001, 1002]
    bus.up = True
    router.handle(BusState(up=True))
    assert bus.floors == [{VEHICLE: 1002}]
    router.handle(BusState(up=True))
    assert bus.floors == [{VEHICLE: 1002}]  # once: nothing numbered here since


def test_a_publish_the_bus_lost_is_delivered_on_this_hub() -> None:
    bus = FakeBus()
    router, watcher, lost = router_with(bus)
    router.handle(PublishEvent(VEHICLE, location(VEHICLE)))
    fallback = bus.events[0][3]
    assert fallback is not None
    fallback()
    (message,) = lost
    router.handle(message)
    assert watcher.seqs() == [1001]


def test_a_command_status_goes_through_the_bus_and_reaches_its_sender_from_there() -> None:
    bus = FakeBus()
    router, watcher, _ = router_with(bus)
    status = {"type": "command_status", "vehicle_id": VEHICLE, "command_id": "c1"}
    router.handle(PublishCommandStatus(VEHICLE, status, "s1"))
    assert watcher.frames == []
    ((vehicle_id, sender, text),) = bus.statuses
    router.handle(RelayedStatus(vehicle_id, sender, text))
    assert watcher.frames == [status]  # once, though it is both sender and watcher
