"""The first path a vehicle integrator walks: register, log in, report, read it back."""

from __future__ import annotations

import trio

from tests.integration.harness import location_body, running_hub


async def test_registered_vehicle_reports_location_and_admin_reads_it(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            body = location_body(latitude=35.5)
            answer = await hub.post(vehicle, "location", body)
            assert answer.status_code == 200
            assert answer.json()["status"] == "ok"
            assert "X-Request-ID" in answer.headers

            history = await hub.client.get(
                "/api/v1/vehicle/wheelchair_001/locations", headers=hub.admin_headers
            )
            assert history.status_code == 200
            [item] = history.json()["items"]
            assert item["latitude"] == 35.5
            assert item["timestamp"] == body["timestamp"]
