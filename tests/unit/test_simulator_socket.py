"""The vehicle socket against a real trio-websocket server on port 0 (real sockets, real clock,
tiny backoff): URL and token, pong, command acks, reconnect, close codes, clean close."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from hub.contract.ws import welcome
from hub.simulator.hub_api import HubRefusedError
from hub.simulator.stats import SimStats
from hub.simulator.vehicle_socket import VehicleSocket, socket_url

TIMEOUT = 10.0


def ack_for(frame: dict[str, Any]) -> dict[str, Any]:
    return {"type": "command_ack", "command_id": frame["command_id"], "status": "executed"}


async def a_token() -> str:
    return "tok/+="


def vehicle_socket(port: int, stats: SimStats) -> VehicleSocket:
    return VehicleSocket(
        f"http://127.0.0.1:{port}",
        "sim_001",
        token=a_token,
        on_command=ack_for,
        stats=stats,
        rng=random.Random(1),
        backoff_first=0.01,
    )


def test_the_socket_url_carries_the_vehicle_and_the_escaped_token() -> None:
    assert (
        socket_url("https://hub.example:8443/base/", "sim_001", "a+b/c=")
        == "wss://hub.example:8443/base/ws/v1/vehicle/sim_001?token=a%2Bb%2Fc%3D"
    )
    assert (
        socket_url("http://127.0.0.1:8000", "v", "t")
        == "ws://127.0.0.1:8000/ws/v1/vehicle/v?token=t"
    )


async def test_pong_acks_reconnect_then_a_stop_code() -> None:
    seen: list[Any] = []
    connections = 0

    async def hub(request: WebSocketRequest) -> None:
        nonlocal connections
        connections += 1
        seen.append(request.path)
        connection = await request.accept()
        await connection.send_message(
            json.dumps(welcome("sim_001", "2025-12-16T10:00:00.000Z", 30))
        )
        if connections == 1:
            await connection.send_message(
                json.dumps({"type": "ping", "timestamp": "2025-12-16T10:00:00.000Z"})
            )
            seen.append(json.loads(await connection.get_message()))
            await connection.send_message(json.dumps({"type": "resume", "command_id": "cmd_1"}))
            seen.append(json.loads(await connection.get_message()))
            await connection.aclose(1011, "hub restarting")
        else:
            await connection.aclose(4005, "forbidden")

    stats = SimStats()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, hub, "127.0.0.1", 0, None)
        socket = vehicle_socket(server.port, stats)
        with trio.fail_after(TIMEOUT), pytest.raises(HubRefusedError, match="4005"):
            await socket.run()
        nursery.cancel_scope.cancel()
    assert seen[0] == "/ws/v1/vehicle/sim_001?token=tok%2F%2B%3D"
    assert seen[1]["type"] == "pong" and isinstance(seen[1]["timestamp"], str)
    assert seen[2] == {"type": "command_ack", "command_id": "cmd_1", "status": "executed"}
    assert connections == 2 and stats.socket_connects == 2
    assert stats.commands_received == 1 and stats.commands_acked == 1
    assert socket.last_close_code == 4005 and not socket.connected


async def test_close_says_1000_and_run_returns() -> None:
    codes: list[int] = []
    opened = trio.Event()
    seen_close = trio.Event()

    async def hub(request: WebSocketRequest) -> None:
        connection = await request.accept()
        await connection.get_message()  # the queued ack: the vehicle side is fully up
        opened.set()
        try:
            await connection.get_message()
        except ConnectionClosed as exc:
            assert exc.reason is not None
            codes.append(exc.reason.code)
            seen_close.set()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, hub, "127.0.0.1", 0, None)
        socket = vehicle_socket(server.port, SimStats())
        socket.queue_ack({"type": "command_ack", "command_id": "cmd_1", "status": "executed"})
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as client:
                client.start_soon(socket.run)
                await opened.wait()
                await socket.close()
            await seen_close.wait()
        nursery.cancel_scope.cancel()
    assert codes == [1000]


async def test_an_ack_queued_before_connecting_is_sent_once_connected() -> None:
    got: list[dict[str, Any]] = []
    done = trio.Event()

    async def hub(request: WebSocketRequest) -> None:
        connection = await request.accept()
        got.append(json.loads(await connection.get_message()))
        done.set()
        await connection.aclose(4004)

    stats = SimStats()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, hub, "127.0.0.1", 0, None)
        socket = vehicle_socket(server.port, stats)
        socket.queue_ack({"type": "command_ack", "command_id": "cmd_9", "status": "executed"})
        with trio.fail_after(TIMEOUT), pytest.raises(HubRefusedError):
            await socket.run()
        nursery.cancel_scope.cancel()
    assert got == [{"type": "command_ack", "command_id": "cmd_9", "status": "executed"}]
    assert socket.pending_acks == 0
