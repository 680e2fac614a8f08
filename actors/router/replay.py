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
import zlib
from array import array
from dataclasses import dataclass
from typing import Any

from actors.sockets.encoded import EncodedEvent

BLOCK_EVENTS = 64
"""Events per compressed block of a :class:`VehicleReplay`."""

_ZLIB_LEVEL = 1
"""Fastest: about 50 µs a block of location events, 29 bytes an event (level 6: twice the
time for 25 bytes)."""


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
    """One vehicle's recent events, packed: their texts back to back (each without the
    ``{"type":…,"vehicle_id":…,`` head every event of the vehicle shares, put back on
    replay), with an end offset, a time and a type code each in flat arrays.

    The texts come in blocks of :data:`BLOCK_EVENTS`: the newest block is an open
    ``bytearray``; a full one is sealed with ``zlib`` (a vehicle's events repeat their keys
    and most of their values, so a block of location events shrinks about fivefold). Nothing
    in it is for the garbage collector to walk. Replay decompresses only the blocks it reads,
    which is rare (a session reconnecting with ``since``). Events are forgotten from the front
    by moving ``_head``; a block goes once all its events are forgotten.
    """

    __slots__ = ("_ends", "_head", "_kinds", "_open", "_sealed", "_times", "first_seq")
    _sealed: list[bytes]  # full blocks, compressed
    _open: bytearray  # the newest block's texts
    _ends: array[int]  # each event's end within its block
    _times: array[float]
    _kinds: array[int]  # type code * 2 + whether the shared head was stripped
    _head: int  # the first event not forgotten

    def __init__(self) -> None:
        self.first_seq = 0  # the seq of the event at _head
        self._clear()

    def __len__(self) -> int:
        return len(self._ends) - self._head

    def add(self, event: EncodedEvent, now: float, limits: ReplayLimits) -> None:
        """Keep ``event``, then forget what the limits no longer allow. An event that does not
        follow the last one (numbers jumped: another hub numbered while the bus was away, or
        Redis lost its counters) starts the buffer again: the gap cannot be replayed.

        Every :data:`BLOCK_EVENTS`\\ th event seals a block (one ``zlib.compress`` of about
        10 KB, some 50 µs)."""
        if len(self) and event.seq != self.first_seq + len(self):
            self._clear()
        if not len(self):  # (forgotten blocks are dropped as they go: nothing is left)
            self.first_seq = event.seq
        head = _shared_head(event.type, event.vehicle_id)
        text = event.text
        stripped = text.startswith(head)
        self._open += (text[len(head) :] if stripped else text).encode()
        self._ends.append(len(self._open))  # the end within its block
        self._times.append(now)
        self._kinds.append(_type_code(event.type) * 2 + stripped)
        if len(self._ends) % BLOCK_EVENTS == 0:  # blocks start at multiples of BLOCK_EVENTS
            self._sealed.append(zlib.compress(self._open, _ZLIB_LEVEL))
            self._open = bytearray()
        self.expire(now, limits)

    def expire(self, now: float, limits: ReplayLimits) -> None:
        """Forget events older than the limits allow (also for a vehicle gone quiet)."""
        horizon = now - limits.max_age
        times = self._times
        while len(self) and (len(self) > limits.max_events or times[self._head] < horizon):
            self._head += 1
            self.first_seq += 1
        if not len(self):
            if self._head:  # all forgotten: let go of the blocks too
                self._clear()
        elif self._head >= BLOCK_EVENTS:
            self._drop_forgotten_blocks()

    def after(self, last_seq: int, vehicle_id: str) -> list[EncodedEvent] | None:
        """The events after ``last_seq`` up to now, or None when the buffer no longer holds
        ``last_seq + 1`` (the gap cannot be filled)."""
        if not len(self) or self.first_seq > last_seq + 1:
            return None
        first = max(0, last_seq + 1 - self.first_seq)
        events = []
        block_number, block = -1, b""
        for position in range(self._head + first, len(self._ends)):
            if position // BLOCK_EVENTS != block_number:
                block_number = position // BLOCK_EVENTS
                block = self._block(block_number)
            start = self._ends[position - 1] if position % BLOCK_EVENTS else 0
            body = block[start : self._ends[position]].decode()
            code = self._kinds[position]
            type = _TYPES[code // 2]
            text = _shared_head(type, vehicle_id) + body if code % 2 else body
            seq = self.first_seq + position - self._head
            events.append(EncodedEvent(text, type=type, vehicle_id=vehicle_id, seq=seq))
        return events

    def _block(self, number: int) -> bytes:
        """The texts of block ``number`` (counted from the first kept block), decompressed."""
        if number < len(self._sealed):
            return zlib.decompress(self._sealed[number])
        return bytes(self._open)

    def _clear(self) -> None:
        self._sealed = []
        self._open = bytearray()
        self._ends = array("I")
        self._times = array("d")
        self._kinds = array("H")
        self._head = 0

    def _drop_forgotten_blocks(self) -> None:
        count = self._head // BLOCK_EVENTS  # the blocks wholly before _head, all sealed
        cut = count * BLOCK_EVENTS
        del self._sealed[:count]
        del self._ends[:cut]
        del self._times[:cut]
        del self._kinds[:cut]
        self._head -= cut


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
