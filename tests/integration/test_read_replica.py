"""A read replica (``DATABASE_READ_URL``) serves history and the audit log; the primary keeps
writes and the fleet snapshot, and answers those reads whenever the replica fails.

A second database stands in for the replica: it holds rows the primary does not, so each
answer shows which database it came from.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio

from storage.testing import execute, fetchval
from tests.integration.harness import (
    RunningHub,
    guarded_hub,
    location_body,
    timestamp,
    until,
)

VEHICLE = "wheelchair_001"
PRIMARY_LATITUDE = 35.5
REPLICA_LATITUDE = 10.25


@pytest.fixture
def replica_url(second_database_url: str) -> str:
    """The stand-in replica, holding the vehicle, one location of its own and one audit
    record (a sync fixture: it runs outside trio)."""
    seed_replica(second_database_url)
    return second_database_url


def seed_replica(replica_url: str) -> None:
    execute(replica_url, "INSERT INTO vehicles (vehicle_id, name) VALUES ($1, $1)", VEHICLE)
    execute(
        replica_url,
        'INSERT INTO vehicle_locations (vehicle_id, "timestamp", latitude, longitude, heading,'
        " speed, accuracy) VALUES ($1, now(), $2, 139.0, 0, 0, 0.1)",
        VEHICLE,
        REPLICA_LATITUDE,
    )
    execute(
        replica_url,
        "INSERT INTO audit_logs (actor, action, outcome)"
        " VALUES ('replica', 'seen_on_replica', 'ok')",
    )


def set_connections(server_database: str, replica_url: str, *, allowed: bool) -> None:
    """Open or close the replica to new connections; closing also ends the open ones."""
    name = urlsplit(replica_url).path.lstrip("/")
    execute(server_database, f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allowed).lower()}")
    if not allowed:
        execute(
            server_database,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            name,
        )
        for _ in range(100):  # a terminated backend exits a moment later
            left = fetchval(
                server_database, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name
            )
            if left == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"{left} connections to {name} still open after 5 s")


async def latitudes(hub: RunningHub) -> list[float]:
    answer = await hub.client.get(f"/api/v1/vehicle/{VEHICLE}/locations", headers=hub.admin_headers)
    assert answer.status_code == 200, answer.text
    return [item["latitude"] for item in answer.json()["items"]]


async def audit_actions(hub: RunningHub) -> set[str]:
    answer = await hub.client.get("/api/v1/admin/audit", headers=hub.admin_headers)
    assert answer.status_code == 200, answer.text
    return {item["action"] for item in answer.json()["items"]}


async def health(hub: RunningHub) -> dict[str, Any]:
    answer = await hub.client.get("/health")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@asynccontextmanager
async def hub_with_a_replica(database_url: str, replica_url: str) -> AsyncIterator[RunningHub]:
    """A hub reading from the replica, with the vehicle registered and one location of its
    own posted (so it is on the primary only)."""
    async with guarded_hub(database_url, database_read_url=replica_url) as hub:
        vehicle = await hub.register_vehicle(VEHICLE)
        posted = await hub.post(
            vehicle, "location", location_body(timestamp(), latitude=PRIMARY_LATITUDE)
        )
        assert posted.status_code == 200, posted.text
        yield hub


async def test_history_and_audit_come_from_the_replica_and_writes_stay_on_the_primary(
    database_url: str, replica_url: str
) -> None:
    async with hub_with_a_replica(database_url, replica_url) as hub:
        assert await latitudes(hub) == [REPLICA_LATITUDE]
        assert "seen_on_replica" in await audit_actions(hub)
        snapshot = await hub.client.get(f"/api/v1/vehicle/{VEHICLE}", headers=hub.admin_headers)
        assert snapshot.status_code == 200, snapshot.text
        assert snapshot.json()["location"]["latitude"] == PRIMARY_LATITUDE

        body = await health(hub)
        assert body["status"] == "ok"
        replica = body["components"]["database_replica"]
        assert replica["status"] == "ok"
        assert replica["replay_lag_seconds"] is None  # a plain database, not a streaming replica


async def test_a_failed_replica_hands_its_reads_to_the_primary_until_it_is_back(
    database_url: str, replica_url: str
) -> None:
    async with hub_with_a_replica(database_url, replica_url) as hub:
        assert await latitudes(hub) == [REPLICA_LATITUDE]

        await trio.to_thread.run_sync(
            lambda: set_connections(database_url, replica_url, allowed=False)
        )
        try:
            assert await latitudes(hub) == [PRIMARY_LATITUDE]
            assert "seen_on_replica" not in await audit_actions(hub)
            body = await health(hub)
            assert body["status"] == "degraded"
            replica = body["components"]["database_replica"]
            assert replica["status"] == "down"
            assert replica["reads_fall_back"] >= 2
            metrics = (await hub.client.get("/metrics")).text
            assert "database_replica_fallbacks_total" in metrics
        finally:
            await trio.to_thread.run_sync(
                lambda: set_connections(database_url, replica_url, allowed=True)
            )

        await until(
            lambda: latitudes(hub),
            lambda seen: seen == [REPLICA_LATITUDE],
            what="history read from the replica again",
        )
        assert (await health(hub))["status"] == "ok"
