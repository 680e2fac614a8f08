"""The real ``tvm-hub serve`` process and its vehicle socket: commands queued for an offline
vehicle survive a restart (CONTRACT §6.3, TVM-WS-CONN-004), and the socket's refusals carry
their close codes (§6.1).

Process control is plain sync code; the socket conversations run in a small ``trio.run``.
Each test uses its own database and data directory.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from storage import testing as db
from tests.e2e.test_cli import STOP_TIMEOUT, hub_environment, serving, wait_until_live
from tests.integration.harness import JWT_SECRET, mission_body
from tests.integration.test_vehicle_socket import (
    close_code,
    expect_refused,
    open_socket,
    ping_pong,
    receive,
    receive_welcome,
    send,
)

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password-for-e2e"
SOCKET_TIMEOUT = 30.0
VEHICLE_ID = "wheelchair_001"

pytestmark = pytest.mark.hang_guard(180)


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return hub_environment(
        database_url,
        tmp_path / "data",
        TVM_ADMIN_USERNAME=ADMIN_USERNAME,
        TVM_ADMIN_PASSWORD=ADMIN_PASSWORD,
        JWT_SECRET=JWT_SECRET,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_token(client: httpx.Client) -> str:
    login = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "password", "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
    )
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


def register_vehicle(client: httpx.Client, admin: str, vehicle_id: str) -> str:
    """Register a vehicle over REST, log it in, return its token."""
    created = client.post(
        "/api/v1/admin/vehicles",
        json={"vehicle_id": vehicle_id, "name": vehicle_id},
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    credentials = created.json()
    login = client.post(
        "/api/v1/auth/token",
        json={
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    )
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM the hub; it must exit 0 in time."""
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve still running {STOP_TIMEOUT} s after SIGTERM:\n{log.read_text()}")
    assert code == 0, log.read_text()


@dataclass
class LiveHub:
    """A ``tvm-hub serve`` process that answers its liveness probe, a client to it, and a
    token of the admin."""

    process: subprocess.Popen[bytes]
    base_url: str
    client: httpx.Client
    admin: str
    log: Path

    def stop(self) -> None:
        """SIGTERM the hub; it must exit 0 in time (see :func:`stop`)."""
        stop(self.process, self.log)

    def register_vehicle(self, vehicle_id: str) -> str:
        """Register a vehicle as the admin, log it in, return its token."""
        return register_vehicle(self.client, self.admin, vehicle_id)

    def queue(self, body: dict[str, Any]) -> str:
        """POST a command for the offline vehicle: 202 queued; returns its id."""
        return queue(self.client, self.admin, body)


@contextmanager
def live_hub(env: dict[str, str], log: Path, *, timeout: float = 30.0) -> Iterator[LiveHub]:
    """``serving(env, log)``, once live, with an httpx client (of ``timeout`` seconds) and the
    admin logged in; the process is killed on the way out if still running."""
    with (
        serving(env, log) as (process, base_url),
        httpx.Client(base_url=base_url, timeout=timeout) as client,
    ):
        wait_until_live(process, base_url, log)
        yield LiveHub(process, base_url, client, admin_token(client), log)


def talk(conversation: Callable[[], Awaitable[Any]]) -> Any:
    """Run a socket conversation in its own trio run, bounded."""

    async def bounded() -> Any:
        with trio.fail_after(SOCKET_TIMEOUT):
            return await conversation()

    return trio.run(bounded)


def queue(client: httpx.Client, admin: str, body: dict[str, Any]) -> str:
    """POST a command for the offline vehicle: 202 queued; returns its id."""
    answer = client.post(f"/api/v1/vehicle/{VEHICLE_ID}/commands", json=body, headers=bearer(admin))
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "queued"
    return str(answer.json()["command_id"])


DISPATCH = {"type": "dispatch", "mission": mission_body("mission_restart")}


def test_queued_commands_survive_a_restart(
    env: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with live_hub(env, first_log) as hub:
        token = hub.register_vehicle(VEHICLE_ID)
        dispatch_id = hub.queue(DISPATCH)
        cancel_id = hub.queue({"type": "cancel", "mission_id": "mission_other", "reason": "moved"})
        hub.stop()

    rows = db.fetch(database_url, "SELECT command_id, status FROM commands ORDER BY created_at")
    assert [(row["command_id"], row["status"]) for row in rows] == [
        (dispatch_id, "queued"),
        (cancel_id, "queued"),
    ]

    with live_hub(env, second_log) as hub:

        async def vehicle_comes_back() -> list[dict[str, Any]]:
            # The token from before the restart still opens the socket.
            async with open_socket(hub.base_url, VEHICLE_ID, token) as ws:
                await receive_welcome(ws, VEHICLE_ID)
                frames = [await receive(ws), await receive(ws)]
                for frame in frames:
                    await send(
                        ws,
                        {
                            "type": "command_ack",
                            "command_id": frame["command_id"],
                            "status": "accepted",
                        },
                    )
                await ping_pong(ws)  # nothing else was queued
                return frames

        frames = talk(vehicle_comes_back)
        assert [(f["type"], f["command_id"]) for f in frames] == [
            ("dispatch", dispatch_id),
            ("cancel", cancel_id),
        ]
        assert frames[0]["mission"]["mission_id"] == "mission_restart"
        assert "vehicle_id" not in frames[0]

        for command_id in (dispatch_id, cancel_id):
            assert wait_for_status(hub.client, hub.admin, command_id, "accepted") == "accepted"
        hub.stop()


def test_a_queued_emergency_stop_is_delivered_first_after_a_restart(
    env: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with live_hub(env, first_log) as hub:
        token = hub.register_vehicle(VEHICLE_ID)
        dispatch_id = hub.queue(DISPATCH)
        stop_id = hub.queue({"type": "emergency_stop", "reason": "fire_alarm"})
        # An emergency stop is answered before its row is written; let the write land first
        # (a SIGTERM in that gap loses the stop — see the report of these tests).
        wait_for_rows(database_url, 2)
        hub.stop()

    with serving(env, second_log) as (process, base_url):
        wait_until_live(process, base_url, second_log)

        async def vehicle_comes_back() -> list[dict[str, Any]]:
            async with open_socket(base_url, VEHICLE_ID, token) as ws:
                # (Welcome before any command is asserted by the other restart test and by
                # tests/integration/test_commands.py; here only the commands' order matters.)
                frames = [await receive(ws) for _ in range(3)]
                await ping_pong(ws)
                return [frame for frame in frames if frame["type"] != "welcome"]

        commands = talk(vehicle_comes_back)
        assert [(f["type"], f["command_id"]) for f in commands] == [
            ("emergency_stop", stop_id),
            ("dispatch", dispatch_id),
        ]
        assert commands[0]["reason"] == "fire_alarm"
        stop(process, second_log)


def wait_for_rows(database_url: str, count: int) -> None:
    """Wait (≤ 10 s) until ``count`` commands are stored."""
    deadline = time.monotonic() + 10
    while db.fetchval(database_url, "SELECT count(*) FROM commands") < count:
        assert time.monotonic() < deadline, "commands were not stored in time"
        time.sleep(0.05)


def wait_for_status(client: httpx.Client, admin: str, command_id: str, status: str) -> str:
    """Poll GET /api/v1/commands/{id} until it shows ``status`` (or 10 s pass); the last seen."""
    deadline = time.monotonic() + 10
    current = ""
    while time.monotonic() < deadline:
        answer = client.get(f"/api/v1/commands/{command_id}", headers=bearer(admin))
        assert answer.status_code == 200, answer.text
        current = answer.json()["status"]
        if current == status:
            break
        time.sleep(0.05)
    return current


def test_the_socket_refusals_and_replacement_close_codes(
    env: dict[str, str], tmp_path: Path
) -> None:
    with live_hub(env, tmp_path / "serve.log") as hub:
        base_url = hub.base_url
        token = hub.register_vehicle(VEHICLE_ID)
        hub.register_vehicle("wheelchair_002")

        async def conversations() -> None:
            await expect_refused(base_url, VEHICLE_ID, "not-a-token", 4001, "auth_failed")
            await expect_refused(base_url, "wheelchair_404", token, 4004, "unknown_vehicle")
            await expect_refused(base_url, "wheelchair_002", token, 4005, "forbidden")
            async with open_socket(base_url, VEHICLE_ID, token) as first:
                await receive_welcome(first, VEHICLE_ID)
                async with open_socket(
                    base_url, VEHICLE_ID, token, path="/ws/vehicle", in_header=True
                ) as second:
                    await receive_welcome(second, VEHICLE_ID)
                    code, _ = await close_code(first)
                    assert code == 4009
                    await ping_pong(second)

        talk(conversations)
        hub.stop()
