"""The real ``tvm-hub serve`` process with frontends watching: fan-out to two sessions, the
dispatch round trip from a frontend socket to the vehicle and back, subscriptions dying with
the connection, and replay after a reconnect (CONTRACT §6.2, §6.3).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.e2e.test_cli import hub_environment
from tests.e2e.test_restart_queue import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    bearer,
    live_hub,
    talk,
)
from tests.integration.harness import JWT_SECRET, location_body
from tests.integration.test_vehicle_socket import receive, receive_welcome, send, socket_url

pytestmark = pytest.mark.hang_guard(180)
HTTPX_DEFAULT_TIMEOUT = 5.0  # seconds: these tests talk to the hub with httpx's default


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return hub_environment(
        database_url,
        tmp_path / "data",
        TVM_ADMIN_USERNAME=ADMIN_USERNAME,
        TVM_ADMIN_PASSWORD=ADMIN_PASSWORD,
        JWT_SECRET=JWT_SECRET,
    )


def open_socket(base_url: str, path: str, token: str) -> Any:
    """A socket on ``path`` with the token in ``?token=``."""
    return open_websocket_url(socket_url(base_url, path, token))


async def next_of(ws: WebSocketConnection, frame_type: str) -> dict[str, Any]:
    """The next frame of a type, skipping pings and other traffic."""
    while True:
        frame = await receive(ws)
        if frame.get("type") == frame_type:
            return frame


async def subscribe(
    ws: WebSocketConnection, vehicle_ids: list[str], **extra: Any
) -> dict[str, Any]:
    await send(ws, {"type": "subscribe", "vehicle_ids": vehicle_ids, **extra})
    return await next_of(ws, "subscribed")


def test_two_sessions_see_the_same_location_and_only_their_vehicles(
    env: dict[str, str], tmp_path: Path
) -> None:
    with live_hub(env, tmp_path / "serve.log", timeout=HTTPX_DEFAULT_TIMEOUT) as hub:
        base_url, admin = hub.base_url, hub.admin
        first = hub.register_vehicle("wheelchair_001")
        hub.register_vehicle("wheelchair_002")

        async def conversation() -> None:
            async with (
                open_socket(base_url, "/ws/v1/fleet", admin) as watching_all,
                open_socket(base_url, "/ws/v1/fleet", admin) as watching_one,
                open_socket(base_url, "/ws/v1/fleet", admin) as watching_other,
            ):
                everything = await subscribe(watching_all, ["*"])
                assert {v["vehicle_id"] for v in everything["snapshot"]} == {
                    "wheelchair_001",
                    "wheelchair_002",
                }
                await subscribe(watching_one, ["wheelchair_001"])
                await subscribe(watching_other, ["wheelchair_002"])
                body = location_body(latitude=35.5)
                async with httpx.AsyncClient(base_url=base_url) as vehicle_client:
                    answer = await vehicle_client.post(
                        "/api/v1/vehicle/wheelchair_001/location", json=body, headers=bearer(first)
                    )
                assert answer.status_code == 200
                seen = [
                    await next_of(watching_all, "location_update"),
                    await next_of(watching_one, "location_update"),
                ]
                for event in seen:
                    assert event["vehicle_id"] == "wheelchair_001"
                    assert event["timestamp"] == body["timestamp"]
                    assert event["location"]["latitude"] == 35.5
                assert seen[0]["seq"] == seen[1]["seq"]
                with trio.move_on_after(1.0):
                    unexpected = await next_of(watching_other, "location_update")
                    pytest.fail(f"a session watching wheelchair_002 got {unexpected}")

        talk(conversation)
        hub.stop()


def test_a_dispatch_from_a_frontend_reaches_the_vehicle_and_its_ack_comes_back(
    env: dict[str, str], tmp_path: Path
) -> None:
    with live_hub(env, tmp_path / "serve.log", timeout=HTTPX_DEFAULT_TIMEOUT) as hub:
        base_url, client, admin = hub.base_url, hub.client, hub.admin
        vehicle_token = hub.register_vehicle("wheelchair_001")

        async def conversation() -> dict[str, Any]:
            async with (
                open_socket(base_url, "/ws/v1/vehicle/wheelchair_001", vehicle_token) as vehicle,
                open_socket(base_url, "/ws/v1/fleet", admin) as operator,
            ):
                await receive_welcome(vehicle, "wheelchair_001")
                await subscribe(operator, ["wheelchair_001"])
                await send(
                    operator,
                    {
                        "type": "dispatch",
                        "vehicle_id": "wheelchair_001",
                        "command_id": "cmd_e2e_dispatch",
                        "priority": "high",
                        "mission": {
                            "mission_id": "mission_e2e",
                            "pickup": {
                                "waypoint_id": "lobby",
                                "latitude": 35.6811,
                                "longitude": 139.767,
                                "action": "dock_wheelchair",
                            },
                            "destination": {
                                "waypoint_id": "room_201",
                                "latitude": 35.6824,
                                "longitude": 139.7682,
                                "action": "undock_wheelchair",
                            },
                        },
                    },
                )
                command = await next_of(vehicle, "dispatch")
                assert command["command_id"] == "cmd_e2e_dispatch"
                assert "vehicle_id" not in command
                await send(
                    vehicle,
                    {"type": "command_ack", "command_id": "cmd_e2e_dispatch", "status": "accepted"},
                )
                while True:
                    status = await next_of(operator, "command_status")
                    if status["status"] == "accepted":
                        return status

        status = talk(conversation)
        assert status["command_id"] == "cmd_e2e_dispatch"
        assert status["ack"]["status"] == "accepted"
        # The socket hears the status as soon as the ack arrives; the row follows a moment
        # later (REST waiters, unlike socket watchers, are answered after the write).
        deadline = time.monotonic() + 5
        while True:
            stored = client.get("/api/v1/commands/cmd_e2e_dispatch", headers=bearer(admin))
            if stored.json()["status"] == "accepted" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert stored.json()["status"] == "accepted"
        hub.stop()


def test_a_reconnecting_frontend_gets_what_it_missed_replayed(
    env: dict[str, str], tmp_path: Path
) -> None:
    with live_hub(env, tmp_path / "serve.log", timeout=HTTPX_DEFAULT_TIMEOUT) as hub:
        base_url, client, admin = hub.base_url, hub.client, hub.admin
        vehicle = hub.register_vehicle("wheelchair_001")

        async def conversation() -> None:
            async with open_socket(base_url, "/ws/v1/fleet", admin) as first_visit:
                await subscribe(first_visit, ["wheelchair_001"])
                body = location_body(latitude=35.1)
                await trio.to_thread.run_sync(
                    lambda: client.post(
                        "/api/v1/vehicle/wheelchair_001/location",
                        json=body,
                        headers=bearer(vehicle),
                    )
                )
                last_seen = (await next_of(first_visit, "location_update"))["seq"]
            missed = location_body(latitude=35.2)
            answer = await trio.to_thread.run_sync(
                lambda: client.post(
                    "/api/v1/vehicle/wheelchair_001/location", json=missed, headers=bearer(vehicle)
                )
            )
            assert answer.status_code == 200
            async with open_socket(base_url, "/ws/v1/fleet", admin) as second_visit:
                again = await subscribe(
                    second_visit, ["wheelchair_001"], since={"wheelchair_001": last_seen}
                )
                assert again["replayed"] == {"wheelchair_001": True}
                replayed = await next_of(second_visit, "location_update")
                assert replayed["seq"] == last_seen + 1
                assert replayed["location"]["latitude"] == 35.2

        talk(conversation)
        hub.stop()
