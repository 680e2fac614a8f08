"""The vehicle socket (CONTRACT §6.1): who may connect, what a vehicle is told, what it may send.

Each test runs one hub over its own database and talks to it over real sockets: WebSockets with
trio-websocket, REST with httpx. The helpers at the top are shared with the command tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from hub.clock import parse_timestamp
from storage import testing
from tests.integration.harness import (
    TELEMETRY_TABLES,
    RunningHub,
    Vehicle,
    battery_body,
    guarded_hub,
    location_body,
    one_report_of_each_kind,
    status_body,
    timestamp,
)

WIRE_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
VEHICLE = "wheelchair_001"
FRAME_WAIT = 10.0  # no single frame in these tests should take anywhere near this long


# --- helpers (also used by test_commands and the end-to-end tests) ----------------------------


def socket_url(base_url: str, path: str, token: str | None = None) -> str:
    """``ws://host:port<path>`` for an ``http://host:port`` base, with ``?token=`` if given."""
    url = re.sub(r"^http", "ws", base_url.rstrip("/")) + path
    return url if token is None else f"{url}?token={token}"


@asynccontextmanager
async def open_socket(
    base_url: str,
    vehicle_id: str,
    token: str,
    *,
    path: str = "/ws/v1/vehicle",
    in_header: bool = False,
) -> AsyncIterator[WebSocketConnection]:
    """A vehicle socket with the token in ``?token=`` (or the Authorization header)."""
    target = f"{path}/{vehicle_id}"
    if in_header:
        url = socket_url(base_url, target)
        headers = [("Authorization", f"Bearer {token}")]
    else:
        url = socket_url(base_url, target, token)
        headers = None
    async with open_websocket_url(url, extra_headers=headers) as ws:
        yield ws


async def receive(ws: WebSocketConnection, seconds: float = FRAME_WAIT) -> dict[str, Any]:
    """The next frame as JSON (fails the test if none arrives within ``seconds``)."""
    with trio.fail_after(seconds):
        frame = json.loads(await ws.get_message())
    assert isinstance(frame, dict), frame
    return frame


async def send(ws: WebSocketConnection, frame: Any) -> None:
    """Send one JSON frame."""
    await ws.send_message(json.dumps(frame))


async def receive_welcome(ws: WebSocketConnection, vehicle_id: str) -> dict[str, Any]:
    """The first frame, checked to be the welcome for ``vehicle_id``."""
    welcome = await receive(ws)
    assert welcome["type"] == "welcome", welcome
    assert welcome["vehicle_id"] == vehicle_id
    return welcome


@asynccontextmanager
async def welcomed_socket(hub: RunningHub, vehicle: Vehicle) -> AsyncIterator[WebSocketConnection]:
    """``vehicle``'s socket to ``hub``, its welcome frame already received and checked."""
    async with open_socket(hub.base_url, vehicle.vehicle_id, vehicle.token) as ws:
        await receive_welcome(ws, vehicle.vehicle_id)
        yield ws


async def close_code(ws: WebSocketConnection, seconds: float = FRAME_WAIT) -> tuple[int, list[Any]]:
    """Read until the server closes the socket: ``(close code, frames received before it)``."""
    frames: list[Any] = []
    with trio.fail_after(seconds):
        while True:
            try:
                frames.append(json.loads(await ws.get_message()))
            except ConnectionClosed as closed:
                return closed.reason.code, frames


async def expect_refused(base_url: str, vehicle_id: str, token: str, code: int, error: str) -> None:
    """Connecting is refused: one ``error`` frame with ``error``, then close ``code``."""
    async with open_socket(base_url, vehicle_id, token) as ws:
        closed, frames = await close_code(ws)
    assert closed == code, (closed, frames)
    assert len(frames) == 1, frames
    assert frames[0]["type"] == "error"
    assert frames[0]["code"] == error


async def ping_pong(ws: WebSocketConnection) -> dict[str, Any]:
    """Send a ping; the next frame must be its pong (proves nothing else was waiting)."""
    await send(ws, {"type": "ping", "timestamp": timestamp()})
    pong = await receive(ws)
    assert pong["type"] == "pong", pong
    return pong


async def db_fetch(hub: RunningHub, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of a query against the hub's database."""
    assert hub.settings.database_url is not None
    return await trio.to_thread.run_sync(
        partial(testing.fetch, hub.settings.database_url, sql, *args)
    )


def _assert_server_now(text: str) -> None:
    assert WIRE_TIMESTAMP.fullmatch(text), text
    age = datetime.now(UTC) - parse_timestamp(text)
    assert timedelta(seconds=-2) < age < timedelta(seconds=30), text


# --- connecting -----------------------------------------------------------------------------


async def test_welcome_frame_describes_the_session(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        async with open_socket(hub.base_url, "wheelchair_001", vehicle.token) as ws:
            welcome = await receive(ws)
        assert welcome == {
            "type": "welcome",
            "vehicle_id": "wheelchair_001",
            "server_time": welcome["server_time"],
            "protocol_version": "1.0",
            "ping_interval_seconds": 30,
        }
        _assert_server_now(welcome["server_time"])


async def test_token_in_header_and_alias_path_both_connect(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        async with open_socket(hub.base_url, "wheelchair_001", vehicle.token, in_header=True) as ws:
            await receive_welcome(ws, "wheelchair_001")
            await ping_pong(ws)
        async with open_socket(
            hub.base_url, "wheelchair_001", vehicle.token, path="/ws/vehicle"
        ) as ws:
            await receive_welcome(ws, "wheelchair_001")
            await ping_pong(ws)
        async with open_socket(
            hub.base_url, "wheelchair_001", vehicle.token, path="/ws/vehicle", in_header=True
        ) as ws:
            await receive_welcome(ws, "wheelchair_001")


async def test_refused_connections_get_an_error_frame_and_their_close_code(
    database_url: str,
) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle_a = await hub.register_vehicle("wheelchair_001")
        await hub.register_vehicle("wheelchair_002")

        await expect_refused(hub.base_url, "wheelchair_001", "not-a-token", 4001, "auth_failed")
        await expect_refused(hub.base_url, "wheelchair_001", "", 4001, "auth_failed")
        forged_tail = "BBBB" if vehicle_a.token.endswith("AAAA") else "AAAA"
        tampered = vehicle_a.token[:-4] + forged_tail
        await expect_refused(hub.base_url, "wheelchair_001", tampered, 4001, "auth_failed")
        async with open_socket(hub.base_url, "wheelchair_001", "not-a-token", in_header=True) as ws:
            code, frames = await close_code(ws)
        assert code == 4001
        assert frames == [
            {"type": "error", "code": "auth_failed", "message": "Invalid or expired token"}
        ]

        await expect_refused(
            hub.base_url, "wheelchair_999", vehicle_a.token, 4004, "unknown_vehicle"
        )
        await expect_refused(hub.base_url, "wheelchair_002", vehicle_a.token, 4005, "forbidden")

        # None of the refusals left a connection behind: the vehicle still connects cleanly.
        async with open_socket(hub.base_url, "wheelchair_001", vehicle_a.token) as ws:
            await receive_welcome(ws, "wheelchair_001")


async def test_a_second_connection_replaces_the_first(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        async with (
            welcomed_socket(hub, vehicle) as first,
            welcomed_socket(hub, vehicle) as second,
        ):
            code, _ = await close_code(first)
            assert code == 4009
            assert first.closed is not None and first.closed.reason == "replaced"

            await ping_pong(second)
            await send(second, {"type": "location", **location_body()})
            ack = await receive(second)
            assert ack["type"] == "telemetry_ack" and ack["status"] == "ok", ack

            actors = await hub.client.get("/debug/actors", headers=hub.admin_headers)
            [row] = [a for a in actors.json()["actors"] if a["key"] == "wheelchair_001"]
            assert row["connection"] == "connected"


# --- frames ---------------------------------------------------------------------------------


async def test_ping_is_answered_with_pong(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        async with welcomed_socket(hub, vehicle) as ws:
            pong = await ping_pong(ws)
            assert set(pong) == {"type", "timestamp"}
            _assert_server_now(pong["timestamp"])
            # A pong from the vehicle is taken silently.
            await send(ws, {"type": "pong", "timestamp": timestamp()})
            await ping_pong(ws)


async def test_telemetry_frames_are_stored_and_acknowledged(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        bodies = one_report_of_each_kind()
        async with welcomed_socket(hub, vehicle) as ws:
            for kind, body in bodies.items():
                await send(ws, {"type": kind, **body})
                ack = await receive(ws)
                assert ack == {
                    "type": "telemetry_ack",
                    "kind": kind,
                    "timestamp": body["timestamp"],
                    "status": "ok",
                }, (kind, ack)
            for kind, body in bodies.items():
                await send(ws, {"type": kind, **body})
                ack = await receive(ws)
                assert ack["kind"] == kind and ack["status"] == "duplicate", (kind, ack)

        for kind, table in TELEMETRY_TABLES.items():
            rows = await db_fetch(
                hub, f"SELECT * FROM {table} WHERE vehicle_id = $1", "wheelchair_001"
            )
            assert len(rows) == 1, (kind, rows)
        [location] = await db_fetch(
            hub, "SELECT latitude FROM vehicle_locations WHERE vehicle_id = $1", VEHICLE
        )
        assert location["latitude"] == 35.5
        # The REST read shows what came over the socket.
        state = await hub.client.get(
            "/api/v1/vehicle/wheelchair_001/locations", headers=hub.admin_headers
        )
        assert [item["latitude"] for item in state.json()["items"]] == [35.5]


async def test_invalid_telemetry_gets_the_rest_error_code_and_the_socket_stays_open(
    database_url: str,
) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        async with welcomed_socket(hub, vehicle) as ws:
            cases = [
                ({"type": "location", **location_body(latitude=95.123)}, "invalid_location"),
                ({"type": "status", **status_body("flying")}, "invalid_enum"),
                (
                    {"type": "battery", **battery_body(), "timestamp": "yesterday"},
                    "invalid_timestamp",
                ),
                (
                    {"type": "location", **location_body("2020-01-01T00:00:00.000Z")},
                    "invalid_timestamp",
                ),
            ]
            # More than three in a row: invalid telemetry never counts towards 4002.
            for frame, code in cases:
                await send(ws, frame)
                error = await receive(ws)
                assert error["type"] == "error", (frame, error)
                assert error["code"] == code, (frame, error)
                assert error["message"]
            await send(ws, cases[0][0])
            first = await receive(ws)
            assert first["field"] == "location.latitude"
            assert first["received_value"] == 95.123

            await ping_pong(ws)
            good = location_body()
            await send(ws, {"type": "location", **good})
            ack = await receive(ws)
            assert ack["status"] == "ok", ack
        rows = await db_fetch(
            hub, "SELECT latitude FROM vehicle_locations WHERE vehicle_id = $1", VEHICLE
        )
        assert len(rows) == 1


async def test_non_json_gets_an_error_and_three_in_a_row_close_4002(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        async with welcomed_socket(hub, vehicle) as ws:
            # Two bad frames, then a good one: the count starts again.
            for _ in range(2):
                await ws.send_message("{not json")
                error = await receive(ws)
                assert error["type"] == "error" and error["code"] == "invalid_json", error
            await ping_pong(ws)
            # An unknown type is an invalid message too.
            await send(ws, {"type": "teleport"})
            error = await receive(ws)
            assert error["code"] == "invalid_message", error
            await ws.send_message("still not json")
            error = await receive(ws)
            assert error["code"] == "invalid_json", error
            await ws.send_message(b"\xff\xfe")
            code, _ = await close_code(ws)
            assert code == 4002

        # A fresh connection works.
        async with welcomed_socket(hub, vehicle) as ws:
            await ping_pong(ws)


async def test_debug_actors_shows_the_connection_to_admins_only(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        viewer = await hub.create_user("vera", "viewer", "viewer-password-123")
        operator = await hub.create_user("otto", "operator", "operator-password-123")

        async with welcomed_socket(hub, vehicle):
            answer = await hub.client.get("/debug/actors", headers=hub.admin_headers)
            assert answer.status_code == 200, answer.text
            [row] = [
                a
                for a in answer.json()["actors"]
                if a["kind"] == "vehicle" and a["key"] == "wheelchair_001"
            ]
            assert row["connection"] == "connected"
            assert row["running"] is True
            assert row["queue_depth"] == 0

            for token in (viewer, operator, vehicle.token):
                refused = await hub.client.get(
                    "/debug/actors", headers={"Authorization": f"Bearer {token}"}
                )
                assert refused.status_code == 403, refused.text
                assert refused.json()["error"] == "forbidden"
            assert (await hub.client.get("/debug/actors")).status_code == 401

        # Once the vehicle has gone, the actor says so.
        with trio.fail_after(10):
            while True:
                answer = await hub.client.get("/debug/actors", headers=hub.admin_headers)
                [row] = [a for a in answer.json()["actors"] if a["key"] == "wheelchair_001"]
                if row["connection"] == "disconnected":
                    break
                await trio.sleep(0.05)


async def test_a_vehicle_token_cannot_open_the_fleet_socket(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        vehicle = await hub.register_vehicle("wheelchair_001")
        url = hub.base_url.replace("http", "ws") + f"/ws/v1/fleet?token={vehicle.token}"
        async with open_websocket_url(url) as ws:
            closed, frames = await close_code(ws)
        assert closed == 4005, (closed, frames)
        assert [(frame["type"], frame["code"]) for frame in frames] == [("error", "forbidden")]
