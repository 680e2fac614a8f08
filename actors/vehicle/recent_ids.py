"""A bounded memory of ids: the commands a vehicle actor took itself (so a reread of the
database never hands it back one it has delivered, refused or dropped)."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """The last ``capacity`` ids remembered; older ones are forgotten first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def remember(self, item: str) -> None:
        """Remember ``item`` (never blocks; forgets the oldest past the capacity)."""
        self._ids[item] = None
        self._ids.move_to_end(item)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
