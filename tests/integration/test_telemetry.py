"""Live telemetry reports (CONTRACT §3, §7): what a vehicle is told and what the hub keeps.

Each test runs one hub over its own database; vehicles within a test are independent.
Stored rows are read straight from PostgreSQL, so "200" is checked against what was committed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import trio

from hub.clock import format_timestamp, parse_timestamp
from storage import testing
from tests.integration.harness import (
    TELEMETRY_TABLES,
    RunningHub,
    Timeline,
    battery_body,
    docking_body,
    error_body,
    guarded_hub,
    location_body,
    one_report_of_each_kind,
    status_body,
    timestamp,
)

WIRE_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


async def fetch(hub: RunningHub, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of a query against the hub's database."""
    assert hub.settings.database_url is not None
    return await trio.to_thread.run_sync(
        partial(testing.fetch, hub.settings.database_url, sql, *args)
    )


async def rows_of(hub: RunningHub, kind: str, vehicle_id: str) -> list[dict[str, Any]]:
    """The vehicle's stored rows of one kind, oldest first."""
    return await fetch(
        hub,
        f'SELECT * FROM {TELEMETRY_TABLES[kind]} WHERE vehicle_id = $1 ORDER BY "timestamp"',
        vehicle_id,
    )


async def alerts_of(hub: RunningHub, vehicle_id: str) -> list[dict[str, Any]]:
    """The vehicle's alerts, oldest first."""
    return await fetch(
        hub, "SELECT * FROM alerts WHERE vehicle_id = $1 ORDER BY created_at", vehicle_id
    )


def assert_received_now(received_at: str) -> None:
    """``received_at`` is in the contract's form and is the server's current time."""
    assert WIRE_TIMESTAMP.fullmatch(received_at), received_at
    age = datetime.now(UTC) - parse_timestamp(received_at)
    assert timedelta(seconds=-2) < age < timedelta(seconds=30)


async def test_each_kind_is_stored_once_and_resends_are_flagged(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        bodies = one_report_of_each_kind()
        for kind, body in bodies.items():
            answer = await hub.post(vehicle, kind, body)
            assert answer.status_code == 200, (kind, answer.text)
            reply = answer.json()
            expected_status = "acknowledged" if kind == "error" else "ok"
            assert reply["status"] == expected_status, kind
            assert_received_now(reply["received_at"])
            assert "duplicate" not in reply, kind

        stored = {kind: await rows_of(hub, kind, "wheelchair_001") for kind in TELEMETRY_TABLES}
        assert all(len(rows) == 1 for rows in stored.values()), stored
        for kind, body in bodies.items():
            assert format_timestamp(stored[kind][0]["timestamp"]) == body["timestamp"]
        assert stored["location"][0]["latitude"] == 35.5
        assert stored["status"][0]["state"] == "navigating"
        assert stored["status"][0]["mission_id"] == "mission_77"
        assert stored["battery"][0]["soc_percent"] == 64.5
        assert stored["error"][0]["error_code"] == "DOCK_MARKER_NOT_FOUND"
        assert stored["docking"][0]["marker_id"] == 7

        for kind, body in bodies.items():
            again = await hub.post(vehicle, kind, body)
            assert again.status_code == 200, (kind, again.text)
            assert again.json()["duplicate"] is True, kind
            assert_received_now(again.json()["received_at"])
        for kind in TELEMETRY_TABLES:
            assert len(await rows_of(hub, kind, "wheelchair_001")) == 1, kind


def bad_cases(now: Any) -> list[tuple[str, dict[str, Any], str, str, Any]]:
    """(kind, body, error code, field, received value) for one bad field each."""
    long_text = "x" * 501
    echoed = "x" * 200 + "…"  # a refusal echoes at most 200 characters of a string
    return [
        (
            "location",
            location_body(now(), latitude=95.123),
            "invalid_location",
            "location.latitude",
            95.123,
        ),
        (
            "location",
            location_body(now(), longitude=-180.5),
            "invalid_location",
            "location.longitude",
            -180.5,
        ),
        (
            "location",
            location_body(now(), heading=360.5),
            "invalid_heading",
            "location.heading",
            360.5,
        ),
        ("location", location_body(now(), speed=2.5), "invalid_speed", "location.speed", 2.5),
        (
            "location",
            location_body(now(), accuracy=1.5),
            "invalid_accuracy",
            "location.accuracy",
            1.5,
        ),
        (
            "location",
            location_body(now(), latitude="35.6"),
            "invalid_location",
            "location.latitude",
            "35.6",
        ),
        ("status", status_body("flying", now()), "invalid_enum", "state", "flying"),
        (
            "status",
            status_body("idle", now(), mission_id="job-1"),
            "validation_error",
            "mission_id",
            "job-1",
        ),
        (
            "status",
            status_body("idle", now(), details={"progress_percent": 101}),
            "validation_error",
            "details.progress_percent",
            101,
        ),
        (
            "status",
            status_body("idle", now(), details={"eta_seconds": -1}),
            "validation_error",
            "details.eta_seconds",
            -1,
        ),
        (
            "status",
            status_body("idle", now(), passengers_onboard="yes"),
            "validation_error",
            "passengers_onboard",
            "yes",
        ),
        ("status", status_body("idle", now(), colour="red"), "validation_error", "colour", "red"),
        (
            "battery",
            _battery(now(), soc_percent=100.5),
            "invalid_battery",
            "battery.soc_percent",
            100.5,
        ),
        ("battery", _battery(now(), voltage=0), "invalid_battery", "battery.voltage", 0),
        ("battery", _battery(now(), current=-101), "invalid_battery", "battery.current", -101),
        ("battery", _battery(now(), temperature=81), "invalid_battery", "battery.temperature", 81),
        (
            "battery",
            _battery(now(), estimated_runtime_minutes=1.5),
            "invalid_battery",
            "battery.estimated_runtime_minutes",
            1.5,
        ),
        (
            "battery",
            _battery(now(), health_percent=-1),
            "invalid_battery",
            "battery.health_percent",
            -1,
        ),
        ("error", {**error_body("fatal", ts=now())}, "invalid_enum", "severity", "fatal"),
        (
            "error",
            {**error_body(ts=now()), "subsystem": "wheels"},
            "invalid_enum",
            "subsystem",
            "wheels",
        ),
        (
            "error",
            error_body(code="nav_obstacle_blocked", ts=now()),
            "invalid_error_code",
            "error_code",
            "nav_obstacle_blocked",
        ),
        (
            "error",
            error_body(code="NAV-BLOCKED", ts=now()),
            "invalid_error_code",
            "error_code",
            "NAV-BLOCKED",
        ),
        (
            "error",
            {**error_body(ts=now()), "description": long_text},
            "validation_error",
            "description",
            echoed,
        ),
        (
            "error",
            {**error_body(ts=now()), "location": {"latitude": 91, "longitude": 0}},
            "invalid_location",
            "location.latitude",
            91,
        ),
        ("docking", docking_body("parking", now()), "invalid_enum", "phase", "parking"),
        (
            "docking",
            docking_body("approaching", now(), marker_id=1000),
            "validation_error",
            "marker_id",
            1000,
        ),
        (
            "docking",
            docking_body("approaching", now(), distance_to_marker_meters=10.5),
            "validation_error",
            "distance_to_marker_meters",
            10.5,
        ),
        (
            "docking",
            docking_body("approaching", now(), alignment_error_degrees=181),
            "validation_error",
            "alignment_error_degrees",
            181,
        ),
        (
            "docking",
            docking_body("approaching", now(), details={"confidence": 1.5}),
            "validation_error",
            "details.confidence",
            1.5,
        ),
        (
            "docking",
            docking_body("approaching", now(), docking_success=True),
            "validation_error",
            "docking_success",
            True,
        ),
    ]


def _battery(ts: str, **fields: Any) -> dict[str, Any]:
    body = battery_body(ts=ts)
    body["battery"].update(fields)
    return body


async def test_bad_fields_get_their_contract_code_and_nothing_is_stored(
    database_url: str,
) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        for kind, body, code, field, received in bad_cases(Timeline()):
            answer = await hub.post(vehicle, kind, body)
            assert answer.status_code == 400, (kind, field, answer.text)
            error = answer.json()
            assert error["error"] == code, (kind, field, error)
            assert error["field"] == field, (kind, error)
            assert error["received_value"] == received, (kind, field, error)
            assert error["message"], (kind, field)
            assert WIRE_TIMESTAMP.fullmatch(error["timestamp"])

        for kind in TELEMETRY_TABLES:
            assert await rows_of(hub, kind, "wheelchair_001") == [], kind
        assert await alerts_of(hub, "wheelchair_001") == []


async def test_timestamps_outside_the_live_window_are_refused(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        builders: dict[str, Callable[[Any], dict[str, Any]]] = {
            "location": lambda ts: location_body(ts),
            "status": lambda ts: status_body("idle", ts),
            "battery": lambda ts: battery_body(ts=ts),
            "error": lambda ts: error_body("critical", ts=ts),
            "docking": lambda ts: docking_body("approaching", ts),
        }
        malformed: list[Any] = [
            "2025-12-16T10:30:45Z",
            "2025-12-16T10:30:45.123+09:00",
            "2025-02-30T10:30:45.123Z",
            1765881045123,
        ]
        for kind, build in builders.items():
            for offset in (-310.0, -3600.0, 10.0, 86400.0):
                ts = timestamp(offset)
                answer = await hub.post(vehicle, kind, build(ts))
                assert answer.status_code == 400, (kind, offset, answer.text)
                error = answer.json()
                assert error["error"] == "invalid_timestamp", (kind, offset)
                assert error["field"] == "timestamp"
                assert error["received_value"] == ts
            for bad in malformed:
                answer = await hub.post(vehicle, kind, build(bad))
                assert answer.status_code == 400, (kind, bad, answer.text)
                assert answer.json()["error"] == "invalid_timestamp", (kind, bad)
                assert answer.json()["field"] == "timestamp"
        for kind in TELEMETRY_TABLES:
            assert await rows_of(hub, kind, "wheelchair_001") == [], kind
        assert await alerts_of(hub, "wheelchair_001") == []

        # Inside the window at both ends: accepted.
        for offset in (-280.0, 2.0):
            answer = await hub.post(vehicle, "location", location_body(timestamp(offset)))
            assert answer.status_code == 200, (offset, answer.text)


async def test_battery_answer_advises_return_to_base_when_low(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        now = Timeline()

        low = await hub.post(vehicle, "battery", battery_body(25.0, False, now()))
        assert low.status_code == 200, low.text
        assert low.json()["warning"] == "low_battery"
        assert low.json()["recommended_action"] == "return_to_base"
        assert isinstance(low.json()["message"], str) and low.json()["message"]

        for soc, charging in ((25.0, True), (85.0, False), (30.0, False)):
            answer = await hub.post(vehicle, "battery", battery_body(soc, charging, now()))
            assert answer.status_code == 200, answer.text
            reply = answer.json()
            assert "warning" in reply and reply["warning"] is None, (soc, charging, reply)
            assert "recommended_action" not in reply

        # Above 20 %: advice, but no alert for staff.
        assert await alerts_of(hub, "wheelchair_001") == []


async def test_error_reports_alert_staff_only_when_serious(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        now = Timeline()

        critical_body = error_body("critical", code="SAFE_COLLISION_DETECTED", ts=now())
        critical = await hub.post(vehicle, "error", critical_body)
        assert critical.status_code == 200, critical.text
        reply = critical.json()
        assert reply["status"] == "acknowledged"
        assert_received_now(reply["received_at"])
        assert reply["action"] == "alert_staff"
        assert isinstance(reply["staff_notified"], bool)
        assert "warning" not in reply
        alert_id = reply["alert_id"]
        assert re.fullmatch(r"alert_\w+", alert_id)

        [alert] = await alerts_of(hub, "wheelchair_001")
        assert alert["alert_id"] == alert_id
        assert alert["severity"] == "critical"
        assert alert["error_code"] == "SAFE_COLLISION_DETECTED"
        assert alert["backfilled"] is False
        assert alert["acknowledged_at"] is None
        [stored] = await rows_of(hub, "error", "wheelchair_001")
        assert stored["alert_id"] == alert_id

        resend = await hub.post(vehicle, "error", critical_body)
        assert resend.status_code == 200, resend.text
        assert resend.json()["duplicate"] is True
        assert resend.json()["alert_id"] == alert_id
        assert resend.json()["action"] == "alert_staff"
        assert len(await alerts_of(hub, "wheelchair_001")) == 1
        assert len(await rows_of(hub, "error", "wheelchair_001")) == 1

        serious = await hub.post(vehicle, "error", error_body("error", ts=now()))
        assert serious.json()["action"] == "alert_staff"
        assert serious.json()["alert_id"].startswith("alert_")

        for severity in ("warning", "info"):
            body = error_body(severity, ts=now())
            minor = await hub.post(vehicle, "error", body)
            assert minor.status_code == 200, minor.text
            assert minor.json()["alert_id"] is None
            assert minor.json()["action"] == "logged"
            assert minor.json()["staff_notified"] is False
            [row] = await fetch(
                hub,
                'SELECT alert_id FROM vehicle_errors WHERE vehicle_id = $1 AND "timestamp" = $2',
                "wheelchair_001",
                parse_timestamp(body["timestamp"]),
            )
            assert row["alert_id"] is None

        alerts = await alerts_of(hub, "wheelchair_001")
        assert [a["severity"] for a in alerts] == ["critical", "error"]


async def test_unknown_error_code_is_kept_and_flagged(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        now = Timeline()

        unknown = await hub.post(vehicle, "error", error_body("warning", "FOO_BAR", now()))
        assert unknown.status_code == 200, unknown.text
        assert unknown.json()["warning"] == "unknown_error_code"
        assert unknown.json()["action"] == "logged"

        serious = await hub.post(vehicle, "error", error_body("critical", "FOO_BAZ", now()))
        assert serious.status_code == 200, serious.text
        assert serious.json()["warning"] == "unknown_error_code"
        assert serious.json()["action"] == "alert_staff"
        [alert] = await alerts_of(hub, "wheelchair_001")
        assert alert["alert_id"] == serious.json()["alert_id"]
        assert alert["error_code"] == "FOO_BAZ"

        stored = await rows_of(hub, "error", "wheelchair_001")
        assert [row["error_code"] for row in stored] == ["FOO_BAR", "FOO_BAZ"]

        lower = await hub.post(vehicle, "error", error_body("critical", "foo_bar", now()))
        assert lower.status_code == 400
        assert lower.json()["error"] == "invalid_error_code"
        assert lower.json()["received_value"] == "foo_bar"
        assert len(await rows_of(hub, "error", "wheelchair_001")) == 2
        assert len(await alerts_of(hub, "wheelchair_001")) == 1


async def test_docking_is_stored_with_the_current_mission(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        on_mission = await hub.register_vehicle("wheelchair_001")
        no_status = await hub.register_vehicle("wheelchair_002")
        now = Timeline()

        await hub.post(
            on_mission, "status", status_body("navigating", now(), mission_id="mission_A1")
        )
        first = await hub.post(on_mission, "docking", docking_body("approaching", now()))
        assert first.status_code == 200, first.text
        await hub.post(on_mission, "status", status_body("docking", now(), mission_id="mission_B2"))
        second = await hub.post(on_mission, "docking", docking_body("marker_detection", now()))
        assert second.status_code == 200, second.text

        stored = await rows_of(hub, "docking", "wheelchair_001")
        assert [(row["phase"], row["mission_id"]) for row in stored] == [
            ("approaching", "mission_A1"),
            ("marker_detection", "mission_B2"),
        ]
        assert stored[1]["confidence"] == 0.95
        assert stored[1]["marker_visible"] is True

        alone = await hub.post(no_status, "docking", docking_body("approaching", now()))
        assert alone.status_code == 200, alone.text
        [row] = await rows_of(hub, "docking", "wheelchair_002")
        assert row["mission_id"] is None


async def test_entering_error_or_emergency_stop_raises_an_alert(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        faulty = await hub.register_vehicle("wheelchair_001")
        stopped = await hub.register_vehicle("wheelchair_002")
        now = Timeline()

        for state in ("idle", "error", "error"):
            answer = await hub.post(faulty, "status", status_body(state, now()))
            assert answer.status_code == 200, answer.text
        [alert] = await alerts_of(hub, "wheelchair_001")
        assert alert["severity"] == "error"

        for state in ("navigating", "emergency_stop", "emergency_stop"):
            answer = await hub.post(stopped, "status", status_body(state, now()))
            assert answer.status_code == 200, answer.text
        [alert] = await alerts_of(hub, "wheelchair_002")
        assert alert["severity"] == "critical"

        # Leaving and entering again is a new event.
        for state in ("idle", "emergency_stop"):
            answer = await hub.post(stopped, "status", status_body(state, now()))
            assert answer.status_code == 200, answer.text
        assert [a["severity"] for a in await alerts_of(hub, "wheelchair_002")] == [
            "critical",
            "critical",
        ]

        # A resent status that entered error raises nothing again.
        body = status_body("idle", now())
        await hub.post(faulty, "status", body)
        entering = status_body("error", now())
        await hub.post(faulty, "status", entering)
        assert (await hub.post(faulty, "status", entering)).json()["duplicate"] is True
        assert len(await alerts_of(hub, "wheelchair_001")) == 2


async def test_low_battery_alerts_once_per_crossing(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        now = Timeline()

        async def report(soc: float) -> list[str]:
            answer = await hub.post(vehicle, "battery", battery_body(soc, False, now()))
            assert answer.status_code == 200, answer.text
            return [a["severity"] for a in await alerts_of(hub, "wheelchair_001")]

        assert await report(50.0) == []
        assert await report(21.0) == []
        assert await report(19.5) == ["warning"]
        assert await report(18.0) == ["warning"]
        assert await report(12.0) == ["warning"]
        assert await report(9.5) == ["warning", "critical"]
        assert await report(8.0) == ["warning", "critical"]
        # Recharged, then falling through 20 % again: a new crossing.
        assert await report(60.0) == ["warning", "critical"]
        assert await report(19.0) == ["warning", "critical", "warning"]

        kinds = [a["kind"] for a in await alerts_of(hub, "wheelchair_001")]
        assert len(set(kinds)) == 2, kinds
