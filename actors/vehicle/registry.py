"""Which vehicles are registered and enabled: the ids every hub path checks first.

Loaded at start and changed only through this object: by this hub's registration, disable
and enable, by a vehicle's login, and by :func:`storage.vehicle_changes.follow_vehicle_changes`
for changes any other process commits (another hub, ``tvm-hub vehicle add``). A plain set of
ids, read-mostly; the state of each vehicle is its actor's, not the registry's.
"""

from __future__ import annotations

import trio

from hub.errors import UnknownVehicleError
from storage.database import Database
from storage.queries import vehicles as vehicle_queries
from storage.vehicle_changes import follow_vehicle_changes


class VehicleRegistry:
    """Known, enabled vehicle ids (kept in memory)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._enabled: set[str] = set()

    async def load(self) -> None:
        """Read every enabled vehicle id, replacing what was known (at start, and whenever
        changes may have been missed; raises the storage error family)."""
        self._enabled = await vehicle_queries.enabled_vehicle_ids(self._database)

    async def refresh(self, vehicle_id: str) -> None:
        """Read one vehicle's state again: enabled, disabled or gone (raises the storage
        error family). Blocks for one query."""
        if await vehicle_queries.enabled_flag(self._database, vehicle_id):
            self._enabled.add(vehicle_id)
        else:
            self._enabled.discard(vehicle_id)

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


class RegistryFollower:
    """Keeps a registry in step with the vehicle changes every process commits to the
    database (a supervised service; see :mod:`storage.vehicle_changes`)."""

    def __init__(self, registry: VehicleRegistry, dsn: str) -> None:
        self._registry = registry
        self._dsn = dsn
        self.changes_applied = 0
        self.resyncs = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Apply changes until cancelled; reports started once listening (or once the first
        attempt failed: the database may be away; attempts go on every second)."""
        await follow_vehicle_changes(
            self._dsn, changed=self._changed, resync=self._resync, task_status=task_status
        )

    def describe(self) -> dict[str, int]:
        """Counters for /debug/actors."""
        return {"changes_applied": self.changes_applied, "resyncs": self.resyncs}

    async def _changed(self, vehicle_id: str) -> None:
        await self._registry.refresh(vehicle_id)
        self.changes_applied += 1

    async def _resync(self) -> None:
        await self._registry.load()
        self.resyncs += 1
