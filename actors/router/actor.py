"""The Router: who watches which vehicle, per-vehicle ``seq`` and replay, fan-out (CONTRACT §6.2).

- :class:`RouterState` — subscription index, ``seq`` counters, replay buffers, fan-out rules:
  plain synchronous methods. Fan-out hands an event to each session's ``deliver`` (its
  :class:`~actors.session.conflation.SessionLink`) with no await, so it reaches every session queue
  as soon as the Router takes it.
- :class:`Router` — the actor (``"router"``/``"main"``) applying its mailbox to its state. Each
  incarnation starts from a fresh state and closes every session it knew when it ends.
- :class:`Overflow` — the bounded lane for must-deliver messages sent while the mailbox is full
  (see :mod:`actors.router.sink` for how publishers use it).

``seq`` starts at ``seq_origin + 1`` per vehicle and only grows; a new incarnation (or hub)
numbers from a new origin (the wall clock in µs), above any earlier ``seq``, so every
``since`` from before answers ``replayed: false``.

With a bus (several hubs on Redis, :class:`EventBus`), the Router does not number or fan out
what it is given: it publishes it, and fans out what the bus relays — every hub's events,
its own included, numbered fleet-wide — so each hub's sessions see the whole fleet. While the
bus is away it numbers and delivers on its own hub as without one, and when the bus returns
it lifts the shared counters above the numbers it gave meanwhile.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import trio

from actors.router.messages import (
    Attach,
    Attached,
    BusState,
    ConnectedVehicles,
    DeliverHere,
    Detach,
    Event,
    EventBus,
    PublishAlert,
    PublishCommandStatus,
    PublishEvent,
    RelayedAlert,
    RelayedEvent,
    RelayedStatus,
    RouterMessage,
    SessionHandle,
    StaffOnline,
    Subscribe,
    Subscribed,
    Unsubscribe,
)
from actors.router.replay import ReplayLimits, VehicleReplay, encode_numbered, text_before_seq
from actors.sockets.encoded import EncodedEvent, Frame
from hub.contract.roles import STAFF
from hub.logs import reset_log_context
from hub.runtime import Inbox, ended_by_cancellation

logger = logging.getLogger(__name__)

ROUTER_KIND = "router"
ROUTER_KEY = "main"
ROUTER_MAILBOX_SIZE = 50_000
OVERFLOW_CAPACITY = 10_000
EXPIRE_INTERVAL = 30.0  # seconds between sweeps of replay events past their age
ROUTER_BURST = 50
"""Messages already waiting that the Router handles in one turn, without a checkpoint between
them: the sessions' writers then find a burst of frames and write it in one go (one event to
50 sessions costs about 0.14 ms, so a burst holds the loop for about 7 ms at most)."""
DEFAULT_REPLAY = ReplayLimits()
ALL_VEHICLES = "*"
STAFF_ROLES = frozenset(STAFF)
_NOBODY: frozenset[str] = frozenset()


class Overflow:
    """Must-deliver messages (command statuses, alerts, detaches) sent while the Router's
    mailbox was full, in order, bounded by ``capacity``.

    Past the bound a message is lost: counted in ``lost`` (and the ``router_undelivered``
    metric) and logged — the statuses and alerts it carried are still in the database. The
    Router drains it, oldest first, whenever its mailbox is empty.
    """

    def __init__(self, capacity: int = OVERFLOW_CAPACITY) -> None:
        self.capacity = capacity
        self.messages: deque[RouterMessage] = deque()
        self.lost = 0


class RouterState:
    """Sessions, subscriptions, ``seq`` counters, replay buffers and the fan-out rules."""

    def __init__(
        self,
        limits: ReplayLimits = DEFAULT_REPLAY,
        *,
        seq_origin: int = 0,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self.seq_origin = seq_origin
        self.sessions: dict[str, SessionHandle] = {}
        self._subscriptions: dict[str, set[str]] = {}  # session id → vehicle ids and "*"
        self._followers: dict[str, set[str]] = {}  # vehicle id → sessions naming it
        self._everything: set[str] = set()  # sessions subscribed to "*"
        self._staff: set[str] = set()  # admin and operator sessions: every alert
        self._seq: dict[str, int] = {}
        self._replays: dict[str, VehicleReplay] = {}
        self._gone: list[str] = []
        self.connected: set[str] = set()  # vehicles whose last connection event said connected
        self.delivered = 0
        self.stale = 0  # relayed events numbered below what this hub delivered already

    def attach(self, handle: SessionHandle) -> Attached:
        """Register a session; a known id keeps its subscriptions and takes the new handle."""
        session_id = handle.session_id
        resumed = session_id in self.sessions
        self.sessions[session_id] = handle
        subscriptions = self._subscriptions.setdefault(session_id, set())
        if handle.role in STAFF_ROLES:
            self._staff.add(session_id)
        return Attached(frozenset(subscriptions), resumed)

    def detach(self, session_id: str) -> bool:
        """Forget a session and every subscription it had; False if it was not attached."""
        if self.sessions.pop(session_id, None) is None:
            return False
        self._drop(session_id, self._subscriptions.pop(session_id))
        self._staff.discard(session_id)
        return True

    def subscribe(
        self, session_id: str, vehicle_ids: Iterable[str], since: Mapping[str, int] | None
    ) -> Subscribed:
        """Add subscriptions (``KeyError`` if not attached); replay after ``since``.

        ``replayed[v]`` is true when the buffer covers ``since + 1`` up to the current ``seq``
        (those events are in ``replay``), false when it cannot fill the gap or ``since`` is
        beyond the current ``seq`` (the client must reload). Only subscribed vehicles count.
        """
        subscriptions = self._subscriptions[session_id]
        for vehicle_id in vehicle_ids:
            if vehicle_id in subscriptions:
                continue
            subscriptions.add(vehicle_id)
            if vehicle_id == ALL_VEHICLES:
                self._everything.add(session_id)
            else:
                self._followers.setdefault(vehicle_id, set()).add(session_id)
        replay: list[Frame] = []
        replayed: dict[str, bool] = {}
        watches_all = ALL_VEHICLES in subscriptions
        for vehicle_id, last_seq in (since or {}).items():
            if watches_all or vehicle_id in subscriptions:
                replayed[vehicle_id] = self._replay(vehicle_id, last_seq, replay)
        return Subscribed(frozenset(subscriptions), tuple(replay), replayed)

    def unsubscribe(self, session_id: str, vehicle_ids: Iterable[str]) -> frozenset[str]:
        """Drop subscriptions; the ones left (empty for an unknown session)."""
        subscriptions = self._subscriptions.get(session_id, set())
        dropped = subscriptions.intersection(vehicle_ids)
        subscriptions -= dropped
        self._drop(session_id, dropped)
        return frozenset(subscriptions)

    def current_seq(self, vehicle_id: str) -> int:
        """The last ``seq`` given to the vehicle's events (``seq_origin`` before the first)."""
        return self._seq.get(vehicle_id, self.seq_origin)

    def publish_event(self, vehicle_id: str, event: Event) -> None:
        """Number the event, keep it for replay, hand it to the vehicle's subscribers."""
        if event.get("type") == "vehicle_connection":
            self._note_connection(vehicle_id, bool(event.get("connected")))
        self._fan_out(vehicle_id, self._number(vehicle_id, event), ())

    def accept_numbered(
        self, vehicle_id: str, seq: int, type: str, text: str, *, alert: bool = False
    ) -> None:
        """An event numbered elsewhere (the bus): keep it for replay and hand it on, unless
        its ``seq`` is not above the last one this hub delivered for the vehicle (it was
        numbered while the bus was away; counted in ``stale`` and dropped)."""
        last = self._seq.get(vehicle_id)
        if last is not None and seq <= last:
            self.stale += 1
            return
        self._seq[vehicle_id] = seq
        if type == "vehicle_connection":
            self._note_connection(vehicle_id, bool(json.loads(text).get("connected")))
        numbered = EncodedEvent(text, type=type, vehicle_id=vehicle_id, seq=seq)
        self._keep(vehicle_id, numbered)
        self._fan_out(vehicle_id, numbered, self._staff if alert else ())

    def _note_connection(self, vehicle_id: str, connected: bool) -> None:
        if connected:
            self.connected.add(vehicle_id)
        else:
            self.connected.discard(vehicle_id)

    def last_delivered(self, vehicle_id: str) -> int:
        """The last ``seq`` this hub delivered for the vehicle (0 before any)."""
        return self._seq.get(vehicle_id, 0)

    def publish_command_status(self, vehicle_id: str, event: Event, sender: str | None) -> None:
        """To the sender session and the vehicle's subscribers, each once. No ``seq``."""
        self._fan_out(vehicle_id, event, (sender,) if sender in self.sessions else ())

    def publish_alert(self, event: Event) -> None:
        """To every admin and operator session and the vehicle's subscribers, each once.

        An alert naming a vehicle is part of its stream: it gets a ``seq`` and is replayed.
        """
        vehicle_id = event.get("vehicle_id")
        if isinstance(vehicle_id, str):
            self._fan_out(vehicle_id, self._number(vehicle_id, event), self._staff)
        else:
            self._fan_out(None, event, self._staff)

    def staff_sessions(self) -> int:
        """How many admin and operator sessions are attached."""
        return len(self._staff)

    def close_all(self, code: int, reason: str) -> None:
        """End every attached session's socket (the Router is going away: they must reconnect
        to the next one, which knows none of them)."""
        for handle in self.sessions.values():
            try:
                handle.close(code, reason)
            except Exception:
                logger.exception("closing session %s failed", handle.session_id)

    def describe(self) -> dict[str, Any]:
        """Counts for /debug/actors."""
        return {
            "sessions": len(self.sessions),
            "staff_sessions": len(self._staff),
            "all_vehicle_subscribers": len(self._everything),
            "subscriptions": sum(len(subs) for subs in self._subscriptions.values()),
            "vehicles_followed": len(self._followers),
            "vehicles_numbered": len(self._seq),
            "replay_events": sum(len(replay) for replay in self._replays.values()),
            "delivered": self.delivered,
            "stale_dropped": self.stale,
        }

    def _number(self, vehicle_id: str, event: Event) -> EncodedEvent:
        """Give the event the vehicle's next ``seq``, encode it once, keep it for replay."""
        seq = self._seq[vehicle_id] = self._seq.get(vehicle_id, self.seq_origin) + 1
        numbered = encode_numbered(event, seq)
        self._keep(vehicle_id, numbered)
        return numbered

    def _keep(self, vehicle_id: str, numbered: EncodedEvent) -> None:
        replay = self._replays.get(vehicle_id)
        if replay is None:
            replay = self._replays[vehicle_id] = VehicleReplay()
        replay.add(numbered, self._clock(), self.limits)

    def expire_replays(self) -> None:
        """Forget replay events past their age, of vehicles gone quiet too (periodic)."""
        now = self._clock()
        for vehicle_id, replay in list(self._replays.items()):
            replay.expire(now, self.limits)
            if not replay:
                del self._replays[vehicle_id]

    def _replay(self, vehicle_id: str, last_seq: int, into: list[Frame]) -> bool:
        current = self.current_seq(vehicle_id)
        if last_seq >= current:
            return last_seq == current  # nothing missed, or a position from the future
        replay = self._replays.get(vehicle_id)
        events = None if replay is None else replay.after(last_seq, vehicle_id)
        if events is None:
            return False  # a gap the buffer cannot fill
        into.extend(events)
        return True

    def _fan_out(self, vehicle_id: str | None, event: Frame, first: Collection[str]) -> None:
        """To ``first``, then the vehicle's followers and "*" sessions: each session once."""
        for session_id in first:
            self._send(session_id, event)
        if vehicle_id is not None:
            followers = self._followers.get(vehicle_id, _NOBODY)
            for session_id in followers:
                if session_id not in first:
                    self._send(session_id, event)
            for session_id in self._everything:
                if session_id not in followers and session_id not in first:
                    self._send(session_id, event)
        if self._gone:  # sessions whose link closed; their own Detach may come later
            for session_id in self._gone:
                self.detach(session_id)
            self._gone.clear()

    def _send(self, session_id: str, event: Frame) -> None:
        handle = self.sessions.get(session_id)
        if handle is None:
            return
        try:
            alive = handle.deliver(event)
        except Exception:  # one broken session must not stop the fan-out to the others
            logger.exception("delivery to session %s failed; detaching it", session_id)
            alive = False
        if alive:
            self.delivered += 1
        else:
            self._gone.append(session_id)

    def _drop(self, session_id: str, subscriptions: Iterable[str]) -> None:
        for vehicle_id in subscriptions:
            if vehicle_id == ALL_VEHICLES:
                self._everything.discard(session_id)
            elif (followers := self._followers.get(vehicle_id)) is not None:
                followers.discard(session_id)
                if not followers:
                    del self._followers[vehicle_id]


class Router:
    """The Router actor: the only owner of a :class:`RouterState`, applying its messages in order.

    Each incarnation starts from a fresh state (a restart forgets sessions, counters and
    replay buffers). When an incarnation ends, every session it knew is closed — 1001 when the
    hub stops, 1011 after a crash — so frontends reconnect and subscribe again (their
    ``since`` then answers ``replayed: false``).
    """

    def __init__(
        self,
        state: RouterState,
        overflow: Overflow,
        *,
        bus: EventBus | None = None,
        deliver_here: Callable[[DeliverHere], None] = lambda message: None,
    ) -> None:
        self.state = state
        self._overflow = overflow
        self._bus = bus
        self._deliver_here = deliver_here  # how a bus fallback reaches this mailbox
        self._numbered_here: set[str] = set()  # vehicles numbered on this hub, bus away

    async def run(self, inbox: Inbox[RouterMessage], *, task_status: trio.TaskStatus[None]) -> None:
        """Handle messages until cancelled; drain the overflow whenever the mailbox is empty;
        every :data:`EXPIRE_INTERVAL` seconds forget replay events past their age."""
        reset_log_context()
        task_status.started()
        next_expiry = trio.current_time() + EXPIRE_INTERVAL
        try:
            while True:
                with trio.move_on_at(next_expiry):
                    try:
                        message = await inbox.receive()
                    except trio.ClosedResourceError:
                        return
                    self.handle(message)
                    self._handle_waiting(inbox)
                    # The overflow holds messages sent after the mailbox filled up: next in line.
                    while self._overflow.messages and inbox.depth() == 0:
                        self.handle(self._overflow.messages.popleft())
                    continue
                self.state.expire_replays()
                next_expiry = trio.current_time() + EXPIRE_INTERVAL
        except BaseException as exc:
            stopping = ended_by_cancellation(exc)
            self.state.close_all(
                *((1001, "server going away") if stopping else (1011, "internal error"))
            )
            raise

    def _handle_waiting(self, inbox: Inbox[RouterMessage]) -> None:
        """Handle up to :data:`ROUTER_BURST` messages that are waiting already (no await)."""
        for _ in range(ROUTER_BURST):
            try:
                message = inbox.receive_nowait()
            except (trio.WouldBlock, trio.ClosedResourceError):
                return
            self.handle(message)

    def handle(self, message: RouterMessage) -> None:
        """Apply one message (no await: fan-out is synchronous)."""
        state = self.state
        match message:
            case PublishEvent() | PublishCommandStatus() | PublishAlert():
                if not self._published(message):
                    self._here(message)
            case RelayedEvent(vehicle_id, seq, type, text, alert):
                state.accept_numbered(vehicle_id, seq, type, text, alert=alert)
            case RelayedStatus(vehicle_id, sender_session, text):
                state.publish_command_status(vehicle_id, json.loads(text), sender_session)
            case RelayedAlert(text):
                state.publish_alert(json.loads(text))
            case DeliverHere(original):
                self._here(original)
            case BusState(up):
                if up and self._bus is not None and self._numbered_here:
                    self._bus.raise_floors(
                        {v: state.last_delivered(v) for v in self._numbered_here}
                    )
                    self._numbered_here.clear()
            case Attach(handle, reply):
                reply.send(state.attach(handle))
            case Detach(session_id):
                state.detach(session_id)
            case Subscribe(session_id, vehicle_ids, since, reply):
                if session_id in state.sessions:
                    reply.send(state.subscribe(session_id, vehicle_ids, since))
                else:
                    reply.fail(LookupError(f"session {session_id} is not attached"))
            case Unsubscribe(session_id, vehicle_ids):
                state.unsubscribe(session_id, vehicle_ids)
            case StaffOnline(reply):
                reply.send(state.staff_sessions())
            case ConnectedVehicles(reply):
                reply.send(frozenset(state.connected))

    def _published(self, message: PublishEvent | PublishCommandStatus | PublishAlert) -> bool:
        """Hand a publish to the bus; False when it is away (deliver on this hub)."""
        bus = self._bus
        if bus is None or not bus.up:
            return False

        def fallback() -> None:
            self._deliver_here(DeliverHere(message))

        if isinstance(message, PublishCommandStatus):
            text = _encode(message.event)
            return bus.publish_status(message.vehicle_id, message.sender_session, text, fallback)
        event, vehicle_id = message.event, message.vehicle_id
        if vehicle_id is None:
            return bus.publish_alert(_encode(event), fallback)
        return bus.publish_event(
            vehicle_id,
            str(event.get("type")),
            text_before_seq(event),
            floor=self.state.last_delivered(vehicle_id),
            alert=isinstance(message, PublishAlert),
            fallback=fallback,
        )

    def _here(self, message: PublishEvent | PublishCommandStatus | PublishAlert) -> None:
        """Number (where it has a vehicle) and fan out on this hub only."""
        state = self.state
        match message:
            case PublishEvent(vehicle_id, event):
                state.publish_event(vehicle_id, event)
                if self._bus is not None:
                    self._numbered_here.add(vehicle_id)
            case PublishCommandStatus(vehicle_id, event, sender_session):
                state.publish_command_status(vehicle_id, event, sender_session)
            case PublishAlert(event):
                state.publish_alert(event)
                if self._bus is not None and message.vehicle_id is not None:
                    self._numbered_here.add(message.vehicle_id)

    def describe(self) -> dict[str, Any]:
        """Fields for /debug/actors."""
        return {
            **self.state.describe(),
            "overflow": len(self._overflow.messages),
            "undelivered": self._overflow.lost,
        }


def _encode(event: Event) -> str:
    return json.dumps(event, separators=(",", ":"), allow_nan=False)
