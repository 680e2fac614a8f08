"""What the live hub answers matches what ``/openapi.json`` promises (TVM-INT-002).

One hub, one scenario that calls every operation the way an integrator would (a vehicle
that reports and acknowledges on its socket, an operator, an admin), and every answer —
successes and refusals — is validated against the schema, headers and status the hub's own
document publishes for it. A test at the end proves no operation was left out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

from tests.integration.harness import (
    RunningHub,
    Vehicle,
    battery_body,
    docking_body,
    error_body,
    guarded_hub,
    location_body,
    status_body,
    timestamp,
)
from tests.integration.test_vehicle_socket import receive, send, welcomed_socket
from tests.published_schemas import answer_errors

VEHICLE_ID = "wheelchair_001"
ACKS = {"emergency_stop": "executed", "configure": "applied"}


class Checker:
    """Validates answers against the document and remembers which (operation, status) it saw."""

    def __init__(self, hub: RunningHub, document: dict[str, Any]) -> None:
        self.hub = hub
        self.document = document
        self.seen: set[tuple[str, str, int]] = set()

    async def call(
        self,
        method: str,
        template: str,
        expected: int,
        *,
        path: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **request: Any,
    ) -> httpx.Response:
        """Send the request, check it got ``expected`` and that the answer is as documented."""
        url = template.format(**(path or {}))
        answer = await self.hub.client.request(method, url, headers=headers, **request)
        assert answer.status_code == expected, (method, url, answer.status_code, answer.text)
        content_type = answer.headers.get("content-type", "")
        body: Any = answer.json() if content_type.startswith("application/json") else answer.text
        problems = answer_errors(
            self.document, method, template, expected, body, dict(answer.headers)
        )
        assert problems == [], (method, url, expected, problems, body)
        self.seen.add((method.lower(), template, expected))
        return answer


@asynccontextmanager
async def obedient_vehicle(hub: RunningHub, vehicle: Vehicle) -> AsyncIterator[None]:
    """The vehicle on its socket, acknowledging every command it is sent."""
    async with welcomed_socket(hub, vehicle) as ws:

        async def answer_commands() -> None:
            while True:
                frame = await receive(ws, seconds=3600)
                if "command_id" in frame and frame["type"] != "command_ack":
                    status = ACKS.get(frame["type"], "accepted")
                    ack = {"type": "command_ack", "command_id": frame["command_id"]}
                    await send(ws, {**ack, "status": status})

        async with trio.open_nursery() as vehicle_nursery:
            vehicle_nursery.start_soon(answer_commands)
            yield
            vehicle_nursery.cancel_scope.cancel()


async def test_every_answer_of_every_operation_is_as_documented(database_url: str) -> None:
    async with guarded_hub(database_url, command_ack_timeout=1.0, guard=110) as hub:
        document = (await hub.client.get("/openapi.json")).json()
        check = Checker(hub, document)
        vehicle = await hub.register_vehicle(VEHICLE_ID)
        operator = await hub.create_user("op.tanaka", "operator", "operator-password-1")
        viewer = await hub.create_user("viewer.sato", "viewer", "viewer-password-12")
        await telemetry(check, vehicle)
        await reads(check, hub, vehicle)
        await alerts(check, hub)
        await commands(check, hub, vehicle, operator)
        await missions_and_reservations(check, hub)
        await administration(check, hub, vehicle)
        await logins(check, vehicle)
        await operations(check, hub)
        await refusals(check, hub, vehicle, viewer)

        documented = {
            (method, path, int(status))
            for path, item in document["paths"].items()
            for method, operation in item.items()
            for status in operation["responses"]
            if status.startswith("2")
        }
        assert documented - check.seen == set(), sorted(documented - check.seen)


async def telemetry(check: Checker, vehicle: Vehicle) -> None:
    path = {"vehicle_id": vehicle.vehicle_id}
    bodies = {
        "location": location_body(timestamp(-5)),
        "status": status_body("navigating", timestamp(-4)),
        "battery": battery_body(soc=25.0, ts=timestamp(-3)),
        "error": error_body("critical", "SAFE_COLLISION_DETECTED", timestamp(-2)),
        "docking": docking_body("approaching", timestamp(-1)),
    }
    for kind, body in bodies.items():
        await check.call(
            "POST",
            f"/api/v1/vehicle/{{vehicle_id}}/{kind}",
            200,
            path=path,
            json=body,
            headers=vehicle.headers,
        )
    duplicate = await check.call(
        "POST",
        "/api/v1/vehicle/{vehicle_id}/location",
        200,
        path=path,
        json=bodies["location"],
        headers=vehicle.headers,
    )
    assert duplicate.json()["duplicate"] is True
    bulk = {
        "vehicle_id": vehicle.vehicle_id,
        "offline_period": {"start": timestamp(-600), "end": timestamp(-60)},
        "messages": [
            {"type": "location", "timestamp": timestamp(-500), "data": location_body()["location"]},
            {
                "type": "status",
                "timestamp": timestamp(-400),
                "data": _without_timestamp(status_body("idle")),
            },
            {
                "type": "error",
                "timestamp": timestamp(-300),
                "data": _without_timestamp(error_body("error")),
            },
        ],
    }
    await check.call(
        "POST",
        "/api/v1/vehicle/{vehicle_id}/bulk",
        200,
        path=path,
        json=bulk,
        headers=vehicle.headers,
    )


def _without_timestamp(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "timestamp"}


async def reads(check: Checker, hub: RunningHub, vehicle: Vehicle) -> None:
    path = {"vehicle_id": vehicle.vehicle_id}
    admin = hub.admin_headers
    fleet = await check.call("GET", "/api/v1/vehicles", 200, headers=admin)
    assert [v["vehicle_id"] for v in fleet.json()["vehicles"]] == [VEHICLE_ID]
    one = await check.call("GET", "/api/v1/vehicle/{vehicle_id}", 200, path=path, headers=admin)
    assert one.json()["docking_phase"] == "approaching"
    for segment in ("locations", "status", "battery", "errors", "docking"):
        page = await check.call(
            "GET",
            f"/api/v1/vehicle/{{vehicle_id}}/{segment}",
            200,
            path=path,
            headers=admin,
            params={"limit": 1, "from": timestamp(-3600), "to": timestamp(5)},
        )
        assert len(page.json()["items"]) == 1, segment
    await check.call(
        "GET", "/api/v1/vehicle/{vehicle_id}/battery/health", 200, path=path, headers=admin
    )


async def alerts(check: Checker, hub: RunningHub) -> None:
    admin = hub.admin_headers
    listed = await check.call(
        "GET",
        "/api/v1/alerts",
        200,
        headers=admin,
        params={"open": "true", "severity": "critical", "vehicle_id": VEHICLE_ID, "limit": 5},
    )
    alert_id = listed.json()["items"][0]["alert_id"]
    await check.call(
        "POST", "/api/v1/alerts/{alert_id}/ack", 200, path={"alert_id": alert_id}, headers=admin
    )


async def commands(check: Checker, hub: RunningHub, vehicle: Vehicle, operator: str) -> None:
    path = {"vehicle_id": vehicle.vehicle_id}
    headers = {"Authorization": f"Bearer {operator}"}
    queued = await check.call(
        "POST",
        "/api/v1/vehicle/{vehicle_id}/commands",
        202,
        path=path,
        headers=headers,
        json={"type": "configure", "config_updates": {"audio_volume": 40}},
    )
    assert queued.json()["status"] == "queued"
    async with obedient_vehicle(hub, vehicle):
        sent = await check.call(
            "POST",
            "/api/v1/vehicle/{vehicle_id}/commands",
            200,
            path=path,
            headers=headers,
            json={
                "type": "dispatch",
                "command_id": "cmd_docs_1",
                "mission": {
                    "mission_id": "mission_docs1",
                    "pickup": {
                        "waypoint_id": "a",
                        "latitude": 35.6,
                        "longitude": 139.7,
                        "action": "dock_wheelchair",
                    },
                    "destination": {
                        "waypoint_id": "b",
                        "latitude": 35.7,
                        "longitude": 139.8,
                        "action": "park",
                    },
                },
            },
        )
        assert sent.json()["status"] == "accepted"
        stop = await check.call(
            "POST",
            "/api/v1/fleet/emergency_stop",
            200,
            headers=headers,
            json={"reason": "drill", "vehicle_ids": [VEHICLE_ID, "wheelchair_404"]},
        )
        assert {r["status"] for r in stop.json()["results"]} == {"executed", "failed"}
    await check.call(
        "GET",
        "/api/v1/vehicle/{vehicle_id}/commands",
        200,
        path=path,
        headers=hub.admin_headers,
        params={"limit": 10},
    )
    await check.call(
        "GET",
        "/api/v1/commands/{command_id}",
        200,
        path={"command_id": "cmd_docs_1"},
        headers=hub.admin_headers,
    )


async def missions_and_reservations(check: Checker, hub: RunningHub) -> None:
    admin = hub.admin_headers
    await check.call(
        "GET", "/api/v1/missions", 200, headers=admin, params={"vehicle_id": VEHICLE_ID}
    )
    await check.call(
        "GET",
        "/api/v1/missions/{mission_id}",
        200,
        path={"mission_id": "mission_docs1"},
        headers=admin,
    )
    place = {"waypoint_id": "lobby", "latitude": 35.68, "longitude": 139.76}
    booked = await check.call(
        "POST",
        "/api/v1/reservations",
        201,
        headers=admin,
        json={
            "passenger_name": "Hanako Sato",
            "pickup": place,
            "destination": place,
            "scheduled_time": timestamp(3600),
            "vehicle_id": VEHICLE_ID,
        },
    )
    reservation = {"reservation_id": booked.json()["reservation_id"]}
    assert booked.headers["Location"].endswith(reservation["reservation_id"])
    await check.call(
        "GET",
        "/api/v1/reservations",
        200,
        headers=admin,
        params={"status": "pending", "from": timestamp(), "to": timestamp(7200)},
    )
    await check.call(
        "GET", "/api/v1/reservations/{reservation_id}", 200, path=reservation, headers=admin
    )
    await check.call(
        "PATCH",
        "/api/v1/reservations/{reservation_id}",
        200,
        path=reservation,
        headers=admin,
        json={"status": "confirmed", "vehicle_id": None},
    )
    cancelled = await check.call(
        "DELETE", "/api/v1/reservations/{reservation_id}", 200, path=reservation, headers=admin
    )
    assert cancelled.json()["status"] == "cancelled"


async def administration(check: Checker, hub: RunningHub, vehicle: Vehicle) -> None:
    admin = hub.admin_headers
    await check.call(
        "POST",
        "/api/v1/admin/vehicles",
        201,
        headers=admin,
        json={"vehicle_id": "wheelchair_002", "name": "Spare"},
    )
    await check.call(
        "POST",
        "/api/v1/admin/vehicles/{vehicle_id}/rotate-secret",
        200,
        path={"vehicle_id": "wheelchair_002"},
        headers=admin,
    )
    await check.call(
        "DELETE",
        "/api/v1/admin/vehicles/{vehicle_id}",
        200,
        path={"vehicle_id": "wheelchair_002"},
        headers=admin,
    )
    await check.call(
        "POST",
        "/api/v1/admin/vehicles/{vehicle_id}/enable",
        200,
        path={"vehicle_id": "wheelchair_002"},
        headers=admin,
    )
    await check.call(
        "POST",
        "/api/v1/admin/users",
        201,
        headers=admin,
        json={"username": "ad.min2", "password": "a long passphrase", "role": "admin"},
    )
    page = await check.call("GET", "/api/v1/admin/audit", 200, headers=admin, params={"limit": 2})
    await check.call(
        "GET",
        "/api/v1/admin/audit",
        200,
        headers=admin,
        params={"limit": 2, "cursor": page.json()["next_cursor"]},
    )


async def logins(check: Checker, vehicle: Vehicle) -> None:
    login = await check.call(
        "POST",
        "/api/v1/auth/token",
        200,
        json={"client_id": vehicle.client_id, "client_secret": vehicle.client_secret},
    )
    await check.call(
        "POST",
        "/api/v1/auth/refresh",
        200,
        json={"refresh_token": login.json()["refresh_token"]},
    )
    await check.call(
        "POST",
        "/api/v1/auth/token",
        401,
        json={"client_id": vehicle.client_id, "client_secret": "wrong"},
    )


async def operations(check: Checker, hub: RunningHub) -> None:
    for probe in ("/health", "/health/live", "/health/ready", "/metrics"):
        await check.call("GET", probe, 200)
    await check.call("GET", "/debug/actors", 200, headers=hub.admin_headers)
    options = await hub.client.options("/api/v1/reservations")
    assert options.status_code == 204
    assert options.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    assert "content-type" not in options.headers and options.content == b""


async def refusals(check: Checker, hub: RunningHub, vehicle: Vehicle, viewer: str) -> None:
    """One answer of each documented error status, validated like the successes."""
    path = {"vehicle_id": vehicle.vehicle_id}
    viewer_headers = {"Authorization": f"Bearer {viewer}"}
    location = "/api/v1/vehicle/{vehicle_id}/location"
    await check.call(
        "POST",
        location,
        400,
        path=path,
        headers={**vehicle.headers, "Content-Type": "application/json"},
        content=b"{not json",
    )
    stale = await check.call(
        "POST",
        location,
        400,
        path=path,
        headers=vehicle.headers,
        json=location_body(timestamp(-3600)),
    )
    assert stale.json()["error"] == "invalid_timestamp"
    await check.call("POST", location, 401, path=path, json=location_body())
    await check.call("POST", location, 403, path=path, json=location_body(), headers=viewer_headers)
    await check.call(
        "POST",
        location,
        415,
        path=path,
        headers={**vehicle.headers, "Content-Type": "text/plain"},
        content=b"{}",
    )
    await check.call(
        "POST",
        location,
        413,
        path=path,
        headers={**vehicle.headers, "Content-Type": "application/json"},
        content=b" " * (1024 * 1024 + 1),
    )
    await check.call(
        "GET",
        "/api/v1/vehicle/{vehicle_id}",
        404,
        path={"vehicle_id": "wheelchair_404"},
        headers=hub.admin_headers,
    )
    await check.call("GET", "/api/v1/alerts", 400, headers=hub.admin_headers, params={"limit": 0})
    await check.call("GET", "/api/v1/admin/audit", 403, headers=viewer_headers)
    await check.call(
        "POST",
        "/api/v1/vehicle/{vehicle_id}/commands",
        409,
        path=path,
        headers=hub.admin_headers,
        json={"type": "resume", "command_id": "cmd_docs_1"},
    )


# --- examples -------------------------------------------------------------------------------

EXAMPLE_ORDER = (
    "create_vehicle",
    "create_user",
    "issue_token",
    "refresh_token",
    "post_location",
    "post_status",
    "post_battery",
    "post_error",
    "post_docking",
    "post_bulk",
    "post_command",
    "fleet_emergency_stop",
    "create_reservation",
    "update_reservation",
)
"""Operations with a request body, in an order in which each example can succeed."""

CREDENTIAL_PLACEHOLDERS = {"issue_token", "refresh_token"}
"""Examples holding made-up credentials (a vehicle's secret, a refresh token): the hub must
read them (no 400) and refuse them. The password example logs in the person the user
example created."""


def request_examples(document: dict[str, Any]) -> dict[str, tuple[str, str, list[Any]]]:
    """operationId → (method, path, every example body it documents)."""
    found: dict[str, tuple[str, str, list[Any]]] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            media = body["content"]["application/json"]
            examples = [named["value"] for named in (media.get("examples") or {}).values()]
            if not examples:
                schema = media["schema"]
                examples = list(schema.get("examples", []))
            found[operation["operationId"]] = (method, path, examples)
    return found


def path_values(document: dict[str, Any], method: str, path: str) -> dict[str, str]:
    """Each path parameter's documented example."""
    parameters = document["paths"][path][method].get("parameters", [])
    return {p["name"]: p["example"] for p in parameters if p["in"] == "path"}


async def test_the_request_examples_are_accepted_by_the_live_hub(database_url: str) -> None:
    """What Swagger's "Try it out" sends, in order, is accepted (no 400 for a stale time)."""
    async with guarded_hub(database_url, command_ack_timeout=1.0, guard=110) as hub:
        document = (await hub.client.get("/openapi.json")).json()
        examples = request_examples(document)
        assert set(examples) == set(EXAMPLE_ORDER)
        await hub.register_vehicle("wheelchair_002")
        vehicle: Vehicle | None = None
        reservation_id = ""
        for handler in EXAMPLE_ORDER:
            method, path, bodies = examples[handler]
            assert bodies, handler
            values = path_values(document, method, path)
            if "reservation_id" in values:
                values["reservation_id"] = reservation_id
            headers = hub.admin_headers
            if handler.startswith("post_") and handler != "post_command":
                assert vehicle is not None
                headers = vehicle.headers
            for body in bodies:
                if handler == "post_command":
                    assert vehicle is not None
                    async with obedient_vehicle(hub, vehicle):
                        answer = await hub.client.post(
                            path.format(**values), json=body, headers=headers
                        )
                else:
                    answer = await hub.client.request(
                        method, path.format(**values), json=body, headers=headers
                    )
                placeholder = handler == "refresh_token" or "client_id" in body
                if handler in CREDENTIAL_PLACEHOLDERS and placeholder:
                    assert answer.status_code == 401, (handler, answer.text)
                else:
                    assert answer.status_code in (200, 201), (handler, body, answer.text)
                if handler == "create_vehicle":
                    credentials = answer.json()
                    login = await hub.login(
                        client_id=credentials["client_id"],
                        client_secret=credentials["client_secret"],
                    )
                    vehicle = Vehicle(
                        credentials["vehicle_id"],
                        credentials["client_id"],
                        credentials["client_secret"],
                        login.json()["access_token"],
                    )
                if handler == "create_reservation":
                    reservation_id = answer.json()["reservation_id"]


async def test_a_rate_limited_answer_is_as_documented(database_url: str) -> None:
    """429 with ``retry_after`` and the limit headers, for telemetry and for logins."""
    async with guarded_hub(database_url, rate_limit_enabled=True) as hub:
        document = (await hub.client.get("/openapi.json")).json()
        check = Checker(hub, document)
        vehicle = await hub.register_vehicle(VEHICLE_ID)
        path = {"vehicle_id": VEHICLE_ID}
        template = "/api/v1/vehicle/{vehicle_id}/battery"
        statuses = []
        for offset in range(4):  # battery: burst 2, then one per 5 s
            answer = await hub.client.post(
                template.format(**path),
                json=battery_body(ts=timestamp(-10 + offset)),
                headers=vehicle.headers,
            )
            statuses.append(answer.status_code)
        assert statuses[:2] == [200, 200] and 429 in statuses, statuses
        limited = await check.call(
            "POST",
            template,
            429,
            path=path,
            json=battery_body(ts=timestamp()),
            headers=vehicle.headers,
        )
        assert int(limited.headers["Retry-After"]) == limited.json()["retry_after"] >= 1
        login = {"client_id": "veh_nobody", "client_secret": "wrong"}
        for _ in range(10):
            refused = await hub.client.post("/api/v1/auth/token", json=login)
            assert refused.status_code == 401
        await check.call("POST", "/api/v1/auth/token", 429, json=login)
