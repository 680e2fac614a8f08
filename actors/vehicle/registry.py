"""Which vehicles are registered and enabled: the ids every hub path checks first.

Loaded once at start and changed only through this object (registration, disable, enable,
and a login of a vehicle another process registered). A plain set of ids, read-mostly; the
state of each vehicle is its actor's, not the registry's.
"""

from __future__ import annotations

from hub.errors import UnknownVehicleError
from storage.database import Database
from storage.queries import vehicles as vehicle_queries


class VehicleRegistry:
    """Known, enabled vehicle ids (kept in memory)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._enabled: set[str] = set()

    async def load(self) -> None:
        """Read every enabled vehicle id (at start; raises the storage error family)."""
        self._enabled = await vehicle_queries.enabled_vehicle_ids(self._database)

    def is_enabled(self, vehicle_id: str) -> bool:
        """Whether the vehicle is registered and not disabled."""
        return vehicle_id in self._enabled

    def require(self, vehicle_id: str) -> None:
        """Raise :class:`UnknownVehicleError` unless the vehicle may report."""
        if vehicle_id not in self._enabled:
            raise UnknownVehicleError(vehicle_id)

    def added(self, vehicle_id: str) -> None:
        """Note a vehicle registered or enabled again: it may report from now on."""
        self._enabled.add(vehicle_id)

    def disabled(self, vehicle_id: str) -> None:
        """Note a disabled vehicle; its reports are refused from now on."""
        self._enabled.discard(vehicle_id)

    def enabled_ids(self) -> set[str]:
        """Every vehicle that may report (a copy)."""
        return set(self._enabled)

    def count(self) -> int:
        """How many vehicles may report."""
        return len(self._enabled)
