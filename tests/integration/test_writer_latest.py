"""What one group commit leaves in ``vehicle_latest``, on a real PostgreSQL.

Every vehicle of a batch is marked seen, and each kind's newest new record becomes the
vehicle's current one only where it is newer than the stored one: an older record sent
late, a resent record, or a record of a kind without a current value changes nothing of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from storage.database import Database, open_asyncio_bridge, open_database
from storage.telemetry_tables import TABLES
from storage.writer import TelemetryRow, Writer, WriteRequest

BASE = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SUBSYSTEM = "power"
VEHICLES = ("wheelchair_001", "wheelchair_002", "wheelchair_003")


def at(seconds: int) -> datetime:
    return BASE + timedelta(seconds=seconds)


def location(vehicle_id: str, seconds: int, latitude: float) -> TelemetryRow:
    values = {
        "latitude": latitude,
        "longitude": 24.9,
        "altitude": None,
        "heading": 90.0,
        "speed": 1.0,
        "accuracy": 2.0,
    }
    return TelemetryRow("location", vehicle_id, at(seconds), values)


def status(vehicle_id: str, seconds: int, state: str, mission_id: str | None) -> TelemetryRow:
    values: dict[str, Any] = {name: None for name in TABLES["status"].column_names}
    values.update(state=state, mission_id=mission_id, passengers_onboard=False)
    values.update(operational_hours=True)
    return TelemetryRow("status", vehicle_id, at(seconds), values)


def error(vehicle_id: str, seconds: int) -> TelemetryRow:
    values: dict[str, Any] = {name: None for name in TABLES["error"].column_names}
    values.update(error_code="E_TEST", severity="warning", subsystem=SUBSYSTEM)
    values.update(description="test", user_action_required=False, backfilled=False)
    return TelemetryRow("error", vehicle_id, at(seconds), values)


@asynccontextmanager
async def running_writer(database_url: str) -> AsyncIterator[tuple[Database, Writer]]:
    async with open_asyncio_bridge(), open_database(database_url, min_size=1) as database:
        for vehicle_id in VEHICLES:
            await database.execute(
                "INSERT INTO vehicles (vehicle_id, name) VALUES ($1, $1)", vehicle_id
            )
        writer = Writer(database)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            yield database, writer
            nursery.cancel_scope.cancel()


async def latest(database: Database) -> dict[str, dict[str, Any]]:
    rows = await database.fetch(
        "SELECT vehicle_id, last_seen, location->>'latitude' AS latitude, location_at,"
        " state, mission_id, state_at, battery_at, docking_at FROM vehicle_latest"
    )
    return {row["vehicle_id"]: dict(row) for row in rows}


async def test_a_batch_shows_each_vehicles_newest_records_and_marks_all_seen(
    database_url: str,
) -> None:
    with trio.fail_after(30):
        async with running_writer(database_url) as (database, writer):
            result = await writer.write(
                WriteRequest(
                    rows=[
                        location("wheelchair_001", 2, 60.2),
                        location("wheelchair_001", 1, 60.1),  # older, same batch
                        status("wheelchair_001", 1, "navigating", "mission_1"),
                        location("wheelchair_002", 5, 61.5),
                        error("wheelchair_003", 3),  # errors have no current value
                    ]
                )
            )
            assert result.inserted == (True, True, True, True, True)
            now = await latest(database)

    assert set(now) == set(VEHICLES)
    assert all(row["last_seen"] is not None for row in now.values())
    first, second, third = (now[vehicle_id] for vehicle_id in VEHICLES)
    assert (first["latitude"], first["location_at"]) == ("60.2", at(2))
    assert (first["state"], first["mission_id"], first["state_at"]) == (
        "navigating",
        "mission_1",
        at(1),
    )
    assert (second["latitude"], second["location_at"], second["state_at"]) == ("61.5", at(5), None)
    assert (third["location_at"], third["state_at"], third["battery_at"]) == (None, None, None)


async def test_late_and_resent_records_leave_the_current_ones_but_count_as_seen(
    database_url: str,
) -> None:
    with trio.fail_after(30):
        async with running_writer(database_url) as (database, writer):
            await writer.write(
                WriteRequest(
                    rows=[
                        location("wheelchair_001", 10, 60.3),
                        status("wheelchair_001", 10, "charging", None),
                        location("wheelchair_002", 10, 61.0),
                    ]
                )
            )
            before = await latest(database)
            result = await writer.write(
                WriteRequest(
                    rows=[
                        location("wheelchair_001", 10, 99.0),  # a resend: a duplicate
                        status("wheelchair_001", 4, "navigating", "mission_old"),  # late
                        location("wheelchair_002", 11, 61.1),  # newer: becomes current
                    ]
                )
            )
            after = await latest(database)

    assert result.inserted == (False, True, True)
    first, second = after["wheelchair_001"], after["wheelchair_002"]
    assert (first["latitude"], first["location_at"]) == ("60.3", at(10))
    assert (first["state"], first["mission_id"], first["state_at"]) == ("charging", None, at(10))
    assert (second["latitude"], second["location_at"]) == ("61.1", at(11))
    assert first["last_seen"] > before["wheelchair_001"]["last_seen"]
