"""Bulk upload after offline operation (CONTRACT §4): all or nothing, deduplicated, history only.

Each test runs one hub over its own database. Row counts are read from PostgreSQL before and
after, so atomicity is checked against what was (not) committed.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import trio

from hub.clock import format_timestamp, utc_now
from storage import testing
from tests.integration.harness import (
    RunningHub,
    Vehicle,
    battery_body,
    docking_body,
    error_body,
    location_body,
    running_hub,
    status_body,
    timestamp,
)

KINDS = ["location", "status", "battery", "error", "docking"]
TABLES = {
    "location": "vehicle_locations",
    "status": "vehicle_status",
    "battery": "vehicle_battery",
    "error": "vehicle_errors",
    "docking": "vehicle_docking",
}
STATES = ["idle", "navigating", "docking", "charging"]
PHASES = ["approaching", "marker_detection", "visual_servoing", "final_approach", "attachment"]


def ago(seconds: float) -> str:
    """The wire timestamp ``seconds`` before now."""
    return format_timestamp(utc_now() - timedelta(seconds=seconds))


def data_for(kind: str, index: int = 0) -> dict[str, Any]:
    """A valid ``data`` object of ``kind`` (the single-endpoint body without its timestamp)."""
    bodies = {
        "location": lambda: location_body(latitude=35.0 + index / 10_000),
        "status": lambda: status_body(STATES[index % len(STATES)]),
        "battery": lambda: battery_body(soc=50.0 + index % 50),
        "error": lambda: error_body("warning" if index % 2 else "info"),
        "docking": lambda: docking_body(PHASES[index % len(PHASES)]),
    }
    body = bodies[kind]()
    del body["timestamp"]
    return body


def message(kind: str, ts: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": kind, "timestamp": ts, "data": data_for(kind) if data is None else data}


def mixed(count: int, oldest_seconds_ago: float) -> list[dict[str, Any]]:
    """``count`` messages cycling through the five kinds, one second apart, oldest first."""
    start = utc_now() - timedelta(seconds=oldest_seconds_ago)
    return [
        message(
            KINDS[index % 5],
            format_timestamp(start + timedelta(seconds=index)),
            data_for(KINDS[index % 5], index),
        )
        for index in range(count)
    ]


def upload(vehicle: Vehicle, messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"vehicle_id": vehicle.vehicle_id, **fields, "messages": messages}
    if messages and "offline_period" not in fields:
        moments = sorted(item["timestamp"] for item in messages)
        body["offline_period"] = {"start": moments[0], "end": moments[-1]}
    return body


async def fetch(hub: RunningHub, sql: str, *args: Any) -> list[dict[str, Any]]:
    assert hub.settings.database_url is not None
    return await trio.to_thread.run_sync(
        partial(testing.fetch, hub.settings.database_url, sql, *args)
    )


async def counts(hub: RunningHub, vehicle_id: str) -> dict[str, int]:
    """Rows per kind of one vehicle, plus its alerts."""
    found = {}
    for kind, table in {**TABLES, "alerts": "alerts"}.items():
        [row] = await fetch(
            hub, f"SELECT count(*) AS n FROM {table} WHERE vehicle_id = $1", vehicle_id
        )
        found[kind] = int(row["n"])
    return found


async def vehicle_state(hub: RunningHub, vehicle_id: str) -> str | None:
    answer = await hub.client.get(f"/api/v1/vehicle/{vehicle_id}", headers=hub.admin_headers)
    assert answer.status_code == 200, answer.text
    state: str | None = answer.json()["state"]
    return state


async def test_a_thousand_mixed_messages_are_stored_once(database_url: str) -> None:
    with trio.fail_after(90):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            messages = mixed(1000, oldest_seconds_ago=3000)
            body = upload(vehicle, messages)

            started = trio.current_time()
            answer = await hub.post(vehicle, "bulk", body)
            took = trio.current_time() - started
            print(f"\n1000-message bulk POST took {took * 1000:.0f} ms")
            assert answer.status_code == 200, answer.text
            assert answer.json() == {
                "status": "ok",
                "messages_received": 1000,
                "messages_processed": 1000,
                "inserted": 1000,
                "skipped_duplicates": 0,
                "offline_duration_seconds": 999,
            }
            stored = await counts(hub, "wheelchair_001")
            assert stored == {**{kind: 200 for kind in KINDS}, "alerts": 0}

            again = await hub.post(vehicle, "bulk", body)
            assert again.status_code == 200, again.text
            assert again.json()["inserted"] == 0
            assert again.json()["skipped_duplicates"] == 1000
            assert again.json()["messages_received"] == 1000
            assert await counts(hub, "wheelchair_001") == stored

            newer = mixed(500, oldest_seconds_ago=1500)
            overlap = await hub.post(vehicle, "bulk", upload(vehicle, messages[500:] + newer))
            assert overlap.status_code == 200, overlap.text
            assert overlap.json()["inserted"] == 500
            assert overlap.json()["skipped_duplicates"] == 500
            assert sum((await counts(hub, "wheelchair_001")).values()) == 1500


async def test_one_invalid_message_refuses_the_whole_upload(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            before = await counts(hub, "wheelchair_001")
            assert sum(before.values()) == 0

            messages = mixed(10, oldest_seconds_ago=600)
            messages[0]["data"] = data_for("error", 0) | {"severity": "critical"}
            messages[0]["type"] = "error"
            messages[7] = message("location", messages[7]["timestamp"])
            messages[7]["data"]["location"]["latitude"] = 95.5
            answer = await hub.post(vehicle, "bulk", upload(vehicle, messages))
            assert answer.status_code == 400, answer.text
            error = answer.json()
            assert error["error"] == "invalid_location"
            assert error["field"] == "messages[7].data.location.latitude"
            assert error["received_value"] == 95.5
            assert error["details"]["index"] == 7
            assert await counts(hub, "wheelchair_001") == before

            inner = mixed(10, oldest_seconds_ago=600)
            inner[3] = message(
                "battery",
                inner[3]["timestamp"],
                data_for("battery")["battery"] | {"soc_percent": 140},
            )
            answer = await hub.post(vehicle, "bulk", upload(vehicle, inner))
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"] == "invalid_battery"
            assert answer.json()["field"] == "messages[3].data.soc_percent"
            assert answer.json()["details"]["index"] == 3

            kinds = mixed(5, oldest_seconds_ago=600)
            kinds[2]["type"] = "teleport"
            answer = await hub.post(vehicle, "bulk", upload(vehicle, kinds))
            assert answer.status_code == 400, answer.text
            assert answer.json()["field"].startswith("messages[2].")
            assert answer.json()["details"]["index"] == 2

            late = mixed(5, oldest_seconds_ago=600)
            assert [item["type"] for item in late] == KINDS
            late[1]["data"]["state"] = "dancing"
            late[4]["data"]["phase"] = "parking"
            answer = await hub.post(vehicle, "bulk", upload(vehicle, late))
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"] == "invalid_enum"
            assert answer.json()["field"] == "messages[1].data.state"
            assert answer.json()["received_value"] == "dancing"
            assert answer.json()["details"]["index"] == 1
            listed = [entry["field"] for entry in answer.json()["details"]["errors"]]
            assert listed == ["messages[1].data.state", "messages[4].data.phase"]

            assert await counts(hub, "wheelchair_001") == before
            good = await hub.post(vehicle, "bulk", upload(vehicle, mixed(10, 600)))
            assert good.json()["inserted"] == 10


async def test_size_and_vehicle_id_limits(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")

            too_many = await hub.post(vehicle, "bulk", upload(vehicle, mixed(1001, 3000)))
            assert too_many.status_code == 400, too_many.text
            assert too_many.json()["error"] == "bulk_too_large"

            empty = await hub.post(vehicle, "bulk", upload(vehicle, []))
            assert empty.status_code == 400, empty.text

            mismatch = await hub.post(
                vehicle, "bulk", upload(vehicle, mixed(3, 600), vehicle_id="wheelchair_999")
            )
            assert mismatch.status_code == 400, mismatch.text
            assert mismatch.json()["error"] == "vehicle_id_mismatch"
            assert mismatch.json()["received_value"] == "wheelchair_999"

            assert sum((await counts(hub, "wheelchair_001")).values()) == 0

            no_id = {"messages": mixed(3, 600)}
            answer = await hub.post(vehicle, "bulk", no_id)
            assert answer.status_code == 200, answer.text
            assert answer.json()["inserted"] == 3
            assert answer.json()["offline_duration_seconds"] is None


async def test_inner_object_form_and_the_thirty_day_window(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            month_old = ago(29 * 24 * 3600)
            ten_minutes_old = ago(600)
            messages = [
                message(
                    "location", month_old, data_for("location")["location"] | {"latitude": 35.25}
                ),
                message("battery", month_old, data_for("battery")["battery"] | {"soc_percent": 42}),
                message("location", ten_minutes_old, data_for("location")),
                message("status", ten_minutes_old, data_for("status", 1)),
            ]
            answer = await hub.post(vehicle, "bulk", upload(vehicle, messages))
            assert answer.status_code == 200, answer.text
            assert answer.json()["inserted"] == 4

            locations = await fetch(
                hub,
                'SELECT latitude FROM vehicle_locations WHERE vehicle_id = $1 ORDER BY "timestamp"',
                "wheelchair_001",
            )
            assert [row["latitude"] for row in locations] == [35.25, 35.0]
            [battery] = await fetch(
                hub,
                "SELECT soc_percent FROM vehicle_battery WHERE vehicle_id = $1",
                "wheelchair_001",
            )
            assert battery["soc_percent"] == 42

            # The same ten-minute-old record is refused on the live endpoint.
            live = await hub.post(vehicle, "location", location_body(ago(600)))
            assert live.status_code == 400
            assert live.json()["error"] == "invalid_timestamp"

            for ts in (ago(31 * 24 * 3600), timestamp(30)):
                refused = [message("location", ago(60)), message("battery", ts)]
                answer = await hub.post(vehicle, "bulk", upload(vehicle, refused))
                assert answer.status_code == 400, answer.text
                assert answer.json()["error"] == "invalid_timestamp"
                assert answer.json()["field"] == "messages[1].timestamp"
                assert answer.json()["received_value"] == ts
                assert answer.json()["details"]["index"] == 1
            assert sum((await counts(hub, "wheelchair_001")).values()) == 4


async def test_duplicates_within_one_upload_are_skipped(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            ts = ago(120)
            messages = [
                message("location", ts, data_for("location", 1)),
                message("location", ts, data_for("location", 2)),
                message("battery", ts),  # same moment, another kind: not a duplicate
                message("status", ts),
                message("location", ago(119)),
                message("location", ts, data_for("location", 3)),
            ]
            answer = await hub.post(vehicle, "bulk", upload(vehicle, messages))
            assert answer.status_code == 200, answer.text
            assert answer.json()["messages_received"] == 6
            assert answer.json()["inserted"] == 4
            assert answer.json()["skipped_duplicates"] == 2
            stored = await counts(hub, "wheelchair_001")
            assert (stored["location"], stored["battery"], stored["status"]) == (2, 1, 1)

            live_ts = timestamp()
            live = await hub.post(vehicle, "battery", battery_body(ts=live_ts))
            assert live.status_code == 200
            mixed_up = [message("battery", live_ts), message("battery", ago(30))]
            answer = await hub.post(vehicle, "bulk", upload(vehicle, mixed_up))
            assert (answer.json()["inserted"], answer.json()["skipped_duplicates"]) == (1, 1)


async def test_serious_error_in_a_bulk_raises_a_backfilled_alert(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            critical = error_body("critical", "SAFE_COLLISION_DETECTED")
            del critical["timestamp"]
            messages = [
                message("error", ago(900), data_for("error", 1)),
                message("error", ago(800), critical),
                message("location", ago(700)),
            ]
            body = upload(vehicle, messages)
            answer = await hub.post(vehicle, "bulk", body)
            assert answer.status_code == 200, answer.text

            [alert] = await fetch(
                hub, "SELECT * FROM alerts WHERE vehicle_id = $1", "wheelchair_001"
            )
            assert alert["backfilled"] is True
            assert alert["severity"] == "critical"
            assert alert["error_code"] == "SAFE_COLLISION_DETECTED"
            errors = await fetch(
                hub,
                "SELECT alert_id, backfilled FROM vehicle_errors WHERE vehicle_id = $1"
                ' ORDER BY "timestamp"',
                "wheelchair_001",
            )
            assert errors == [
                {"alert_id": None, "backfilled": True},
                {"alert_id": alert["alert_id"], "backfilled": True},
            ]

            # Uploading the same backlog again raises nothing new.
            again = await hub.post(vehicle, "bulk", body)
            assert again.json()["skipped_duplicates"] == 3
            assert len(await fetch(hub, "SELECT 1 FROM alerts")) == 1


async def test_history_skips_transition_rules_and_never_overrides_newer_state(
    database_url: str,
) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            live = await hub.register_vehicle("wheelchair_001")
            offline = await hub.register_vehicle("wheelchair_002")

            # idle → docking is refused live, but history is history.
            history = [
                message("status", ago(900), data_for("status", 0)),  # idle
                message("status", ago(800), data_for("status", 2)),  # docking
                message("docking", ago(790), data_for("docking", 4)),  # attachment
                message("docking", ago(780), data_for("docking", 1)),  # backward phase
            ]
            answer = await hub.post(offline, "bulk", upload(offline, history))
            assert answer.status_code == 200, answer.text
            assert answer.json()["inserted"] == 4
            assert await vehicle_state(hub, "wheelchair_002") == "docking"

            now_body = status_body("navigating", timestamp(), mission_id="mission_live")
            assert (await hub.post(live, "status", now_body)).status_code == 200
            older = [
                message("status", ago(200), data_for("status", 0)),  # idle
                message("status", ago(100), data_for("status", 3)),  # charging
            ]
            answer = await hub.post(live, "bulk", upload(live, older))
            assert answer.status_code == 200, answer.text
            snapshot = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001", headers=hub.admin_headers
            )
            assert snapshot.json()["state"] == "navigating"
            assert snapshot.json()["mission_id"] == "mission_live"
            # The live state still rules transitions: navigating → docking is fine…
            docking = await hub.post(live, "status", status_body("docking", timestamp()))
            assert docking.status_code == 200, docking.text
            # …and charging → navigating would not have been.
            assert await vehicle_state(hub, "wheelchair_001") == "docking"


async def test_out_of_order_history_leaves_the_newest_record_current(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            # Newest first, as a vehicle flushing a stack might send them.
            messages = [
                message("status", ago(20), data_for("status", 1)),  # navigating (newest)
                message("status", ago(40), data_for("status", 3)),  # charging
                message("battery", ago(20), data_for("battery")),
                message("battery", ago(40), data_for("battery")),
            ]
            messages[2]["data"]["battery"]["soc_percent"] = 15
            messages[3]["data"]["battery"]["soc_percent"] = 80
            answer = await hub.post(vehicle, "bulk", upload(vehicle, messages))
            assert answer.status_code == 200, answer.text
            assert await vehicle_state(hub, "wheelchair_001") == "navigating"

            # The hub judges the next live report against navigating, the newest state.
            docking = await hub.post(vehicle, "status", status_body("docking", timestamp()))
            assert docking.status_code == 200, docking.text

            # The battery is already below 20 % (newest record): a further low report is not
            # a new crossing.
            low = await hub.post(vehicle, "battery", battery_body(soc=14, ts=timestamp()))
            assert low.status_code == 200, low.text
            assert await fetch(hub, "SELECT 1 FROM alerts WHERE kind LIKE 'battery%'") == []


async def test_a_batch_that_fails_on_its_second_table_stores_nothing(database_url: str) -> None:
    """Bulk atomicity rests on the Writer's one transaction per batch: when the database
    refuses the batch half-way (here a trigger refuses the status rows, after the location
    rows were inserted), nothing of it stays stored, the caller is told, and it is not
    retried as if the database were down."""
    from storage.testing import execute_script

    await trio.to_thread.run_sync(
        execute_script,
        database_url,
        "CREATE FUNCTION refuse_status() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;"
        " CREATE TRIGGER refuse_status BEFORE INSERT ON vehicle_status"
        " FOR EACH ROW EXECUTE FUNCTION refuse_status()",
    )
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            messages = mixed(10, oldest_seconds_ago=600)
            assert {item["type"] for item in messages} >= {"location", "status"}
            started = trio.current_time()
            answer = await hub.post(vehicle, "bulk", upload(vehicle, messages))
            waited = trio.current_time() - started
            assert answer.status_code == 500, answer.text
            assert answer.json()["error"] == "internal_error"
            assert "refused by the test" not in answer.text
            assert waited < 1.0, "a refusal of the data must not wait out the outage retries"
            assert sum((await counts(hub, "wheelchair_001")).values()) == 0
            health = await hub.client.get("/health")
            assert health.json()["status"] == "ok"
