"""The schema migrations against a real PostgreSQL: up, down, up again, and the keys they make."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from storage import migrate
from storage.testing import execute, fetch, fetchval, table_names

pytestmark = pytest.mark.integration

TELEMETRY_TABLES = {
    "vehicle_locations",
    "vehicle_status",
    "vehicle_battery",
    "vehicle_errors",
    "vehicle_docking",
}
EVERY_TABLE = TELEMETRY_TABLES | {
    "vehicles",
    "vehicle_credentials",
    "users",
    "refresh_tokens",
    "vehicle_latest",
    "battery_health",
    "reservations",
    "missions",
    "commands",
    "alerts",
    "error_codes",
    "audit_logs",
    "retention_runs",
    "vehicle_locations_archive",
    "vehicle_status_archive",
}
SEEDED_ERROR_CODES = {
    "NAV_OBSTACLE_BLOCKED",
    "NAV_LOCALIZATION_LOST",
    "NAV_PATH_NOT_FOUND",
    "DOCK_ALIGNMENT_FAILED",
    "DOCK_MARKER_NOT_FOUND",
    "DOCK_ATTACHMENT_FAILED",
    "SAFE_ESTOP_ACTIVATED",
    "SAFE_COLLISION_DETECTED",
    "POWER_BATTERY_CRITICAL",
    "SENSOR_LIDAR_FAILURE",
    "SENSOR_CAMERA_FAILURE",
    "SENSOR_IMU_FAILURE",
}

MIGRATE_IN_NEW_PROCESS = "import sys, storage.migrate as m; m.upgrade(sys.argv[1])"

INSERT_LOCATION = """
    INSERT INTO vehicle_locations
        (vehicle_id, "timestamp", latitude, longitude, altitude, heading, speed, accuracy)
    VALUES ($1, '2025-12-16T10:30:45.123Z', 35.681236, 139.767125, 45.5, 90.5, 0.8, 0.15)
    ON CONFLICT (vehicle_id, "timestamp") DO NOTHING
"""


def primary_key_columns(dsn: str, table: str) -> list[str]:
    rows = fetch(
        dsn,
        """
        SELECT a.attname AS name
        FROM pg_index i
        JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = $1::regclass AND i.indisprimary
        ORDER BY k.position
        """,
        table,
    )
    return [row["name"] for row in rows]


def foreign_key_targets(dsn: str, table: str) -> set[str]:
    rows = fetch(
        dsn,
        "SELECT confrelid::regclass::text AS target FROM pg_constraint"
        " WHERE conrelid = $1::regclass AND contype = 'f'",
        table,
    )
    return {row["target"] for row in rows}


def test_head_is_the_vehicle_notify_revision() -> None:
    assert migrate.head() == "0005"


def test_upgrade_to_head_creates_every_table(empty_database_url: str) -> None:
    assert migrate.current(empty_database_url) is None

    migrate.upgrade(empty_database_url)

    assert table_names(empty_database_url) == EVERY_TABLE | {"alembic_version"}
    assert migrate.current(empty_database_url) == migrate.head()


def test_telemetry_is_keyed_on_vehicle_and_timestamp(database_url: str) -> None:
    for table in TELEMETRY_TABLES:
        assert primary_key_columns(database_url, table) == ["vehicle_id", "timestamp"], table
        assert foreign_key_targets(database_url, table) == {"vehicles"}, table
        column_type = fetchval(
            database_url,
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_name = $1 AND column_name = 'timestamp'",
            table,
        )
        assert column_type == "timestamp with time zone", table


def test_archives_survive_their_vehicle(database_url: str) -> None:
    for table in ("vehicle_locations_archive", "vehicle_status_archive"):
        assert primary_key_columns(database_url, table) == ["vehicle_id", "timestamp"]
        assert foreign_key_targets(database_url, table) == set()


def test_error_codes_are_seeded(database_url: str) -> None:
    rows = fetch(database_url, "SELECT code, builtin FROM error_codes")

    assert {row["code"] for row in rows} == SEEDED_ERROR_CODES
    assert all(row["builtin"] for row in rows)


def test_downgrade_to_base_leaves_only_the_version_table(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)

    migrate.downgrade(empty_database_url)

    assert table_names(empty_database_url) == {"alembic_version"}
    assert migrate.current(empty_database_url) is None


def test_upgrade_again_after_downgrade(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    migrate.downgrade(empty_database_url, "-1")

    migrate.upgrade(empty_database_url)

    assert table_names(empty_database_url) == EVERY_TABLE | {"alembic_version"}
    assert migrate.current(empty_database_url) == migrate.head()
    assert fetchval(empty_database_url, "SELECT count(*) FROM error_codes") == 12


def test_upgrade_at_head_changes_nothing(database_url: str) -> None:
    execute(database_url, "INSERT INTO vehicles (vehicle_id, name) VALUES ('wheelchair_001', 'A')")

    migrate.upgrade(database_url)

    assert migrate.current(database_url) == migrate.head()
    assert fetchval(database_url, "SELECT count(*) FROM vehicles") == 1


def test_hubs_migrating_together_apply_the_schema_once(empty_database_url: str) -> None:
    hub_starts = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_IN_NEW_PROCESS, empty_database_url],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(start.wait(timeout=60), start.communicate()[1]) for start in hub_starts]

    assert outcomes == [(0, "")] * 3
    assert migrate.current(empty_database_url) == migrate.head()
    assert fetchval(empty_database_url, "SELECT count(*) FROM error_codes") == 12


def test_threads_migrating_together_apply_the_schema_once(empty_database_url: str) -> None:
    failures: list[BaseException] = []

    def migrate_in_thread() -> None:
        try:
            migrate.upgrade(empty_database_url)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=migrate_in_thread) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert migrate.current(empty_database_url) == migrate.head()


def test_a_resent_location_is_stored_once(database_url: str) -> None:
    execute(database_url, "INSERT INTO vehicles (vehicle_id, name) VALUES ('wheelchair_001', 'A')")

    first = execute(database_url, INSERT_LOCATION, "wheelchair_001")
    again = execute(database_url, INSERT_LOCATION, "wheelchair_001")

    assert (first, again) == ("INSERT 0 1", "INSERT 0 0")
    assert fetchval(database_url, "SELECT count(*) FROM vehicle_locations") == 1


def test_telemetry_of_an_unregistered_vehicle_is_refused(database_url: str) -> None:
    with pytest.raises(Exception, match="foreign key"):
        execute(database_url, INSERT_LOCATION, "wheelchair_404")


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (
            'INSERT INTO vehicle_status (vehicle_id, "timestamp", state, passengers_onboard,'
            " operational_hours) VALUES ('wheelchair_001', now(), 'flying', false, true)",
            "vehicle_status_state_check",
        ),
        (
            'INSERT INTO vehicle_docking (vehicle_id, "timestamp", phase, docking_success)'
            " VALUES ('wheelchair_001', now(), 'parking', false)",
            "vehicle_docking_phase_check",
        ),
        (
            "INSERT INTO alerts (alert_id, vehicle_id, kind, severity, message)"
            " VALUES ('alert_1', 'wheelchair_001', 'status', 'fatal', 'x')",
            "alerts_severity_check",
        ),
    ],
)
def test_values_outside_the_contract_enums_are_refused(
    database_url: str, sql: str, constraint: str
) -> None:
    execute(database_url, "INSERT INTO vehicles (vehicle_id, name) VALUES ('wheelchair_001', 'A')")

    with pytest.raises(Exception, match=constraint):
        execute(database_url, sql)
