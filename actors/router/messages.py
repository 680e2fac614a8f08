"""What the Router is told and answers, and what it needs of the bus between hubs: the
messages of its mailbox (:data:`RouterMessage`), a session's handle, and :class:`EventBus`.

Frozen values only: nothing a sender holds lets it reach into the Router.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from actors.sockets.encoded import Frame
from hub.runtime import Reply

Event = dict[str, Any]


class EventBus(Protocol):
    """The Router's side of the bus between hubs (``storage.redis_bus.RedisBus``). Every
    method returns at once; False means "not taken: deliver it on this hub". A fallback runs
    (on the bus's task) for a message taken but then lost with the connection."""

    @property
    def up(self) -> bool:
        """Whether the bus is connected now."""
        ...

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
        """Number (fleet-wide, at least ``floor + 1``) and publish an event."""
        ...

    def publish_status(
        self,
        vehicle_id: str,
        sender_session: str | None,
        text: str,
        fallback: Callable[[], None] | None,
    ) -> bool:
        """Publish a command status."""
        ...

    def publish_alert(self, text: str, fallback: Callable[[], None] | None) -> bool:
        """Publish an alert naming no vehicle."""
        ...

    def raise_floors(self, floors: Mapping[str, int]) -> None:
        """Lift the shared counters to at least these numbers."""
        ...


Deliver = Callable[[Frame], bool]  # queue a frame without blocking; False: the session is gone
Close = Callable[[int, str], None]  # end the session's socket with this code (never blocks)


@dataclass(frozen=True, slots=True)
class SessionHandle:  # what a session gives the Router: who it is, how to hand it a frame
    session_id: str
    role: str
    deliver: Deliver
    close: Close = field(default=lambda code, reason: None)


@dataclass(frozen=True, slots=True)
class Attached:  # answer to Attach; resumed: the session was attached already (restarted)
    subscriptions: frozenset[str]
    resumed: bool


@dataclass(frozen=True, slots=True)
class Subscribed:  # answer to Subscribe: every subscription now held, and what to replay
    subscriptions: frozenset[str]
    replay: tuple[Frame, ...]
    replayed: dict[str, bool]


@dataclass(frozen=True, slots=True)
class Attach:  # register a session, or give a restarted one its new deliver function
    handle: SessionHandle
    reply: Reply[Attached]


@dataclass(frozen=True, slots=True)
class Detach:  # forget a session and its subscriptions (its socket is gone)
    session_id: str


@dataclass(frozen=True, slots=True)
class Subscribe:  # add vehicle ids or "*"; replay after `since` where the buffer holds it
    session_id: str
    vehicle_ids: tuple[str, ...]
    since: Mapping[str, int] | None
    reply: Reply[Subscribed]


@dataclass(frozen=True, slots=True)
class Unsubscribe:  # drop vehicle ids ("*" drops the all-vehicles subscription)
    session_id: str
    vehicle_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StaffOnline:  # how many admin and operator sessions are attached now
    reply: Reply[int]


@dataclass(frozen=True, slots=True)
class ConnectedVehicles:  # the vehicles whose socket is open (from their connection events)
    reply: Reply[frozenset[str]]


@dataclass(frozen=True, slots=True)
class PublishEvent:  # a vehicle event built with seq 0: the Router numbers it
    vehicle_id: str
    event: Event


@dataclass(frozen=True, slots=True)
class PublishCommandStatus:  # for its sender session and the vehicle's subscribers
    vehicle_id: str
    event: Event
    sender_session: str | None


@dataclass(frozen=True, slots=True)
class PublishAlert:  # for every admin and operator session and the vehicle's subscribers
    event: Event

    @property
    def vehicle_id(self) -> str | None:
        """The vehicle the alert names, if it names one (its stream numbers the alert)."""
        vehicle_id = self.event.get("vehicle_id")
        return vehicle_id if isinstance(vehicle_id, str) else None


@dataclass(frozen=True, slots=True)
class RelayedEvent:  # a numbered event (or an alert naming a vehicle) the bus relays
    vehicle_id: str
    seq: int
    type: str
    text: str
    alert: bool


@dataclass(frozen=True, slots=True)
class RelayedStatus:  # a command status the bus relays
    vehicle_id: str
    sender_session: str | None
    text: str


@dataclass(frozen=True, slots=True)
class RelayedAlert:  # an alert naming no vehicle, relayed by the bus
    text: str


@dataclass(frozen=True, slots=True)
class BusState:  # the bus connected (up) or was lost
    up: bool


@dataclass(frozen=True, slots=True)
class DeliverHere:  # a publish the bus took and then lost: deliver it on this hub
    message: PublishEvent | PublishCommandStatus | PublishAlert


_Requests = Attach | Detach | Subscribe | Unsubscribe | StaffOnline | ConnectedVehicles
_Relayed = RelayedEvent | RelayedStatus | RelayedAlert | BusState | DeliverHere
RouterMessage = _Requests | PublishEvent | PublishCommandStatus | PublishAlert | _Relayed
