"""The offline command queue of one vehicle (CONTRACT §6.3, TVM-WS-CONN-004). Pure logic.

Up to 100 commands wait for a vehicle that is not connected, delivered in order when it
returns. Emergency stops are never held behind anything: they go ahead of every queued
non-stop command. A queued ``configure`` is merged into a newer one (the newer keys win)
instead of taking a second slot. When full, the oldest non-stop command is dropped and
reported ``dropped`` to its sender. Commands older than the TTL when the vehicle comes back
are ``expired`` instead of delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DEFAULT_CAPACITY = 100
DEFAULT_TTL = timedelta(minutes=10)


@dataclass(slots=True)
class QueuedCommand:
    """A command waiting for its vehicle: the wire form to send and who asked for it."""

    command_id: str
    type: str
    payload: dict[str, Any]
    created_at: datetime
    sender: str | None = None
    merged_ids: list[str] = field(default_factory=list)

    @property
    def is_emergency_stop(self) -> bool:
        """Emergency stops jump the queue and are never merged."""
        return self.type == "emergency_stop"

    @property
    def all_ids(self) -> list[str]:
        """This command's id and the ids of older configures merged into it."""
        return [self.command_id, *self.merged_ids]


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What pushing did: commands pushed out of a full queue, and one merged away."""

    dropped: list[QueuedCommand]
    merged: QueuedCommand | None


class OfflineQueue:
    """Ordered, bounded, merging queue; owned by one VehicleActor."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._items: list[QueuedCommand] = []

    def __len__(self) -> int:
        return len(self._items)

    def commands(self) -> list[QueuedCommand]:
        """The queue in delivery order (a copy)."""
        return list(self._items)

    def push(self, command: QueuedCommand) -> PushOutcome:
        """Queue a command; return what was dropped or merged to make room for it."""
        merged: QueuedCommand | None = None
        if command.type == "configure":
            merged = self._merge_older_configure(command)
        if command.is_emergency_stop:
            position = sum(1 for item in self._items if item.is_emergency_stop)
            self._items.insert(position, command)
        else:
            self._items.append(command)
        dropped: list[QueuedCommand] = []
        while len(self._items) > self.capacity:
            dropped.append(self._items.pop(self._oldest_droppable()))
        return PushOutcome(dropped, merged)

    def restore(self, command: QueuedCommand) -> None:
        """Put back a command that was loaded from storage, keeping the stored order."""
        self._items.append(command)

    def requeue_front(self, commands: list[QueuedCommand]) -> None:
        """Put commands that were sent but never acknowledged back at the head."""
        stops = [c for c in commands if c.is_emergency_stop]
        others = [c for c in commands if not c.is_emergency_stop]
        queued_stops = [c for c in self._items if c.is_emergency_stop]
        rest = [c for c in self._items if not c.is_emergency_stop]
        self._items = stops + queued_stops + others + rest

    def take_all(
        self, now: datetime, ttl: timedelta
    ) -> tuple[list[QueuedCommand], list[QueuedCommand]]:
        """Empty the queue: ``(to deliver in order, expired)``. Emergency stops never expire."""
        deliver: list[QueuedCommand] = []
        expired: list[QueuedCommand] = []
        for item in self._items:
            if not item.is_emergency_stop and now - item.created_at > ttl:
                expired.append(item)
            else:
                deliver.append(item)
        self._items = []
        return deliver, expired

    def _merge_older_configure(self, newer: QueuedCommand) -> QueuedCommand | None:
        for index, older in enumerate(self._items):
            if older.type == "configure":
                del self._items[index]
                updates = {
                    **older.payload.get("config_updates", {}),
                    **newer.payload.get("config_updates", {}),
                }
                newer.payload = {**newer.payload, "config_updates": updates}
                newer.merged_ids = [*older.all_ids, *newer.merged_ids]
                return older
        return None

    def _oldest_droppable(self) -> int:
        for index, item in enumerate(self._items):
            if not item.is_emergency_stop:
                return index
        return 0
