"""Retention on a real PostgreSQL (TVM-DB-RET-001/002): old telemetry moves into the archive
tables, old audit records are exported to a gzip JSON-lines file and then deleted, and
``tvm-hub archive --now`` does one pass from the command line.

Rows are inserted with SQL at chosen ages; the job's wall clock is pinned, so "older than
30 days" is exact.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.retention.job import AuditArchiveFile, RetentionJob, RetentionPolicy
from hub.clock import format_timestamp
from storage import testing as db
from storage.database import Database, open_asyncio_bridge, open_database
from tests.integration.harness import until

NOW = datetime(2025, 12, 16, 2, 0, 0, 123000, tzinfo=UTC)
TEST_TIMEOUT = 60.0

LOCATION_SQL = (
    'INSERT INTO vehicle_locations (vehicle_id, "timestamp", latitude, longitude, altitude,'
    " heading, speed, accuracy, received_at) VALUES ($1, $2, 35.68, 139.76, NULL, 90, 0.5, 0.1, $2)"
)
STATUS_SQL = (
    'INSERT INTO vehicle_status (vehicle_id, "timestamp", state, mission_id, passengers_onboard,'
    " operational_hours, progress_percent, received_at)"
    " VALUES ($1, $2, 'navigating', 'mission_1', true, true, 42.5, $2)"
)
AUDIT_SQL = (
    "INSERT INTO audit_logs (at, actor, actor_role, action, vehicle_id, outcome, details,"
    " request_id) VALUES ($1, 'op.tanaka', 'operator', $2, $3, 'executed', $4::jsonb, 'req-1')"
    " RETURNING audit_id"
)


def days_ago(days: float, base: datetime = NOW) -> datetime:
    return base - timedelta(days=days)


@asynccontextmanager
async def opened(database_url: str) -> AsyncIterator[Database]:
    async with (
        open_asyncio_bridge(),
        open_database(database_url, min_size=1, max_size=3) as database,
    ):
        yield database


async def add_vehicle(database: Database, vehicle_id: str) -> None:
    await database.execute("INSERT INTO vehicles (vehicle_id, name) VALUES ($1, $1)", vehicle_id)


async def timestamps(database: Database, table: str) -> list[tuple[str, datetime]]:
    rows = await database.fetch(f'SELECT vehicle_id, "timestamp" FROM {table} ORDER BY 1, 2')
    return [(row["vehicle_id"], row["timestamp"]) for row in rows]


def job(database: Database, archive_dir: Path, *, batch_size: int = 10_000) -> RetentionJob:
    policy = RetentionPolicy(archive_dir=archive_dir, batch_size=batch_size)
    return RetentionJob(database, policy, wall_clock=lambda: NOW)


async def test_old_telemetry_moves_to_the_archive_and_recent_rows_stay(
    database_url: str, tmp_path: Path
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with opened(database_url) as database:
            for vehicle_id in ("wheelchair_001", "wheelchair_002"):
                await add_vehicle(database, vehicle_id)
            old_locations = [days_ago(30 + hours / 24) for hours in range(1, 6)]  # 5 per vehicle
            young_locations = [days_ago(29.9), days_ago(1), NOW]
            old_status = [days_ago(90.01), days_ago(200)]
            young_status = [days_ago(89.99), days_ago(31)]  # old for locations, not for status
            for vehicle_id in ("wheelchair_001", "wheelchair_002"):
                for moment in old_locations + young_locations:
                    await database.execute(LOCATION_SQL, vehicle_id, moment)
                for moment in old_status + young_status:
                    await database.execute(STATUS_SQL, vehicle_id, moment)
            # A vehicle disabled long ago still ages out.
            await database.execute(
                "UPDATE vehicles SET enabled = false WHERE vehicle_id = $1", "wheelchair_002"
            )
            live_before = await database.fetch("SELECT * FROM vehicle_locations ORDER BY 1, 2")

            # Batches of 2: five old rows per vehicle take three transactions each.
            summary = await job(database, tmp_path, batch_size=2).run_pass()

            assert summary.errors == []
            assert summary.locations_moved == 10
            assert summary.status_moved == 4
            vehicles = ("wheelchair_001", "wheelchair_002")
            assert await timestamps(database, "vehicle_locations") == [
                (vehicle, moment) for vehicle in vehicles for moment in sorted(young_locations)
            ]
            assert await timestamps(database, "vehicle_locations_archive") == [
                (vehicle, moment) for vehicle in vehicles for moment in sorted(old_locations)
            ]
            assert await timestamps(database, "vehicle_status") == [
                (vehicle, moment) for vehicle in vehicles for moment in sorted(young_status)
            ]
            assert await timestamps(database, "vehicle_status_archive") == [
                (vehicle, moment) for vehicle in vehicles for moment in sorted(old_status)
            ]

            # The archive holds the rows exactly as they were, plus when they were archived.
            archived = await database.fetch("SELECT * FROM vehicle_locations_archive ORDER BY 1, 2")
            originals = {(row["vehicle_id"], row["timestamp"]): dict(row) for row in live_before}
            for row in archived:
                copy = dict(row)
                assert copy.pop("archived_at") is not None
                assert copy == originals[(row["vehicle_id"], row["timestamp"])]
            status = await database.fetchrow("SELECT * FROM vehicle_status_archive LIMIT 1")
            assert status is not None
            assert (status["state"], status["mission_id"], status["progress_percent"]) == (
                "navigating",
                "mission_1",
                42.5,
            )

            again = await job(database, tmp_path).run_pass()
            assert (again.locations_moved, again.status_moved, again.audit_exported) == (0, 0, 0)
            assert again.audit_file is None
            assert len(await timestamps(database, "vehicle_locations_archive")) == 10


async def test_a_row_already_in_the_archive_is_not_duplicated(
    database_url: str, tmp_path: Path
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with opened(database_url) as database:
            await add_vehicle(database, "wheelchair_001")
            moment = days_ago(40)
            await database.execute(LOCATION_SQL, "wheelchair_001", moment)
            await database.execute(
                "INSERT INTO vehicle_locations_archive SELECT *, now() FROM vehicle_locations"
            )

            summary = await job(database, tmp_path).run_pass()

            assert summary.locations_moved == 1
            assert await timestamps(database, "vehicle_locations") == []
            assert await timestamps(database, "vehicle_locations_archive") == [
                ("wheelchair_001", moment)
            ]


async def insert_audit(database: Database, at: datetime, action: str) -> int:
    details = json.dumps({"command_id": f"cmd_{action}", "note": "ünïcode ok"})
    return int(await database.fetchval(AUDIT_SQL, at, action, "wheelchair_001", details))


def read_export(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as export:
        return [json.loads(line) for line in export]


async def test_old_audit_records_are_exported_then_exactly_those_deleted(
    database_url: str, tmp_path: Path
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with opened(database_url) as database:
            old = [await insert_audit(database, days_ago(90 + d), f"old_{d}") for d in (1, 2, 30)]
            recent = [await insert_audit(database, days_ago(d), f"recent_{d}") for d in (89, 1)]
            stored = {
                row["audit_id"]: dict(row)
                for row in await database.fetch("SELECT * FROM audit_logs")
            }
            archive_dir = tmp_path / "archive"  # created on demand

            summary = await job(database, archive_dir, batch_size=2).run_pass()

            assert summary.errors == []
            assert (summary.audit_exported, summary.audit_deleted) == (3, 3)
            assert summary.audit_file == archive_dir / "audit-20251216-020000.jsonl.gz"
            assert sorted(path.name for path in archive_dir.iterdir()) == [
                "audit-20251216-020000.jsonl.gz"  # no partial file left behind
            ]
            lines = read_export(summary.audit_file)
            assert [line["audit_id"] for line in lines] == old
            for line in lines:
                row = stored[line["audit_id"]]
                assert line == {
                    "audit_id": row["audit_id"],
                    "at": format_timestamp(row["at"]),
                    "actor": "op.tanaka",
                    "actor_role": "operator",
                    "action": row["action"],
                    "vehicle_id": "wheelchair_001",
                    "outcome": "executed",
                    "details": json.loads(row["details"]),
                    "request_id": "req-1",
                    "source_address": None,
                }
            remaining = await database.fetch("SELECT audit_id FROM audit_logs ORDER BY 1")
            assert [row["audit_id"] for row in remaining] == recent

            again = await job(database, archive_dir).run_pass()
            assert (again.audit_exported, again.audit_deleted, again.audit_file) == (0, 0, None)


async def test_nothing_is_deleted_when_the_export_cannot_be_written(
    database_url: str, tmp_path: Path
) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with opened(database_url) as database:
            await add_vehicle(database, "wheelchair_001")
            await database.execute(LOCATION_SQL, "wheelchair_001", days_ago(31))
            await insert_audit(database, days_ago(100), "old")
            blocked = tmp_path / "not-a-directory"
            blocked.write_text("a file where the archive directory should be")

            summary = await job(database, blocked).run_pass()

            assert summary.locations_moved == 1  # the other steps still ran
            assert summary.audit_deleted == 0
            assert summary.audit_file is None
            assert len(summary.errors) == 1 and summary.errors[0].startswith("audit: ")
            assert await database.fetchval("SELECT count(*) FROM audit_logs") == 1


def test_export_file_never_overwrites_an_earlier_one(tmp_path: Path) -> None:
    names = []
    for batch in range(3):
        archive = AuditArchiveFile(tmp_path, "audit-20251216-020000.jsonl.gz")
        archive.write([{"audit_id": batch}])
        names.append(archive.commit().name)
    assert names == [
        "audit-20251216-020000.jsonl.gz",
        "audit-20251216-020000-2.jsonl.gz",
        "audit-20251216-020000-3.jsonl.gz",
    ]
    assert read_export(tmp_path / names[1]) == [{"audit_id": 1}]
    discarded = AuditArchiveFile(tmp_path, "audit-x.jsonl.gz")
    discarded.write([{"audit_id": 9}])
    discarded.discard()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(names)


def tvm_hub() -> list[str]:
    script = Path(sys.executable).with_name("tvm-hub")
    return [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]


def test_archive_now_runs_one_pass_and_prints_what_it_did(
    database_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    db.execute(database_url, "INSERT INTO vehicles (vehicle_id, name) VALUES ('v1', 'v1')")
    for moment in (now - timedelta(days=45), now - timedelta(days=31), now - timedelta(days=2)):
        db.execute(database_url, LOCATION_SQL, "v1", moment)
    db.execute(database_url, STATUS_SQL, "v1", now - timedelta(days=120))
    db.execute(database_url, AUDIT_SQL, now - timedelta(days=95), "emergency_stop", "v1", "{}")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TVM_", "JWT_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        DATABASE_URL=database_url,
        TVM_DATA_DIR=str(tmp_path / "data"),
        TVM_ARCHIVE_DIR=str(tmp_path / "cold"),
        TVM_LOG_LEVEL="WARNING",
    )

    done = subprocess.run(
        [*tvm_hub(), "archive", "--now"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    printed = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert printed["locations_moved"] == "2"
    assert printed["status_moved"] == "1"
    assert printed["audit_exported"] == "1"
    assert printed["audit_deleted"] == "1"
    export = Path(printed["audit_file"])
    assert export.parent == tmp_path / "cold"
    assert [line["action"] for line in read_export(export)] == ["emergency_stop"]
    assert db.fetchval(database_url, "SELECT count(*) FROM vehicle_locations") == 1
    assert db.fetchval(database_url, "SELECT count(*) FROM vehicle_locations_archive") == 2

    without_flag = subprocess.run(
        [*tvm_hub(), "archive"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert without_flag.returncode == 2  # argparse: --now is required


async def test_hubs_sharing_a_database_run_each_scheduled_pass_once(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    due = datetime(2025, 12, 16, 2, 0, tzinfo=UTC)  # both hubs' clocks say it is due now
    with trio.fail_after(TEST_TIMEOUT):
        async with opened(database_url) as database:
            await add_vehicle(database, "wheelchair_001")
            await database.execute(LOCATION_SQL, "wheelchair_001", days_ago(31, due))
            policy = RetentionPolicy(archive_dir=tmp_path)
            hubs = [
                RetentionJob(database, policy, wall_clock=lambda: due, claimant=name)
                for name in ("hub-a", "hub-b")
            ]

            async def outcome() -> tuple[bool, list[bool]]:
                skipped = any("is run by another hub" in r.message for r in caplog.records)
                return skipped, [job.last_summary is not None for job in hubs]

            with caplog.at_level(logging.INFO, logger="actors.retention.job"):
                async with trio.open_nursery() as nursery:
                    for job in hubs:
                        await nursery.start(job.run)
                    await until(
                        outcome,
                        lambda seen: seen[0] and any(seen[1]),
                        what="one hub to run the pass and the other to skip it",
                    )
                    nursery.cancel_scope.cancel()

            [ran] = [job for job in hubs if job.last_summary is not None]
            assert ran.last_summary is not None and ran.last_summary.locations_moved == 1
            claims = await database.fetch("SELECT due, claimed_by FROM retention_runs")
            assert [(row["due"], row["claimed_by"]) for row in claims] == [(due, ran.claimant)]
            other = next(job for job in hubs if job is not ran)
            assert await other.claim(due + timedelta(days=1))  # the next day is anyone's
