"""How everyone else talks to the Router: :class:`RouterSink`, which never blocks a publisher.

With the Router's mailbox full, telemetry events are dropped (counted, logged once per
thousand) — frontends catch up from the next one and ``since`` replay — while must-deliver
messages (command statuses, alerts, detaches) wait in the bounded :class:`Overflow`. A full
overflow loses the message visibly (counted in ``router_undelivered``): its status or alert
is still in the database. Questions to the Router (staff online, connected vehicles) are
asks with a short deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any, Protocol

import trio

from actors.router.actor import (
    ROUTER_KEY,
    ROUTER_KIND,
    ROUTER_MAILBOX_SIZE,
    Overflow,
    Router,
    RouterState,
)
from actors.router.messages import (
    BusState,
    ConnectedVehicles,
    DeliverHere,
    Detach,
    EventBus,
    PublishAlert,
    PublishCommandStatus,
    PublishEvent,
    RelayedAlert,
    RelayedEvent,
    RelayedStatus,
    RouterMessage,
    StaffOnline,
)
from actors.session.conflation import CONFLATABLE_TYPES
from hub import metrics
from hub.runtime import ActorCrashedError, ActorRef, ActorStoppedError, MailboxFullError, Registry

logger = logging.getLogger(__name__)

QUESTION_TIMEOUT = 1.0  # seconds an ask of the Router may take before the asker gives up


class RouterSink:
    """Publishing to the Router (never blocks) and asking it (bounded waits)."""

    def __init__(
        self,
        ref: ActorRef[RouterMessage],
        overflow: Overflow,
        presence: Presence | None = None,
    ) -> None:
        self.ref = ref
        self._overflow = overflow
        self._presence = presence
        self.dropped = 0  # telemetry events dropped because the Router's mailbox was full

    def vehicle_event(self, vehicle_id: str, event: dict[str, Any]) -> None:
        """Publish a vehicle event (telemetry may be dropped under overload; others not)."""
        self._tell(
            PublishEvent(vehicle_id, event), droppable=event.get("type") in CONFLATABLE_TYPES
        )

    def command_status(
        self, vehicle_id: str, event: dict[str, Any], *, sender_session: str | None
    ) -> None:
        """Publish a command status (must be delivered)."""
        self._tell(PublishCommandStatus(vehicle_id, event, sender_session), droppable=False)

    def alert(self, event: dict[str, Any]) -> None:
        """Publish an alert to staff sessions and subscribers (must be delivered)."""
        self._tell(PublishAlert(event), droppable=False)

    def relayed_event(
        self, vehicle_id: str, seq: int, type: str, text: str, *, alert: bool
    ) -> None:
        """An event from the bus (telemetry may be dropped under overload; others not)."""
        self._tell(
            RelayedEvent(vehicle_id, seq, type, text, alert),
            droppable=not alert and type in CONFLATABLE_TYPES,
        )

    def relayed_status(self, vehicle_id: str, sender_session: str | None, text: str) -> None:
        """A command status from the bus (must be delivered)."""
        self._tell(RelayedStatus(vehicle_id, sender_session, text), droppable=False)

    def relayed_alert(self, text: str) -> None:
        """An alert naming no vehicle, from the bus (must be delivered)."""
        self._tell(RelayedAlert(text), droppable=False)

    def bus_state(self, up: bool) -> None:
        """The bus connected or was lost."""
        self._tell(BusState(up), droppable=False)

    def deliver_here(self, message: DeliverHere) -> None:
        """A publish the bus lost: deliver it on this hub (must be delivered)."""
        self._tell(message, droppable=False)

    def detach(self, session_id: str) -> None:
        """Forget a session; safe to call from a cancelled task (never blocks)."""
        self._tell(Detach(session_id), droppable=False)

    async def staff_online(self) -> bool:
        """Whether an admin or operator session is attached right now (False if the Router
        does not answer within a second)."""
        with trio.move_on_after(QUESTION_TIMEOUT):
            try:
                return await self.ref.ask(StaffOnline) > 0
            except (ActorCrashedError, ActorStoppedError):
                return False
        return False

    async def connected_vehicles(self, among: Collection[str] = ()) -> frozenset[str]:
        """The vehicles with an open socket, on any hub when there is a bus (its presence
        records, for the vehicles named in ``among``), else on this hub (from their
        connection events). Empty if nobody answers within a second."""
        if self._presence is not None and among:
            owners = await self._presence.owners(among)
            if owners is not None:
                return frozenset(owners)
        with trio.move_on_after(QUESTION_TIMEOUT):
            try:
                return await self.ref.ask(ConnectedVehicles)
            except (ActorCrashedError, ActorStoppedError):
                return frozenset()
        return frozenset()

    def _tell(self, message: RouterMessage, *, droppable: bool) -> None:
        if not self._overflow.messages:
            try:
                self.ref.tell_nowait(message)
                return
            except MailboxFullError:
                pass
            except ActorStoppedError:
                return  # the hub is shutting down
        if not droppable:
            if len(self._overflow.messages) < self._overflow.capacity:
                self._overflow.messages.append(message)
                return
            self._overflow.lost += 1
            metrics.router_undelivered.labels(type(message).__name__).inc()
            if self._overflow.lost % 1000 == 1:
                logger.error(
                    "router overloaded: %d must-deliver messages lost (%s)",
                    self._overflow.lost,
                    type(message).__name__,
                )
            return
        self.dropped += 1
        metrics.router_undelivered.labels("telemetry").inc()
        if self.dropped % 1000 == 1:  # the first of each thousand, not a line per event
            logger.warning("router mailbox full: telemetry dropped (%d so far)", self.dropped)


def seq_origin_now() -> int:
    """Where a Router incarnation's event numbering starts: wall-clock microseconds.

    A restarted Router (or hub) then numbers events above anything a frontend saw before, so
    a reconnecting frontend's ``since`` is never mistaken for a position in the new stream.
    """
    return time.time_ns() // 1000


class Presence(Protocol):
    """Who holds which vehicle's socket, across hubs (``storage.redis_bus.RedisBus``)."""

    async def owners(self, vehicle_ids: Collection[str]) -> dict[str, str] | None:
        """The hub holding each connected vehicle's socket; None when it cannot say."""
        ...


async def start_router(
    actors: Registry,
    make_state: Callable[[], RouterState] | None = None,
    *,
    mailbox_size: int = ROUTER_MAILBOX_SIZE,
    bus: EventBus | None = None,
    presence: Presence | None = None,
) -> RouterSink:
    """Start the Router under ``actors`` and return its sink (``ValueError`` if running).

    Every incarnation gets a fresh state from ``make_state`` (default: default replay limits,
    numbering from :func:`seq_origin_now`). With ``bus``, events go through it (see
    :class:`~actors.router.actor.Router`); with ``presence``, ``connected`` is fleet-wide.
    """
    fresh = make_state or (lambda: RouterState(seq_origin=seq_origin_now()))
    overflow = Overflow()
    sinks: list[RouterSink] = []

    def deliver_here(message: DeliverHere) -> None:
        sinks[0].deliver_here(message)

    ref: ActorRef[RouterMessage] = await actors.supervisor.start_child(
        ROUTER_KIND,
        ROUTER_KEY,
        lambda: Router(fresh(), overflow, bus=bus, deliver_here=deliver_here),
        mailbox_size=mailbox_size,
    )
    sinks.append(RouterSink(ref, overflow, presence))
    return sinks[0]
