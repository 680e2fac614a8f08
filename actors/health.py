"""What ``/health`` reports: the database round trip, Redis, and the hub's own load."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from actors.vehicle.registry import VehicleRegistry
from storage.database import Database, StorageError
from storage.redis_channels import describe_error, redis_round_trip
from storage.replica import ReadDatabases
from storage.writer import Writer

PING_TIMEOUT = 2.0
REDIS_TIMEOUT = 1.0
"""Seconds the Redis check may take (a fresh connection and a ``PING``)."""


class HealthProbe:
    """Checks components; never raises, never waits longer than :data:`PING_TIMEOUT`."""

    def __init__(
        self,
        *,
        database: Database,
        writer: Writer,
        registry: VehicleRegistry,
        reads: ReadDatabases | None = None,
        redis_url: str | None = None,
    ) -> None:
        self._database = database
        self._writer = writer
        self._registry = registry
        self._reads = reads or ReadDatabases(database)
        self._redis_url = redis_url

    def pool_usage(self) -> dict[str, int]:
        """Connections in the pool: size, idle, busy, max."""
        return self._database.pool_usage()

    def writer_queue_depth(self) -> int:
        """Write requests waiting for the next group commit."""
        return self._writer.queue_depth()

    async def database_status(self) -> dict[str, Any]:
        """``{"status": "ok", "latency_ms": …}`` or ``{"status": "down", "error": …}``.

        While the database is known down this answers at once (the storage layer's probe
        checks it every second); otherwise it pings, which also notices a new outage.
        """
        availability = self._database.availability
        down_since = availability.down_since
        if down_since is not None:
            return {
                "status": "down",
                "error": "unreachable",
                "down_seconds": round(trio.current_time() - down_since, 1),
            }
        with trio.move_on_after(PING_TIMEOUT):
            try:
                latency = await self._database.ping()
            except StorageError as exc:
                return {"status": "down", "error": type(exc).__name__}
            return {
                "status": "ok",
                "latency_ms": round(latency * 1000, 2),
                "pool": self._database.pool_usage(),
            }
        return {"status": "down", "error": "timeout"}

    async def redis_status(self) -> str | dict[str, Any]:
        """``"disabled"`` without ``REDIS_URL``; else ``{"status": "ok", "latency_ms": …}`` or
        ``{"status": "down", "error": …}``. Redis carries only the critical-alert side
        channel, so its loss degrades the hub but stops nothing. Never raises."""
        if self._redis_url is None:
            return "disabled"
        status: dict[str, Any] = {"status": "down", "error": "timeout"}
        with trio.move_on_after(REDIS_TIMEOUT):
            try:
                latency = await redis_round_trip(self._redis_url, socket_timeout=REDIS_TIMEOUT)
            except Exception as exc:  # coredis raises connection errors inside exception groups
                status = {"status": "down", "error": describe_error(exc)}
            else:
                status = {"status": "ok", "latency_ms": round(latency * 1000, 2)}
        return {**status, "used_for": ["alert channel"]}

    async def report(self) -> tuple[int, dict[str, Any]]:
        """The HTTP status and body of ``/health``: 503 ``down`` when the database is down,
        200 ``degraded`` when only an optional part is (the read replica, whose reads then go
        to the primary, or Redis). The checks run at once, so this takes at most
        :data:`PING_TIMEOUT`."""
        components: dict[str, Any] = {}

        async def check(name: str, probe: Callable[[], Awaitable[Any]]) -> None:
            components[name] = {"status": "down", "error": "timeout"}
            with trio.move_on_after(PING_TIMEOUT):
                components[name] = await probe()

        async with trio.open_nursery() as checks:
            checks.start_soon(check, "database", self.database_status)
            if self._reads.replica is not None:
                checks.start_soon(check, "database_replica", self._reads.replica_status)
            checks.start_soon(check, "redis", self.redis_status)
        components["actors"] = {
            "vehicles_registered": self._registry.count(),
            "writer_queue": self._writer.queue_depth(),
        }
        if components["database"]["status"] != "ok":
            return 503, {"status": "down", "components": components}
        optional = [components.get("database_replica"), components["redis"]]
        if any(isinstance(part, dict) and part["status"] != "ok" for part in optional):
            return 200, {"status": "degraded", "components": components}
        return 200, {"status": "ok", "components": components}
