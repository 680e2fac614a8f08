"""The lean path for live telemetry answers exactly as Quart's routes do.

The same requests go to a hub with the fast path and to one without it (Quart's route for
the same endpoint); status, body (but for its timestamps and ids) and headers must agree.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio

from tests.integration.harness import (
    RunningHub,
    Timeline,
    battery_body,
    error_body,
    location_body,
    running_hub,
    status_body,
)

VOLATILE = {"timestamp", "received_at", "request_id", "alert_id"}
COMPARED_HEADERS = (
    "content-type",
    "www-authenticate",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "access-control-allow-origin",
    "access-control-expose-headers",
)


def comparable(answer: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    body = answer.json()
    if isinstance(body, dict):
        body = {key: value for key, value in body.items() if key not in VOLATILE}
        if "details" in body and isinstance(body["details"], dict):
            body["details"] = {k: v for k, v in body["details"].items() if k != "server_time"}
    headers = {name: answer.headers[name] for name in COMPARED_HEADERS if name in answer.headers}
    assert answer.headers["x-request-id"]
    return answer.status_code, body, headers


async def requests_of(hub: RunningHub, other_token: str, now: Timeline) -> list[Any]:
    vehicle = await hub.register_vehicle("wheelchair_001")
    ts = now()
    url = "/api/v1/vehicle/wheelchair_001"
    origin = {"Origin": "https://ops.example"}
    cases: list[tuple[str, dict[str, str], bytes]] = [
        ("location", vehicle.headers, json.dumps(location_body(ts)).encode()),
        ("location", vehicle.headers, json.dumps(location_body(ts)).encode()),  # duplicate
        ("location", {**vehicle.headers, **origin}, json.dumps(location_body(now())).encode()),
        ("location", {}, json.dumps(location_body(now())).encode()),
        ("location", {"Authorization": "Bearer forged"}, b"{}"),
        ("location", {"Authorization": f"Bearer {other_token}"}, b"{}"),
        ("location", {"Authorization": f"Bearer {hub.admin_token}"}, b"{}"),
        ("location", vehicle.headers, b"{not json"),
        ("location", vehicle.headers, json.dumps(location_body(now(), latitude=95)).encode()),
        ("status", vehicle.headers, json.dumps(status_body("navigating", now())).encode()),
        ("status", vehicle.headers, json.dumps(status_body("charging", now())).encode()),
        ("status", vehicle.headers, json.dumps(status_body("docking", now())).encode()),
        ("battery", vehicle.headers, json.dumps(battery_body(12.0, ts=now())).encode()),
        ("error", vehicle.headers, json.dumps(error_body("critical", ts=now())).encode()),
        ("error", vehicle.headers, json.dumps({**error_body(), "description": "\x00"}).encode()),
        ("docking", vehicle.headers, b'{"timestamp": "2020-01-01T00:00:00.000Z"}'),
    ]
    answers = []
    for kind, headers, content in cases:
        answer = await hub.client.post(
            f"{url}/{kind}",
            content=content,
            headers={"Content-Type": "application/json", **headers},
        )
        answers.append(comparable(answer))
    wrong_type = await hub.client.post(
        f"{url}/location", content=b"x", headers={**vehicle.headers, "Content-Type": "text/plain"}
    )
    answers.append(comparable(wrong_type))
    too_large = await hub.client.post(
        f"{url}/location",
        content=b" " * (1024 * 1024 + 1),
        headers={**vehicle.headers, "Content-Type": "application/json"},
    )
    answers.append(comparable(too_large))
    ghost = await hub.client.post(
        "/api/v1/vehicle/ghost_1/location",
        json=location_body(now()),
        headers={"Authorization": f"Bearer {other_token}"},
    )
    answers.append(comparable(ghost))
    return answers


async def answers_with(database_url: str, *, fast: bool) -> list[Any]:
    async with running_hub(
        database_url, fast_telemetry=fast, cors_origins=("https://ops.example",)
    ) as hub:
        other = await hub.register_vehicle("wheelchair_999")
        return await requests_of(hub, other.token, Timeline())


async def test_the_fast_path_answers_like_the_quart_routes(
    database_url: str, second_database_url: str
) -> None:
    with trio.fail_after(120):
        fast = await answers_with(database_url, fast=True)
        quart = await answers_with(second_database_url, fast=False)
    assert len(fast) == len(quart)
    for index, (ours, reference) in enumerate(zip(fast, quart, strict=True)):
        assert ours == reference, index
