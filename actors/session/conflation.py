"""The outbound queue of one frontend session: telemetry conflated, everything else kept in order.

CONTRACT §6.2: "a slow consumer never slows the hub: when a session's outbound queue backs up,
telemetry events are conflated to the latest per vehicle and kind; alerts and command statuses
are never dropped". :class:`ConflatingQueue` does exactly that, with no I/O:

- a telemetry event (:data:`CONFLATABLE_TYPES`) that finds an older one with the same
  ``(vehicle_id, type)`` still waiting *replaces it in place*: the waiting slot keeps its
  position and takes the newest content. Nothing waits when the consumer keeps up, so
  conflation only happens when it does not;
- every other frame (alert, command_status, vehicle_connection, error_report, subscribed,
  error, pong…) is kept, in FIFO order;
- the must-deliver part is bounded: one frame past ``limit`` raises :class:`SlowConsumerError`,
  which the session turns into close code 1013 (the telemetry part is bounded by the number
  of vehicles times four kinds).

One consequence of replacing in place: a conflated event can leave the queue ahead of an
older must-deliver event of the same vehicle, so a client sees ``seq`` go up and down by a
little. A client keeps the *highest* ``seq`` it saw per vehicle for ``since``.

A :class:`Reservation` holds a place for frames that are not ready yet (the ``subscribed``
answer waits for a database snapshot): everything pushed after it waits behind it until it
is filled, so live events never overtake the answer and its replay.

:class:`SessionLink` puts the queue behind the :class:`~actors.sockets.outbound.OutboundLink`
interface that :func:`~actors.sockets.connection.run_socket` drains.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import trio

from actors.sockets.encoded import Frame
from actors.sockets.outbound import OVERLOADED, OutboundLink

CONFLATABLE_TYPES = frozenset(
    {"location_update", "status_update", "battery_update", "docking_update"}
)
"""Frame types that only matter as the latest per vehicle."""

DEFAULT_LIMIT = 10_000
"""Must-deliver frames a session may have waiting before it is closed as a slow consumer."""

SLOW_CONSUMER = "slow_consumer"
"""Close reason sent with code 1013 when a session's must-deliver backlog passes the limit."""


class SlowConsumerError(Exception):
    """Raised by :meth:`ConflatingQueue.push` / :meth:`~ConflatingQueue.fill` past the limit.

    The frame (or frames) were not added. The peer is not reading fast enough to take even
    the frames that may not be dropped; its session closes with 1013 ("try again later").
    """


class _Slot:
    """One waiting frame; ``key`` is set for a conflatable one (and indexes it)."""

    __slots__ = ("frame", "key")

    def __init__(self, frame: Frame, key: tuple[str, str] | None) -> None:
        self.frame = frame
        self.key = key


class Reservation:
    """A place in the queue for frames that will be given later (:meth:`ConflatingQueue.fill`)."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames: deque[Frame] | None = None

    @property
    def filled(self) -> bool:
        """True once :meth:`ConflatingQueue.fill` has been called for it."""
        return self.frames is not None


class ConflatingQueue:
    """A session's outbound frames: conflated telemetry, ordered must-deliver frames, a bound.

    One consumer (the socket writer) pops; any task pushes. Pushing never blocks.
    """

    __slots__ = ("_closed", "_index", "_must_deliver", "_slots", "_wakeup", "conflated", "limit")

    def __init__(self, *, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.limit = limit
        self.conflated = 0
        """How many telemetry frames were replaced by a newer one before being sent."""
        self._slots: deque[_Slot | Reservation] = deque()
        self._index: dict[tuple[str, str], _Slot] = {}
        self._must_deliver = 0
        self._closed = False
        self._wakeup = trio.Event()

    def __repr__(self) -> str:
        return f"<ConflatingQueue depth={self.depth} conflated={self.conflated}>"

    def __len__(self) -> int:
        return self.depth

    @property
    def depth(self) -> int:
        """Frames waiting to be sent (filled reservations included)."""
        return self._must_deliver + len(self._index)

    @property
    def must_deliver(self) -> int:
        """Waiting frames that may not be dropped or merged."""
        return self._must_deliver

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def push(self, frame: Frame, *, urgent: bool = False) -> None:
        """Add a frame; a waiting telemetry frame of the same vehicle and type is replaced.

        ``urgent`` puts a must-deliver frame in front of everything (heartbeat pings). Raises
        :class:`SlowConsumerError` (nothing added) when the must-deliver part is full, and
        :class:`trio.ClosedResourceError` once closed. Never blocks.
        """
        if self._closed:
            raise trio.ClosedResourceError("the queue is closed")
        frame_type = frame.get("type")
        if not urgent and frame_type in CONFLATABLE_TYPES:
            vehicle_id = frame.get("vehicle_id")
            if isinstance(vehicle_id, str):
                key = (vehicle_id, frame_type)
                waiting = self._index.get(key)
                if waiting is not None:
                    waiting.frame = frame
                    self.conflated += 1
                    return
                slot = self._index[key] = _Slot(frame, key)
                self._slots.append(slot)
                self._wakeup.set()
                return
        if self._must_deliver >= self.limit:
            raise SlowConsumerError(f"more than {self.limit} frames the peer must still get")
        self._must_deliver += 1
        if urgent:
            self._slots.appendleft(_Slot(frame, None))
        else:
            self._slots.append(_Slot(frame, None))
        self._wakeup.set()

    def reserve(self) -> Reservation:
        """Hold the next place in the queue; frames pushed later wait until it is filled.

        Fill every reservation (with no frames, if need be), or the queue stalls at it. On a
        closed queue the reservation holds no place (filling it does nothing).
        """
        reservation = Reservation()
        if not self._closed:
            self._slots.append(reservation)
        return reservation

    def fill(self, reservation: Reservation, frames: Iterable[Frame]) -> None:
        """Put ``frames`` (must-deliver, in order) in the reserved place and release the queue.

        Raises :class:`SlowConsumerError` when they do not fit under the limit (the
        reservation is then released empty), ``ValueError`` if it was filled already. Does
        nothing on a closed queue.
        """
        if reservation.frames is not None:
            raise ValueError("this reservation was filled already")
        batch = deque(frames)
        if self._closed:
            reservation.frames = deque()
            return
        if self._must_deliver + len(batch) > self.limit:
            reservation.frames = deque()
            self._wakeup.set()
            raise SlowConsumerError(f"more than {self.limit} frames the peer must still get")
        reservation.frames = batch
        self._must_deliver += len(batch)
        self._wakeup.set()

    def pop_nowait(self) -> Frame:
        """The next frame to send; :class:`trio.WouldBlock` when there is none ready.

        None is ready while the queue is empty or its head is an unfilled reservation.
        """
        slots = self._slots
        while slots:
            head = slots[0]
            if isinstance(head, _Slot):
                slots.popleft()
                if head.key is None:
                    self._must_deliver -= 1
                else:
                    del self._index[head.key]
                return head.frame
            if head.frames is None:
                break
            if head.frames:
                self._must_deliver -= 1
                return head.frames.popleft()
            slots.popleft()
        raise trio.WouldBlock

    async def pop(self) -> Frame:
        """The next frame to send, waiting while there is none ready.

        Raises :class:`trio.ClosedResourceError` once the queue is closed. Cancellation while
        waiting takes nothing.
        """
        while True:
            if self._closed:
                raise trio.ClosedResourceError("the queue is closed")
            try:
                return self.pop_nowait()
            except trio.WouldBlock:
                pass
            self._wakeup = trio.Event()
            await self._wakeup.wait()

    def close(self) -> None:
        """Discard everything waiting; :meth:`pop` raises from now on. Idempotent."""
        if not self._closed:
            self._closed = True
            self._slots.clear()
            self._index.clear()
            self._must_deliver = 0
            self._wakeup.set()


class SessionLink(OutboundLink):
    """The :class:`OutboundLink` of a frontend socket, backed by a :class:`ConflatingQueue`.

    Everything sent on it (events from the Router, answers from the session, pings and
    error frames from :func:`~actors.sockets.connection.run_socket`) goes through the queue, so
    the backlog of a slow peer is conflated there. Heartbeat pings jump the queue. A
    must-deliver backlog past the limit closes the link with 1013 ``slow_consumer``.
    """

    def __init__(self, queue: ConflatingQueue | None = None, *, label: str = "session") -> None:
        super().__init__(capacity=1, label=label)
        self.queue = queue if queue is not None else ConflatingQueue()

    def depth(self) -> int:
        """Frames waiting to be written."""
        return self.queue.depth

    def send_nowait(self, frame: Frame, *, urgent: bool = False) -> bool:
        """Queue a frame; False if the link is closed, or closes now as a slow consumer."""
        if self.closed:
            return False
        try:
            self.queue.push(frame, urgent=urgent or frame.get("type") == "ping")
        except SlowConsumerError:
            self.close(OVERLOADED, SLOW_CONSUMER)
            return False
        return True

    def fill(self, reservation: Reservation, frames: Iterable[Frame]) -> bool:
        """:meth:`ConflatingQueue.fill`; False if closed, or closes now as a slow consumer."""
        try:
            self.queue.fill(reservation, frames)
        except SlowConsumerError:
            self.close(OVERLOADED, SLOW_CONSUMER)
            return False
        return not self.closed

    def close(self, code: int, reason: str) -> None:
        """Ask the socket to close with ``code``; frames still waiting are discarded."""
        super().close(code, reason)
        self.queue.close()

    def next_frame_nowait(self) -> Frame | None:
        """The next frame to write if one is ready, else None (also once closed)."""
        if self.closed:
            return None
        try:
            return self.queue.pop_nowait()
        except trio.WouldBlock:
            return None

    async def next_frame(self) -> Frame:
        """The next frame to write; waits while none is ready.

        Raises :class:`~actors.sockets.outbound.LinkClosedError` once the link is closed.
        """
        if not self.closed:
            try:
                return await self.queue.pop()
            except trio.ClosedResourceError:
                pass
        return await super().next_frame()  # closed: raises LinkClosedError
