"""Inputs a hostile (or broken) client sends, answered with the contract's errors — never a
500, never a 503, never a lost safety report, never a body that is not strict JSON.

Each test here failed before its fix: a critical report with U+0000 in its description was a
500 and stored nowhere, a NUL in a username a 500 with a trace, ``latitude: 1e400`` came back
as ``Infinity``, a 1 MB description was echoed back in full.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio
from trio_websocket import open_websocket_url

from tests.integration.harness import (
    RunningHub,
    Timeline,
    count,
    error_body,
    location_body,
    running_hub,
    status_body,
)

NUL = "\u0000"


def strict_json(answer: httpx.Response) -> Any:
    """The body as strict JSON: NaN and Infinity make this fail."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in a response body: {answer.text[:200]}")

    return json.loads(answer.text, parse_constant=refuse)


def assert_refused(answer: httpx.Response, field: str, code: str = "validation_error") -> Any:
    assert answer.status_code == 400, answer.text
    body = strict_json(answer)
    assert (body["error"], body["field"]) == (code, field), body
    return body


async def test_a_critical_report_with_nul_is_refused_with_its_field_and_stores_nothing(
    database_url: str,
) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            body = {**error_body("critical", "SAFE_COLLISION_DETECTED")}
            body["description"] = f"Collision{NUL}detected"
            assert_refused(await hub.post(vehicle, "error", body), "description")
            body = {**error_body("critical", "SAFE_COLLISION_DETECTED"), "recovery_action": NUL}
            assert_refused(await hub.post(vehicle, "error", body), "recovery_action")
            assert await count(hub, "vehicle_errors", "wheelchair_001") == 0
            assert await count(hub, "alerts", "wheelchair_001") == 0
            # The same report without the NUL is stored and raises its alert.
            clean = error_body("critical", "SAFE_COLLISION_DETECTED")
            answer = await hub.post(vehicle, "error", clean)
            assert answer.status_code == 200, answer.text
            assert answer.json()["alert_id"] is not None


async def test_nul_and_lone_surrogates_are_refused_in_every_kind_of_body(
    database_url: str,
) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            now = Timeline()
            waypoint = status_body("idle", now(), current_waypoint=f"room{NUL}201")
            assert_refused(await hub.post(vehicle, "status", waypoint), "current_waypoint")
            surrogate = {**error_body(ts=now()), "description": "broken \ud800 pair"}
            raw = json.dumps(surrogate)  # ensure_ascii: the lone surrogate goes out as \ud800
            answer = await hub.client.post(
                "/api/v1/vehicle/wheelchair_001/error",
                content=raw,
                headers={**vehicle.headers, "Content-Type": "application/json"},
            )
            assert answer.status_code == 400, answer.text
            assert strict_json(answer)["error"] in ("validation_error", "invalid_json")
            bulk = {
                "messages": [
                    {"type": "location", "timestamp": now(), "data": location_body()["location"]},
                    {
                        "type": "error",
                        "timestamp": now(),
                        "data": {**error_body(), "description": NUL},
                    },
                ]
            }
            for message in bulk["messages"]:
                message["data"].pop("timestamp", None)
            refusal = assert_refused(
                await hub.post(vehicle, "bulk", bulk), "messages[1].data.description"
            )
            assert refusal["details"]["index"] == 1
            assert await count(hub, "vehicle_locations", "wheelchair_001") == 0

            created = await hub.client.post(
                "/api/v1/admin/vehicles",
                json={"vehicle_id": "wheelchair_002", "name": f"Lobby{NUL}chair"},
                headers=hub.admin_headers,
            )
            assert_refused(created, "name")
            reservation = await hub.client.post(
                "/api/v1/reservations",
                json={
                    "passenger_name": f"A{NUL}",
                    "pickup": {"waypoint_id": "lobby"},
                    "destination": {"waypoint_id": "room_201"},
                    "scheduled_time": now(),
                },
                headers=hub.admin_headers,
            )
            assert reservation.status_code == 400, reservation.text


async def test_a_login_with_nul_is_a_plain_400_without_a_trace(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            for body, field in (
                (
                    {"grant_type": "password", "username": f"ad{NUL}min", "password": "x"},
                    "username",
                ),
                ({"client_id": f"veh_{NUL}", "client_secret": "secret"}, "client_id"),
                ({"grant_type": "password", "username": "admin", "password": NUL}, "password"),
            ):
                answer = await hub.login(**body)
                refusal = assert_refused(answer, field)
                assert "received_value" not in refusal or field != "password"
                assert "Traceback" not in answer.text


async def test_query_and_path_parameters_with_nul_are_refused(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            for path, field in (
                ("/api/v1/commands/cmd_1%00x", "command_id"),
                ("/api/v1/admin/audit?cursor=%00", "cursor"),
                ("/api/v1/alerts?vehicle_id=a%00b", "vehicle_id"),
                ("/api/v1/missions/mission_%00", "mission_id"),
            ):
                answer = await hub.client.get(path, headers=hub.admin_headers)
                assert_refused(answer, field)


async def test_an_emergency_stop_with_nul_is_cleaned_sent_and_audited(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_001")
            answer = await hub.client.post(
                "/api/v1/vehicle/wheelchair_001/commands?wait=false",
                json={"type": "emergency_stop", "reason": f"fire{NUL}alarm", "message": NUL},
                headers=hub.admin_headers,
            )
            assert answer.status_code in (200, 202), answer.text
            command_id = answer.json()["command_id"]
            stored = await _until_stored(hub, command_id)
            assert stored["payload"]["reason"] == "fire\ufffdalarm"
            assert stored["payload"]["message"] == "\ufffd"
            audit = await hub.client.get("/api/v1/admin/audit", headers=hub.admin_headers)
            actions = [item["action"] for item in audit.json()["items"]]
            assert "emergency_stop" in actions

            fleet = await hub.client.post(
                "/api/v1/fleet/emergency_stop",
                json={"reason": f"evacuate{NUL}", "vehicle_ids": ["*"]},
                headers=hub.admin_headers,
            )
            assert fleet.status_code == 200, fleet.text
            [result] = fleet.json()["results"]
            assert result["status"] == "queued"


async def test_a_cancel_with_nul_is_a_400_and_the_hub_stays_healthy(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_001")
            answer = await hub.client.post(
                "/api/v1/vehicle/wheelchair_001/commands",
                json={"type": "cancel", "mission_id": "mission_1", "reason": f"x{NUL}"},
                headers=hub.admin_headers,
            )
            assert_refused(answer, "reason")
            health = await hub.client.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            queued = await hub.client.post(
                "/api/v1/vehicle/wheelchair_001/commands",
                json={"type": "cancel", "mission_id": "mission_1", "reason": "user_requested"},
                headers=hub.admin_headers,
            )
            assert queued.status_code == 202, queued.text


async def test_answers_are_strict_json_and_echo_little(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            raw = json.dumps(location_body()).replace("35.681236", "1e400")
            answer = await hub.client.post(
                "/api/v1/vehicle/wheelchair_001/location",
                content=raw,
                headers={**vehicle.headers, "Content-Type": "application/json"},
            )
            refusal = assert_refused(answer, "location.latitude", "invalid_location")
            assert refusal["received_value"] == "Infinity"

            huge = {**error_body(), "description": "y" * 900_000}
            answer = await hub.post(vehicle, "error", huge)
            refusal = assert_refused(answer, "description")
            assert len(answer.content) < 2_000, len(answer.content)
            assert len(refusal["received_value"]) <= 201

            unknown_key = {**location_body(), "k" * 100_000: 1}
            answer = await hub.post(vehicle, "location", unknown_key)
            assert answer.status_code == 400
            assert len(answer.content) < 4_000, len(answer.content)


async def test_a_huge_subscribe_is_refused_in_a_small_frame(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            url = hub.base_url.replace("http", "ws") + f"/ws/v1/fleet?token={hub.admin_token}"
            async with open_websocket_url(url) as ws:
                ids = [f"wheelchair_{index:05d}" for index in range(10_000)]
                await ws.send_message(json.dumps({"type": "subscribe", "vehicle_ids": ids}))
                frame = await ws.get_message()
                assert len(frame) < 2_000, len(frame)
                error = json.loads(frame)
                assert (error["type"], error["code"]) == ("error", "validation_error")
                assert error["field"] == "vehicle_ids"


async def _until_stored(hub: RunningHub, command_id: str) -> dict[str, Any]:
    while True:
        answer = await hub.client.get(f"/api/v1/commands/{command_id}", headers=hub.admin_headers)
        if answer.status_code == 200:
            return dict(answer.json())
        await trio.sleep(0.05)
