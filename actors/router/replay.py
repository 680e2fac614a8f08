"""What the Router keeps for ``since`` replay (CONTRACT §6.2): each event once, encoded.

Per vehicle, the events of the last :attr:`ReplayLimits.max_age` seconds, at most
:attr:`ReplayLimits.max_events` of them. An event is kept as the JSON text sent to the
sessions, not as a dict: a few hundred bytes each, and nothing the garbage collector has to
walk (a heap of millions of event dicts made every full collection a stall of the loop).
``seq`` numbers of one vehicle are consecutive, so a buffer stores the first one only.
"""

from __future__ import annotations

import json
from collections import deque
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
    """One vehicle's recent events: their texts in ``seq`` order and when each was numbered."""

    __slots__ = ("first_seq", "texts", "times", "types")

    def __init__(self) -> None:
        self.first_seq = 0
        self.texts: deque[str] = deque()
        self.times: deque[float] = deque()
        self.types: deque[str] = deque()

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, event: EncodedEvent, now: float, limits: ReplayLimits) -> None:
        """Keep ``event``, then forget what the limits no longer allow. An event that does not
        follow the last one (numbers jumped: another hub numbered while the bus was away, or
        Redis lost its counters) starts the buffer again: the gap cannot be replayed."""
        if self.texts and event.seq != self.first_seq + len(self.texts):
            self.texts.clear()
            self.times.clear()
            self.types.clear()
        if not self.texts:
            self.first_seq = event.seq
        self.texts.append(event.text)
        self.times.append(now)
        self.types.append(event.type)
        self.expire(now, limits)

    def expire(self, now: float, limits: ReplayLimits) -> None:
        """Forget events older than the limits allow (also for a vehicle gone quiet)."""
        horizon = now - limits.max_age
        texts, times = self.texts, self.times
        while texts and (len(texts) > limits.max_events or times[0] < horizon):
            texts.popleft()
            times.popleft()
            self.types.popleft()
            self.first_seq += 1

    def after(self, last_seq: int, vehicle_id: str) -> list[EncodedEvent] | None:
        """The events after ``last_seq`` up to now, or None when the buffer no longer holds
        ``last_seq + 1`` (the gap cannot be filled)."""
        if not self.texts or self.first_seq > last_seq + 1:
            return None
        start = last_seq + 1 - self.first_seq
        return [
            EncodedEvent(
                self.texts[index],
                type=self.types[index],
                vehicle_id=vehicle_id,
                seq=self.first_seq + index,
            )
            for index in range(max(0, start), len(self.texts))
        ]
