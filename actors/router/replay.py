"""What the Router keeps for ``since`` replay (CONTRACT §6.2): each event once, encoded.

Per vehicle, the events of the last :attr:`ReplayLimits.max_age` seconds, at most
:attr:`ReplayLimits.max_events` of them. An event is kept as the JSON text sent to the
sessions, not as a dict, packed into flat buffers (:class:`VehicleReplay`): nothing the
garbage collector has to walk (a heap of millions of event dicts made every full collection
a stall of the loop). ``seq`` numbers of one vehicle are consecutive, so a buffer stores the
first one only.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass
from typing import Any

from actors.sockets.encoded import EncodedEvent


@dataclass(frozen=True, slots=True)
class ReplayLimits:
    """Per vehicle: events younger than ``max_age`` seconds, at most ``max_events``."""

    max_age: float = 300.0
    max_events: int = 1000


def text_before_seq(event: dict[str, Any]) -> str:
    """The event's JSON text up to its ``seq`` value, which comes last: the number and a
    closing brace finish it (so the hub that numbers it — or Redis — need not encode it)."""
    fields = {name: value for name, value in event.items() if name != "seq"}
    return json.dumps(fields, separators=(",", ":"), allow_nan=False)[:-1] + ',"seq":'


def encode_numbered(event: dict[str, Any], seq: int) -> EncodedEvent:
    """``event`` with its ``seq``, encoded once (the publisher's dict is left as it was)."""
    return EncodedEvent(
        f"{text_before_seq(event)}{seq}}}",
        type=str(event.get("type")),
        vehicle_id=str(event.get("vehicle_id")),
        seq=seq,
    )


class VehicleReplay:
    """One vehicle's recent events, packed: their texts back to back in one ``bytearray``
    (each without the ``{"type":…,"vehicle_id":…,`` head every event of the vehicle shares,
    put back on replay), with an end offset, a time and a type code each in flat arrays.

    About 150 bytes an event instead of 310 as a deque of ``str`` (measured on location
    events of 204 characters), and still nothing for the garbage collector to walk. Events
    are forgotten from the front by moving ``_head``; the arrays are compacted once half of
    them is forgotten, so adding stays O(1) amortised.
    """

    __slots__ = ("_data", "_ends", "_head", "_kinds", "_times", "first_seq")

    def __init__(self) -> None:
        self.first_seq = 0  # the seq of the event at _head
        self._clear()

    def __len__(self) -> int:
        return len(self._ends) - self._head

    def add(self, event: EncodedEvent, now: float, limits: ReplayLimits) -> None:
        """Keep ``event``, then forget what the limits no longer allow. An event that does not
        follow the last one (numbers jumped: another hub numbered while the bus was away, or
        Redis lost its counters) starts the buffer again: the gap cannot be replayed."""
        if len(self) and event.seq != self.first_seq + len(self):
            self._clear()
        if not len(self):  # (forgotten events are compacted away as they go: nothing is left)
            self.first_seq = event.seq
        head = _shared_head(event.type, event.vehicle_id)
        text = event.text
        stripped = text.startswith(head)
        self._data += (text[len(head) :] if stripped else text).encode()
        self._ends.append(len(self._data))
        self._times.append(now)
        self._kinds.append(_type_code(event.type) * 2 + stripped)
        self.expire(now, limits)

    def expire(self, now: float, limits: ReplayLimits) -> None:
        """Forget events older than the limits allow (also for a vehicle gone quiet)."""
        horizon = now - limits.max_age
        times = self._times
        while len(self) and (len(self) > limits.max_events or times[self._head] < horizon):
            self._head += 1
            self.first_seq += 1
        if self._head and self._head * 2 >= len(self._ends):
            self._compact()

    def after(self, last_seq: int, vehicle_id: str) -> list[EncodedEvent] | None:
        """The events after ``last_seq`` up to now, or None when the buffer no longer holds
        ``last_seq + 1`` (the gap cannot be filled)."""
        if not len(self) or self.first_seq > last_seq + 1:
            return None
        first = max(0, last_seq + 1 - self.first_seq)
        events = []
        for position in range(self._head + first, len(self._ends)):
            start = self._ends[position - 1] if position else 0
            body = self._data[start : self._ends[position]].decode()
            code = self._kinds[position]
            type = _TYPES[code // 2]
            text = _shared_head(type, vehicle_id) + body if code % 2 else body
            seq = self.first_seq + position - self._head
            events.append(EncodedEvent(text, type=type, vehicle_id=vehicle_id, seq=seq))
        return events

    def _clear(self) -> None:
        self._data = bytearray()
        self._ends = array("I")
        self._times = array("d")
        self._kinds = array("H")
        self._head = 0

    def _compact(self) -> None:
        head = self._head
        cut = self._ends[head - 1]
        del self._data[:cut]
        self._ends = array("I", [end - cut for end in self._ends[head:]])
        del self._times[:head]
        del self._kinds[:head]
        self._head = 0


_TYPE_CODES: dict[str, int] = {}
_TYPES: list[str] = []


def _type_code(type: str) -> int:
    """A small number for an event type (the types are a handful; each gets one once)."""
    code = _TYPE_CODES.get(type)
    if code is None:
        code = _TYPE_CODES[type] = len(_TYPES)
        _TYPES.append(type)
    return code


def _shared_head(type: str, vehicle_id: str) -> str:
    """The start of the text of an event built type first, vehicle id second."""
    return f'{{"type":"{type}","vehicle_id":"{vehicle_id}",'
