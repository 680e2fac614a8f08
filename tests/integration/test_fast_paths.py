"""The lean paths (live telemetry, the command POST) answer exactly as Quart's routes do.

The same requests go to a hub with the lean paths and to one without them (Quart's route for
the same endpoint); status, body (but for its timestamps and ids) and headers must agree, and
what the vehicle receives and the hub stores must too.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import trio

from tests.integration.harness import (
    ADMIN_USERNAME,
    RunningHub,
    Timeline,
    battery_body,
    error_body,
    location_body,
    running_hub,
    status_body,
    until,
)
from tests.integration.test_vehicle_socket import receive, welcomed_socket

VOLATILE = {"timestamp", "received_at", "request_id", "alert_id", "command_id", "ack"}
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
    unstorable_query = await hub.client.post(
        f"{url}/location?note=%00",
        json=location_body(now()),
        headers=vehicle.headers,
    )
    answers.append(comparable(unstorable_query))
    ghost = await hub.client.post(
        "/api/v1/vehicle/ghost_1/location",
        json=location_body(now()),
        headers={"Authorization": f"Bearer {other_token}"},
    )
    answers.append(comparable(ghost))
    return answers


Requests = Callable[[RunningHub, str, Timeline], Awaitable[list[Any]]]


async def answers_with(database_url: str, requests: Requests, *, fast: bool) -> list[Any]:
    async with running_hub(
        database_url, fast_paths=fast, cors_origins=("https://ops.example",)
    ) as hub:
        other = await hub.register_vehicle("wheelchair_999")
        return await requests(hub, other.token, Timeline())


async def same_answers(database_url: str, second_database_url: str, requests: Requests) -> None:
    with trio.fail_after(120):
        fast = await answers_with(database_url, requests, fast=True)
        quart = await answers_with(second_database_url, requests, fast=False)
    assert len(fast) == len(quart)
    for index, (ours, reference) in enumerate(zip(fast, quart, strict=True)):
        assert ours == reference, index


async def test_the_telemetry_fast_path_answers_like_the_quart_routes(
    database_url: str, second_database_url: str
) -> None:
    await same_answers(database_url, second_database_url, requests_of)


async def command_requests(hub: RunningHub, other_token: str, now: Timeline) -> list[Any]:
    vehicle = await hub.register_vehicle("wheelchair_001")
    viewer = await hub.create_user("vera", "viewer", "viewer-password-123")
    url = "/api/v1/vehicle/wheelchair_001/commands"
    admin = hub.admin_headers
    json_type = {"Content-Type": "application/json"}
    stop = {"type": "emergency_stop", "reason": "obstacle_detected"}
    configure = {"type": "configure", "config_updates": {"max_speed": 0.5}}
    cases: list[tuple[str, str, dict[str, str], bytes]] = [
        (url, "", {**admin, "Origin": "https://ops.example"}, json.dumps(configure).encode()),
        (url, "wait=false", admin, json.dumps({**configure, "command_id": "cmd_twice"}).encode()),
        (url, "wait=false", admin, json.dumps({**configure, "command_id": "cmd_twice"}).encode()),
        (url, "wait=maybe", admin, json.dumps(configure).encode()),
        (url, "wait=false", {}, json.dumps(stop).encode()),
        (url, "wait=false", {"Authorization": "Bearer forged"}, json.dumps(stop).encode()),
        (url, "wait=false", {"Authorization": f"Bearer {other_token}"}, b"{}"),
        (url, "wait=false", {"Authorization": f"Bearer {viewer}"}, json.dumps(stop).encode()),
        (url, "wait=false&note=%00", admin, json.dumps(stop).encode()),
        (url, "wait=false", admin, b"{not json"),
        (url, "wait=false", admin, json.dumps({"type": "self_destruct"}).encode()),
        (url, "wait=false", admin, json.dumps({**stop, "vehicle_id": "wheelchair_999"}).encode()),
        (url, "wait=false", admin, json.dumps({"type": "resume"}).encode()),
        (url.replace("001", "404"), "wait=false", admin, json.dumps(stop).encode()),
    ]
    answers: list[Any] = []
    for target, query, headers, content in cases:
        answer = await hub.client.post(
            f"{target}?{query}" if query else target,
            content=content,
            headers={**json_type, **headers},
        )
        answers.append(comparable(answer))
    wrong_type = await hub.client.post(
        url, content=b"x", headers={**admin, "Content-Type": "text/plain"}
    )
    answers.append(comparable(wrong_type))
    too_large = await hub.client.post(
        url, content=b" " * (1024 * 1024 + 1), headers={**admin, **json_type}
    )
    answers.append(comparable(too_large))
    async with welcomed_socket(hub, vehicle) as ws:
        answer = await hub.client.post(
            f"{url}?wait=false", json={**stop, "message": "hold"}, headers=admin
        )
        answers.append(comparable(answer))
        frames = [await receive(ws)]
        while frames[-1]["type"] != "emergency_stop":
            frames.append(await receive(ws))
        answers.append([{k: v for k, v in f.items() if k not in VOLATILE} for f in frames])
    stored = await hub.client.get(url, headers=admin)
    answers.append([(item["type"], item["sender"]) for item in stored.json()["items"]])
    return answers


async def test_the_command_fast_path_answers_like_the_quart_route(
    database_url: str, second_database_url: str
) -> None:
    await same_answers(database_url, second_database_url, command_requests)


async def test_a_command_whose_client_hangs_up_while_waiting_still_settles(
    database_url: str,
) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url, command_ack_timeout=1.0) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            url = "/api/v1/vehicle/wheelchair_001/commands"
            body = {"type": "configure", "config_updates": {"max_speed": 0.5}}
            async with welcomed_socket(hub, vehicle) as ws:
                async with httpx.AsyncClient(base_url=hub.base_url, timeout=0.3) as impatient:
                    try:
                        await impatient.post(url, json=body, headers=hub.admin_headers)
                    except httpx.TimeoutException:
                        pass
                    else:
                        raise AssertionError("the hub answered before the vehicle did")
                frame = await receive(ws)
                assert frame["type"] == "configure", frame
                await ws.send_message(
                    json.dumps(
                        {
                            "type": "command_ack",
                            "command_id": frame["command_id"],
                            "status": "applied",
                        }
                    )
                )
                stored = await until(
                    lambda: hub.client.get(
                        f"/api/v1/commands/{frame['command_id']}", headers=hub.admin_headers
                    ),
                    lambda answer: answer.json()["status"] == "applied",
                    what="the command stored as applied",
                )
            assert stored.json()["sender"] == ADMIN_USERNAME
            again = await hub.client.post(url, json=body, headers=hub.admin_headers)
            assert again.status_code == 202, again.text  # the hub still answers; vehicle away
