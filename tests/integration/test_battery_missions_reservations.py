"""Battery health, missions and reservations over HTTP on a real hub and PostgreSQL
(CONTRACT §3 battery health, §8, TVM-API-BAT-003, TVM-DB-SCHEMA-002).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import trio

from hub.clock import format_timestamp, utc_now
from storage import testing as db
from tests.integration.harness import RunningHub, Vehicle, running_hub

TEST_TIMEOUT = 90.0
PASSWORD = "a long passphrase for tests"


def battery(
    soc: float, *, charging: bool = False, current: float = -8.0, volts: float = 52.0
) -> dict[str, Any]:
    return {
        "soc_percent": soc,
        "voltage": volts,
        "current": current,
        "temperature": 30.0,
        "charging": charging,
        "estimated_runtime_minutes": 100,
        "health_percent": 95.0,
    }


def wire(moment: datetime) -> str:
    return format_timestamp(moment)


async def post_battery(
    hub: RunningHub, vehicle: Vehicle, ts: datetime, soc: float, **fields: Any
) -> None:
    body = {"timestamp": wire(ts), "battery": battery(soc, **fields)}
    answer = await hub.post(vehicle, "battery", body)
    assert answer.status_code == 200, answer.text


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_battery_health_counts_cycles_and_resting_voltage(database_url: str) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            quiet = await hub.register_vehicle("wheelchair_002")
            viewer = await hub.create_user("viewer.ito", "viewer", PASSWORD)
            start = utc_now() - timedelta(seconds=60)
            readings = [
                (100.0, {"current": 0.3, "volts": 52.6}),  # at rest
                (40.0, {}),
                (0.0, {}),  # 100 % discharged
                (100.0, {"charging": True, "current": 30.0}),
                (50.0, {"current": -0.5, "volts": 52.4}),  # 50 % more; at rest
            ]
            for index, (soc, fields) in enumerate(readings):
                await post_battery(hub, vehicle, start + timedelta(seconds=index), soc, **fields)
            last = start + timedelta(seconds=len(readings) - 1)
            if start.date() == last.date():
                samples = [{"date": last.date().isoformat(), "volts": 52.5}]
                trend = None
            else:  # the five seconds straddled midnight UTC
                samples = [
                    {"date": start.date().isoformat(), "volts": 52.6},
                    {"date": last.date().isoformat(), "volts": 52.4},
                ]
                trend = -0.2

            answer = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001/battery/health", headers=bearer(viewer)
            )
            assert answer.status_code == 200, answer.text
            assert answer.json() == {
                "vehicle_id": "wheelchair_001",
                "cycle_count": 1,
                "discharge_accumulated_percent": 150.0,
                "resting_voltage": {"samples": samples, "trend_volts_per_day": trend},
                "updated_at": wire(last),
            }

            # An offline backlog counts too (bulk path), in timestamp order.
            backlog_start = utc_now() - timedelta(minutes=20)
            messages = [
                {
                    "type": "battery",
                    "timestamp": wire(backlog_start + timedelta(minutes=minute)),
                    "data": {"battery": battery(soc)},
                }
                for minute, soc in ((2, 70.0), (0, 90.0), (1, 80.0))  # sent out of order
            ]
            bulk = await hub.client.post(
                "/api/v1/vehicle/wheelchair_002/bulk",
                json={"vehicle_id": "wheelchair_002", "messages": messages},
                headers=quiet.headers,
            )
            assert bulk.status_code == 200, bulk.text
            answer = await hub.client.get(
                "/api/v1/vehicle/wheelchair_002/battery/health", headers=hub.admin_headers
            )
            assert answer.json()["discharge_accumulated_percent"] == 20.0

            # Who may read it, and what an unknown vehicle gets.
            as_vehicle = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001/battery/health", headers=vehicle.headers
            )
            assert as_vehicle.status_code == 403
            anonymous = await hub.client.get("/api/v1/vehicle/wheelchair_001/battery/health")
            assert anonymous.status_code == 401
            unknown = await hub.client.get(
                "/api/v1/vehicle/wheelchair_404/battery/health", headers=hub.admin_headers
            )
            assert unknown.status_code == 404
            assert unknown.json()["error"] == "unknown_vehicle"
            # The history endpoint one segment up is unchanged.
            history = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001/battery", headers=hub.admin_headers
            )
            assert history.status_code == 200
            assert len(history.json()["items"]) == len(readings)

        # Saved when the hub stopped, and read back by a new hub.
        row = await trio.to_thread.run_sync(
            db.fetch,
            database_url,
            "SELECT cycle_count, discharge_accumulated_percent FROM battery_health"
            " WHERE vehicle_id = 'wheelchair_001'",
        )
        assert row == [{"cycle_count": 1, "discharge_accumulated_percent": 150.0}]
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_003")
            answer = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001/battery/health", headers=hub.admin_headers
            )
            assert answer.json()["cycle_count"] == 1
            assert answer.json()["updated_at"] == wire(last)
            fresh = await hub.client.get(
                "/api/v1/vehicle/wheelchair_003/battery/health", headers=hub.admin_headers
            )
            assert fresh.json() == {
                "vehicle_id": "wheelchair_003",
                "cycle_count": 0,
                "discharge_accumulated_percent": 0.0,
                "resting_voltage": {"samples": [], "trend_volts_per_day": None},
                "updated_at": None,
            }


def reservation_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "passenger_name": "Hanako Sato",
        "pickup": {"waypoint_id": "lobby_entrance", "latitude": 35.6811, "longitude": 139.767},
        "destination": {"waypoint_id": "room_201", "latitude": 35.682456, "longitude": 139.768234},
        "scheduled_time": wire(utc_now() + timedelta(hours=2)),
    }
    body.update(overrides)
    return body


async def test_reservations_crud_with_roles_and_validation(database_url: str) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_001")
            await hub.register_vehicle("wheelchair_002")
            operator = bearer(await hub.create_user("op.tanaka", "operator", PASSWORD))
            viewer = bearer(await hub.create_user("viewer.ito", "viewer", PASSWORD))
            client = hub.client

            created = await client.post(
                "/api/v1/reservations",
                json=reservation_body(vehicle_id="wheelchair_001"),
                headers=operator,
            )
            assert created.status_code == 201, created.text
            item = created.json()
            reservation_id = item["reservation_id"]
            assert reservation_id.startswith("resv_") and len(reservation_id) == 21
            assert created.headers["Location"] == f"/api/v1/reservations/{reservation_id}"
            assert item["status"] == "pending"
            assert item["vehicle_id"] == "wheelchair_001"
            assert item["created_by"] == "op.tanaka"
            assert item["mission_id"] == "mission_" + reservation_id.removeprefix("resv_")
            assert item["mission_status"] is None
            assert item["pickup"]["waypoint_id"] == "lobby_entrance"

            assert (
                await client.get(f"/api/v1/reservations/{reservation_id}", headers=viewer)
            ).json() == item
            forbidden = await client.post(
                "/api/v1/reservations", json=reservation_body(), headers=viewer
            )
            assert forbidden.status_code == 403
            assert forbidden.json()["error"] == "forbidden"

            # Validation: the contract's flat error shape with field and received value.
            cases: list[tuple[dict[str, Any], int, str, str | None]] = [
                (
                    reservation_body(
                        pickup={"waypoint_id": "a", "latitude": 95.0, "longitude": 1.0}
                    ),
                    400,
                    "invalid_location",
                    "pickup.latitude",
                ),
                (
                    reservation_body(scheduled_time="2025-12-16T10:30:45Z"),
                    400,
                    "invalid_timestamp",
                    "scheduled_time",
                ),
                (
                    reservation_body(scheduled_time=wire(utc_now() - timedelta(hours=1))),
                    400,
                    "invalid_timestamp",
                    "scheduled_time",
                ),
                (reservation_body(seats=2), 400, "validation_error", "seats"),
                (reservation_body(passenger_name=""), 400, "validation_error", "passenger_name"),
                (
                    reservation_body(vehicle_id="wheelchair_404"),
                    404,
                    "unknown_vehicle",
                    "vehicle_id",
                ),
            ]
            for body, status, error, field in cases:
                answer = await client.post("/api/v1/reservations", json=body, headers=operator)
                assert answer.status_code == status, (body, answer.text)
                assert answer.json()["error"] == error, answer.text
                assert answer.json().get("field") == field, answer.text
                assert "timestamp" in answer.json()
            plain_text = {**operator, "Content-Type": "text/plain"}
            wrong_type = await client.post("/api/v1/reservations", content=b"x", headers=plain_text)
            assert wrong_type.status_code == 415

            # PATCH: confirm with another vehicle, then an illegal jump, then bad bodies.
            path = f"/api/v1/reservations/{reservation_id}"
            confirmed = await client.patch(
                path, json={"status": "confirmed", "vehicle_id": "wheelchair_002"}, headers=operator
            )
            assert confirmed.status_code == 200, confirmed.text
            assert (confirmed.json()["status"], confirmed.json()["vehicle_id"]) == (
                "confirmed",
                "wheelchair_002",
            )
            unassigned = await client.patch(path, json={"vehicle_id": None}, headers=operator)
            assert unassigned.json()["vehicle_id"] is None
            later = wire(utc_now() + timedelta(days=1))
            moved = await client.patch(path, json={"scheduled_time": later}, headers=operator)
            assert moved.json()["scheduled_time"] == later

            second = (
                await client.post("/api/v1/reservations", json=reservation_body(), headers=operator)
            ).json()
            jump = await client.patch(
                f"/api/v1/reservations/{second['reservation_id']}",
                json={"status": "completed"},
                headers=operator,
            )
            assert jump.status_code == 400
            assert jump.json()["error"] == "invalid_state_transition"
            assert jump.json()["details"] == {
                "from": "pending",
                "to": "completed",
                "allowed": ["confirmed", "cancelled"],
            }
            for body, error in (
                ({}, "validation_error"),
                ({"status": "done"}, "invalid_enum"),
                ({"status": None}, "validation_error"),
                ({"scheduled_time": "tomorrow"}, "invalid_timestamp"),
            ):
                answer = await client.patch(path, json=body, headers=operator)
                assert answer.status_code == 400, (body, answer.text)
                assert answer.json()["error"] == error, (body, answer.text)
            assert (
                await client.patch(path, json={"status": "cancelled"}, headers=viewer)
            ).status_code == 403
            missing = await client.patch(
                "/api/v1/reservations/resv_0000000000000000",
                json={"status": "cancelled"},
                headers=operator,
            )
            assert missing.status_code == 404 and missing.json()["error"] == "not_found"

            # DELETE cancels and keeps the row; again is harmless; then it is final.
            cancelled = await client.delete(path, headers=operator)
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
            assert (await client.delete(path, headers=operator)).json()["status"] == "cancelled"
            assert (await client.get(path, headers=viewer)).json()["status"] == "cancelled"
            reopened = await client.patch(path, json={"status": "pending"}, headers=operator)
            assert reopened.status_code == 400
            assert reopened.json()["error"] == "invalid_state_transition"
            frozen = await client.patch(path, json={"scheduled_time": later}, headers=operator)
            assert frozen.status_code == 400
            assert (await client.delete(path, headers=viewer)).status_code == 403

            # Lists: filters and keyset paging, soonest first.
            for hours in (5, 3, 4):
                answer = await client.post(
                    "/api/v1/reservations",
                    json=reservation_body(
                        scheduled_time=wire(utc_now() + timedelta(hours=hours)),
                        vehicle_id="wheelchair_001",
                    ),
                    headers=operator,
                )
                assert answer.status_code == 201
            everything = await collect(client, "/api/v1/reservations", viewer, limit=2)
            assert len(everything) == 5
            times = [entry["scheduled_time"] for entry in everything]
            assert times == sorted(times)
            pending_001 = await collect(
                client,
                "/api/v1/reservations",
                viewer,
                status="pending",
                vehicle_id="wheelchair_001",
            )
            assert len(pending_001) == 3
            only_cancelled = await collect(
                client, "/api/v1/reservations", viewer, status="cancelled"
            )
            assert [entry["reservation_id"] for entry in only_cancelled] == [reservation_id]
            bad = await client.get(
                "/api/v1/reservations", params={"status": "gone"}, headers=viewer
            )
            assert bad.status_code == 400 and bad.json()["error"] == "invalid_enum"

            # Every change is in the audit log.
            audit = await client.get("/api/v1/admin/audit", headers=hub.admin_headers)
            actions = [entry["action"] for entry in audit.json()["items"]]
            assert actions.count("reservation_create") == 5
            assert "reservation_update" in actions and "reservation_cancel" in actions


async def collect(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every item of a paged list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        answer = await client.get(path, params=query, headers=headers)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


MISSION_SQL = (
    "INSERT INTO missions (mission_id, vehicle_id, status, priority, pickup, destination,"
    " scheduled_time, created_at, updated_at)"
    " VALUES ($1, $2, $3, 'normal', '{\"waypoint_id\": \"lobby\"}'::jsonb,"
    ' \'{"waypoint_id": "room_201"}\'::jsonb, NULL, $4, $4)'
)


async def test_missions_list_filter_page_and_link_to_reservations(database_url: str) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            await hub.register_vehicle("wheelchair_002")
            operator = bearer(await hub.create_user("op.tanaka", "operator", PASSWORD))
            viewer = bearer(await hub.create_user("viewer.ito", "viewer", PASSWORD))
            booked = (
                await hub.client.post(
                    "/api/v1/reservations", json=reservation_body(), headers=operator
                )
            ).json()
            base = datetime.now(UTC) - timedelta(hours=1)
            missions = [
                ("mission_a1", "wheelchair_001", "completed", base),
                ("mission_a2", "wheelchair_001", "dispatched", base + timedelta(minutes=1)),
                ("mission_b1", "wheelchair_002", "dispatched", base + timedelta(minutes=2)),
                (booked["mission_id"], "wheelchair_002", "accepted", base + timedelta(minutes=3)),
            ]
            for mission_id, vehicle_id, status, created in missions:
                await trio.to_thread.run_sync(
                    db.execute, database_url, MISSION_SQL, mission_id, vehicle_id, status, created
                )

            listed = await collect(hub.client, "/api/v1/missions", viewer, limit=1)
            assert [item["mission_id"] for item in listed] == [
                booked["mission_id"],
                "mission_b1",
                "mission_a2",
                "mission_a1",
            ]
            newest = listed[0]
            assert newest["reservation_id"] == booked["reservation_id"]
            assert newest["pickup"] == {"waypoint_id": "lobby"}
            assert newest["created_at"] == wire(missions[3][3])
            assert listed[1]["reservation_id"] is None

            by_vehicle = await collect(
                hub.client, "/api/v1/missions", viewer, vehicle_id="wheelchair_001"
            )
            assert [item["mission_id"] for item in by_vehicle] == ["mission_a2", "mission_a1"]
            dispatched = await collect(hub.client, "/api/v1/missions", viewer, status="dispatched")
            assert {item["mission_id"] for item in dispatched} == {"mission_a2", "mission_b1"}

            one = await hub.client.get("/api/v1/missions/mission_b1", headers=viewer)
            assert one.status_code == 200 and one.json()["vehicle_id"] == "wheelchair_002"
            missing = await hub.client.get("/api/v1/missions/mission_zz", headers=viewer)
            assert missing.status_code == 404 and missing.json()["error"] == "not_found"
            reservation = await hub.client.get(
                f"/api/v1/reservations/{booked['reservation_id']}", headers=viewer
            )
            assert reservation.json()["mission_status"] == "accepted"

            for params in (
                {"limit": "0"},
                {"status": "DROP TABLE"},
                {"cursor": "!!"},
                {"vehicle_id": "no spaces"},
            ):
                bad = await hub.client.get("/api/v1/missions", params=params, headers=viewer)
                assert bad.status_code == 400, (params, bad.text)
                assert bad.json()["error"] == "validation_error"
            assert (
                await hub.client.get("/api/v1/missions", headers=vehicle.headers)
            ).status_code == 403
            assert (await hub.client.get("/api/v1/missions")).status_code == 401
