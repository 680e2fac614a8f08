"""What operators read (CONTRACT §8): the fleet, one vehicle, and paged history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import trio

from hub.clock import format_timestamp, utc_now
from tests.integration.harness import (
    RunningHub,
    Timeline,
    battery_body,
    docking_body,
    error_body,
    location_body,
    running_hub,
    status_body,
)

SUMMARY_KEYS = {
    "vehicle_id",
    "name",
    "connected",
    "last_seen",
    "state",
    "mission_id",
    "location",
    "battery",
    "open_alerts",
}
HISTORY = {
    "locations": "location",
    "status": "status",
    "battery": "battery",
    "errors": "error",
    "docking": "docking",
}


async def get(hub: RunningHub, path: str, **params: Any) -> Any:
    return await hub.client.get(path, params=params, headers=hub.admin_headers)


async def test_fleet_lists_every_vehicle_with_its_latest_state(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            busy = await hub.register_vehicle("wheelchair_001", name="Ward 3 chair")
            quiet = await hub.register_vehicle("wheelchair_002")
            await hub.register_vehicle("wheelchair_003", name="Never reported")
            now = Timeline()

            reports = [
                (busy, "location", location_body(now(), latitude=35.1)),
                (busy, "status", status_body("idle", now())),
                (busy, "battery", battery_body(70.0, ts=now())),
                (busy, "status", status_body("navigating", now(), mission_id="mission_42")),
                (busy, "error", error_body("critical", ts=now())),
                (busy, "error", error_body("warning", ts=now())),
                (busy, "location", location_body(now(), latitude=35.2, speed=1.1)),
                (busy, "battery", battery_body(64.5, ts=now())),
                (quiet, "location", location_body(now(), latitude=-33.9)),
            ]
            last_location, last_battery = reports[6][2], reports[7][2]
            for vehicle, kind, body in reports:
                answer = await hub.post(vehicle, kind, body)
                assert answer.status_code == 200, (kind, answer.text)

            answer = await get(hub, "/api/v1/vehicles")
            assert answer.status_code == 200, answer.text
            fleet = {v["vehicle_id"]: v for v in answer.json()["vehicles"]}
            assert set(fleet) == {"wheelchair_001", "wheelchair_002", "wheelchair_003"}
            for summary in fleet.values():
                assert set(summary) >= SUMMARY_KEYS, summary
                assert summary["connected"] is False  # none has a socket open

            first = fleet["wheelchair_001"]
            assert first["name"] == "Ward 3 chair"
            assert first["state"] == "navigating"
            assert first["mission_id"] == "mission_42"
            assert first["location"] == last_location["location"]
            assert first["battery"] == last_battery["battery"]
            assert first["open_alerts"] == 1
            assert first["last_seen"] is not None
            last_seen = datetime.fromisoformat(first["last_seen"])
            assert abs(utc_now() - last_seen) < timedelta(seconds=30)
            assert first["last_seen"].endswith("Z") and len(first["last_seen"]) == 24

            second = fleet["wheelchair_002"]
            assert second["location"]["latitude"] == -33.9
            assert second["state"] is None
            assert second["battery"] is None

            never = fleet["wheelchair_003"]
            assert never["name"] == "Never reported"
            assert (never["state"], never["location"], never["battery"]) == (None, None, None)
            assert never["last_seen"] is None
            assert never["open_alerts"] == 0

            for vehicle_id, summary in fleet.items():
                one = await get(hub, f"/api/v1/vehicle/{vehicle_id}")
                assert one.status_code == 200, one.text
                assert one.json() == summary

            unknown = await get(hub, "/api/v1/vehicle/wheelchair_999")
            assert unknown.status_code == 404
            assert unknown.json()["error"] == "unknown_vehicle"

            # Reading is for people: a vehicle token is refused.
            refused = await hub.client.get("/api/v1/vehicles", headers=busy.headers)
            assert refused.status_code == 403


async def test_history_of_each_kind_is_newest_first(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            now = Timeline()
            sent: dict[str, list[dict[str, Any]]] = {path: [] for path in HISTORY}
            reports = [
                ("locations", [location_body(now(), latitude=35.0 + i) for i in range(3)]),
                ("status", [status_body(s, now()) for s in ("idle", "navigating", "docking")]),
                ("battery", [battery_body(90.0 - i, ts=now()) for i in range(3)]),
                (
                    "errors",
                    [
                        error_body(code=c, ts=now())
                        for c in ("NAV_OBSTACLE_BLOCKED", "NAV_PATH_NOT_FOUND", "FOO_BAR")
                    ],
                ),
                (
                    "docking",
                    [
                        docking_body(p, now())
                        for p in ("approaching", "marker_detection", "success")
                    ],
                ),
            ]
            for path, bodies in reports:
                for body in bodies:
                    answer = await hub.post(vehicle, HISTORY[path], body)
                    assert answer.status_code == 200, answer.text
                    sent[path].append(body)

            for path, bodies in sent.items():
                answer = await get(hub, f"/api/v1/vehicle/wheelchair_001/{path}")
                assert answer.status_code == 200, (path, answer.text)
                page = answer.json()
                assert page["next_cursor"] is None
                items = page["items"]
                assert [item["timestamp"] for item in items] == [
                    body["timestamp"] for body in reversed(bodies)
                ], path

            def newest(path: str) -> dict[str, Any]:
                return sent[path][-1]

            items = {
                path: (await get(hub, f"/api/v1/vehicle/wheelchair_001/{path}")).json()["items"]
                for path in HISTORY
            }
            assert items["locations"][0]["latitude"] == 37.0
            assert items["status"][0]["state"] == "docking"
            assert items["status"][0]["mission_id"] == newest("status")["mission_id"]
            assert items["battery"][0]["soc_percent"] == 88.0
            assert items["errors"][0]["error_code"] == "FOO_BAR"
            assert items["errors"][2]["error_code"] == "NAV_OBSTACLE_BLOCKED"
            assert items["docking"][0]["phase"] == "success"
            assert items["docking"][0]["docking_success"] is True


async def test_keyset_pages_cover_every_record_once(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            start = utc_now() - timedelta(minutes=30)
            stamps = [format_timestamp(start + timedelta(seconds=10 * i)) for i in range(25)]
            upload = {
                "messages": [
                    {
                        "type": "location",
                        "timestamp": ts,
                        "data": {
                            "latitude": 35.0 + i / 100,
                            "longitude": 139.0,
                            "heading": 0,
                            "speed": 0,
                            "accuracy": 0.1,
                        },
                    }
                    for i, ts in enumerate(stamps)
                ]
            }
            answer = await hub.post(vehicle, "bulk", upload)
            assert answer.json()["inserted"] == 25, answer.text
            newest_first = list(reversed(stamps))

            seen: list[str] = []
            sizes = []
            cursor = None
            for _ in range(10):
                params: dict[str, Any] = {"limit": 10}
                if cursor is not None:
                    params["cursor"] = cursor
                page = (await get(hub, "/api/v1/vehicle/wheelchair_001/locations", **params)).json()
                sizes.append(len(page["items"]))
                seen.extend(item["timestamp"] for item in page["items"])
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert sizes == [10, 10, 5]
            assert seen == newest_first

            # Exactly one page's worth: no dangling cursor to an empty page.
            exact = (await get(hub, "/api/v1/vehicle/wheelchair_001/locations", limit=25)).json()
            assert len(exact["items"]) == 25 and exact["next_cursor"] is None

            # from/to are inclusive bounds on the record timestamp.
            window = await get(
                hub,
                "/api/v1/vehicle/wheelchair_001/locations",
                **{"from": stamps[5], "to": stamps[14]},
            )
            assert [i["timestamp"] for i in window.json()["items"]] == newest_first[10:20]
            since = await get(
                hub, "/api/v1/vehicle/wheelchair_001/locations", **{"from": stamps[20]}
            )
            assert [i["timestamp"] for i in since.json()["items"]] == newest_first[:5]
            until = await get(hub, "/api/v1/vehicle/wheelchair_001/locations", **{"to": stamps[2]})
            assert [i["timestamp"] for i in until.json()["items"]] == newest_first[22:]

            # Paging inside a window.
            first = (
                await get(
                    hub,
                    "/api/v1/vehicle/wheelchair_001/locations",
                    limit=4,
                    **{"from": stamps[5], "to": stamps[14]},
                )
            ).json()
            second = (
                await get(
                    hub,
                    "/api/v1/vehicle/wheelchair_001/locations",
                    limit=4,
                    cursor=first["next_cursor"],
                    **{"from": stamps[5], "to": stamps[14]},
                )
            ).json()
            third = (
                await get(
                    hub,
                    "/api/v1/vehicle/wheelchair_001/locations",
                    limit=4,
                    cursor=second["next_cursor"],
                    **{"from": stamps[5], "to": stamps[14]},
                )
            ).json()
            paged = [i["timestamp"] for p in (first, second, third) for i in p["items"]]
            assert paged == newest_first[10:20]
            assert third["next_cursor"] is None


async def test_bad_history_queries_are_refused(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            await hub.post(vehicle, "location", location_body())
            path = "/api/v1/vehicle/wheelchair_001/locations"

            for limit in ("0", "10001", "-5", "ten", "1.5"):
                answer = await get(hub, path, limit=limit)
                assert answer.status_code == 400, (limit, answer.text)
                assert answer.json()["error"] == "validation_error"
                assert answer.json()["field"] == "limit"
                assert answer.json()["received_value"] == limit
            for limit in ("1", "10000"):
                assert (await get(hub, path, limit=limit)).status_code == 200, limit

            for cursor in ("not-a-cursor", "!!!", "MjAyNQ"):
                answer = await get(hub, path, cursor=cursor)
                assert answer.status_code == 400, (cursor, answer.text)
                assert answer.json()["field"] == "cursor"

            for name in ("from", "to"):
                answer = await get(hub, path, **{name: "yesterday"})
                assert answer.status_code == 400, answer.text
                assert answer.json()["error"] == "invalid_timestamp"
                assert answer.json()["field"] == name

            unknown_kind = await get(hub, "/api/v1/vehicle/wheelchair_001/telemetry")
            assert unknown_kind.status_code == 404
            unknown_vehicle = await get(hub, "/api/v1/vehicle/wheelchair_999/locations")
            assert unknown_vehicle.status_code == 404
            assert unknown_vehicle.json()["error"] == "unknown_vehicle"
