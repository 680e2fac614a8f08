"""A fault in one connection ends that connection, never the hub (api.contained_connections).

Before the fix, Hypercorn's trio worker let an exception out of one connection cancel every
other one and stop the server: a WebSocket upgrade request with one byte after it (Hypercorn
issue #225) stopped the hub, its vehicles' sockets and all.
"""

from __future__ import annotations

import logging
import re

import pytest
import trio

from tests.integration.harness import RunningHub, running_hub
from tests.integration.test_vehicle_socket import ping_pong, welcomed_socket

UPGRADE_WITH_TRAILING_BYTE = (
    b"GET /ws/v1/fleet HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bKdPyn3u98cTfZJSh4TNeQ==\r\n\r\nx"
)


async def faults_counted(hub: RunningHub) -> float:
    metrics = (await hub.client.get("/metrics")).text
    found = re.search(r"^connection_faults_total (\S+)$", metrics, re.MULTILINE)
    assert found is not None, metrics[:500]
    return float(found[1])


async def test_a_malformed_upgrade_ends_only_its_own_connection(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(60), caplog.at_level(logging.WARNING, "api.contained_connections"):
        async with running_hub(database_url) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            faults_before = await faults_counted(hub)
            async with welcomed_socket(hub, vehicle) as ws:
                port = int(hub.base_url.rsplit(":", 1)[1])
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                host, client_port = stream.socket.getsockname()[:2]
                client = f"{host}:{client_port}"
                await stream.send_all(UPGRADE_WITH_TRAILING_BYTE)
                with trio.fail_after(10):
                    while await stream.receive_some(4096):
                        pass  # the hub closes this connection
                await stream.aclose()
                await ping_pong(ws)  # the vehicle's socket was not touched
                live = await hub.client.get("/health/live")
                assert live.status_code == 200, live.text
            assert await faults_counted(hub) == faults_before + 1
    [warning] = [r for r in caplog.records if r.name == "api.contained_connections"]
    assert f"the connection from {client} ended" in warning.getMessage()
