"""Edges the API fuzz run found: methods a path does not serve, cursors out of range,
parameters that are neither true nor false, empty filters."""

from __future__ import annotations

import base64
import json

import trio

from tests.integration.harness import running_hub


def cursor_of(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


async def test_a_telemetry_path_serves_only_post(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_001")
            for kind in ("location", "error", "bulk"):
                answer = await hub.client.get(
                    f"/api/v1/vehicle/wheelchair_001/{kind}", headers=hub.admin_headers
                )
                assert answer.status_code == 405, answer.text
                assert answer.headers["Allow"] == "OPTIONS, POST"
            history = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001/locations", headers=hub.admin_headers
            )
            assert history.status_code == 200
            options = await hub.client.options("/api/v1/vehicle/wheelchair_001/location")
            assert options.status_code == 204
            assert options.headers["Allow"] == "OPTIONS, POST"
            status = await hub.client.options("/api/v1/vehicle/wheelchair_001/status")
            assert status.headers["Allow"] == "GET, HEAD, OPTIONS, POST"


async def test_cursors_and_flags_are_checked(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            await hub.register_vehicle("wheelchair_001")
            for cursor in (cursor_of(10**25), cursor_of(-(2**63)), "²", cursor_of(True)):
                answer = await hub.client.get(
                    "/api/v1/admin/audit", params={"cursor": cursor}, headers=hub.admin_headers
                )
                assert answer.status_code == 400, (cursor, answer.text)
                assert answer.json()["field"] == "cursor"
            fine = await hub.client.get(
                "/api/v1/admin/audit", params={"cursor": cursor_of(5)}, headers=hub.admin_headers
            )
            assert fine.status_code == 200
            banana = await hub.client.post(
                "/api/v1/vehicle/wheelchair_001/commands?wait=banana",
                json={"type": "resume"},
                headers=hub.admin_headers,
            )
            assert banana.status_code == 400
            assert banana.json()["field"] == "wait"
            for path in (
                "/api/v1/missions?vehicle_id=&status=",
                "/api/v1/reservations?vehicle_id=&status=",
                "/api/v1/alerts?vehicle_id=&severity=&open=",
            ):
                answer = await hub.client.get(path, headers=hub.admin_headers)
                assert answer.status_code == 200, (path, answer.text)
