"""A simulated vehicle's I/O against an in-memory hub, on trio's MockClock: REST, 429s, tokens,
the vehicle socket (pong, command acks, close codes), offline spells and the bulk upload."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import trio
import trio.testing

from hub.clock import parse_timestamp
from hub.contract.command_acks import CommandAck
from hub.contract.validation import validate_model
from hub.contract.ws import PongFrame
from hub.simulator.client import SimulatedVehicle
from hub.simulator.fake_hub import FakeConnection, FakeHub, FakeSockets
from hub.simulator.hub_api import Credentials, HubApi
from hub.simulator.reports import telemetry
from hub.simulator.stats import SimStats
from hub.simulator.testing import TrioWallClock, dispatch_frame, make_model
from tests.unit.waiting import waiting_for

HANG_GUARD = 3600.0  # virtual seconds: the autojump clock gets there only if a test is stuck
FRAME_WAIT = HANG_GUARD / 2  # virtual seconds frame_with waits before it says what it saw
URL = "http://hub.test"


@dataclass
class Rig:
    hub: FakeHub
    sockets: FakeSockets
    api: HubApi
    stats: SimStats


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Rig:
    hub = FakeHub(TrioWallClock())
    sockets = FakeSockets(hub)
    monkeypatch.setattr(
        "hub.simulator.vehicle_socket.open_websocket_url", sockets.open_websocket_url
    )
    stats = SimStats()
    http = httpx.AsyncClient(base_url=URL, transport=hub.transport())
    return Rig(hub, sockets, HubApi(http, stats), stats)


def new_vehicle(rig: Rig) -> SimulatedVehicle:
    model = make_model(clock=TrioWallClock())  # timestamps follow virtual time
    return SimulatedVehicle(model, api=rig.api, base_url=URL, stats=rig.stats, rng=random.Random(3))


@asynccontextmanager
async def running(rig: Rig, vehicle: SimulatedVehicle) -> AsyncIterator[FakeConnection]:
    """Run ``vehicle`` (admin token in hand); yield its first socket; stop it on the way out."""
    admin = await rig.api.admin_token("admin", "admin-password-123")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(vehicle.run, admin)
        connection = await rig.sockets.next_connection()
        yield connection
        vehicle.request_stop()


async def frame_with(connection: FakeConnection, **expected: object) -> dict[str, object]:
    """The next frame from the vehicle that has all of ``expected`` (the others are skipped)."""
    skipped: list[dict[str, object]] = []
    with waiting_for(f"a frame with {expected}", lambda: skipped, FRAME_WAIT):
        while True:
            frame = await connection.receive()
            if all(frame.get(key) == value for key, value in expected.items()):
                return frame
            skipped.append(frame)
    raise AssertionError("unreachable")


# --- REST ------------------------------------------------------------------------------------


async def test_a_429_is_waited_out_for_its_retry_after_then_resent(
    autojump_clock: trio.testing.MockClock, rig: Rig
) -> None:
    rig.hub.valid_tokens["tok"] = "sim_001"
    rig.hub.forced.append(httpx.Response(429, headers={"Retry-After": "3"}, json={}))
    record = telemetry("battery", "2025-12-16T10:00:00.000Z", {"battery": {
        "soc_percent": 50.0, "voltage": 49.0, "current": -2.0, "temperature": 25.0,
        "charging": False}})  # fmt: skip
    start = trio.current_time()
    with trio.fail_after(HANG_GUARD):
        response = await rig.api.post_telemetry("tok", "sim_001", record)
    assert response.status_code == 200
    assert trio.current_time() - start == 3.0
    assert rig.stats.rate_limited == 1 and rig.stats.telemetry_acked == 1
    assert rig.hub.paths == ["/api/v1/vehicle/sim_001/battery"] * 2


async def test_registering_an_existing_vehicle_rotates_its_secret(
    autojump_clock: trio.testing.MockClock, rig: Rig
) -> None:
    rig.hub.registered.add("sim_001")
    credentials = await rig.api.register("admin-token", "sim_001", "Simulated sim_001")
    assert credentials == Credentials("sim_001", "veh_sim_001", "s")
    assert rig.hub.paths == [
        "/api/v1/admin/vehicles",
        "/api/v1/admin/vehicles/sim_001/rotate-secret",
    ]


async def test_telemetry_flows_at_the_contract_rates(
    autojump_clock: trio.testing.MockClock, rig: Rig
) -> None:
    vehicle = new_vehicle(rig)
    with trio.fail_after(HANG_GUARD):
        async with running(rig, vehicle):
            await trio.sleep(30.5)
    assert len(rig.hub.records("location")) == 31
    assert len(rig.hub.records("battery")) == 7
    assert rig.stats.telemetry_acked == rig.stats.telemetry_sent > 0
    assert rig.hub.records("bulk") == []


# --- the socket ------------------------------------------------------------------------------


async def test_ping_gets_a_pong_and_commands_get_acks(
    autojump_clock: trio.testing.MockClock, rig: Rig
) -> None:
    vehicle = new_vehicle(rig)
    with trio.fail_after(HANG_GUARD):
        async with running(rig, vehicle) as connection:
            connection.push({"type": "ping", "timestamp": "2025-12-16T10:00:00.000Z"})
            validate_model(PongFrame, await frame_with(connection, type="pong"))

            connection.push(dispatch_frame("cmd_1"))
            accepted = await frame_with(connection, command_id="cmd_1")
            assert accepted["status"] == "accepted"
            await trio.sleep(5)
            connection.push({"type": "emergency_stop", "command_id": "cmd_ESTOP_1"})
            stopped = await frame_with(connection, command_id="cmd_ESTOP_1")
            assert stopped["status"] == "executed" and "location" in stopped
            await trio.sleep(0.5)
            assert rig.hub.records("status")[-1].body["state"] == "emergency_stop"
            connection.push({"type": "resume", "command_id": "cmd_2"})
            assert (await frame_with(connection, command_id="cmd_2"))["status"] == "executed"
            done = await frame_with(connection, command_id="cmd_1", status="executed")
            for frame in (accepted, stopped, done):
                validate_model(CommandAck, frame)
    assert connection.closed is not None and connection.closed.code == 1000
    assert rig.stats.commands_received == 3 and rig.stats.commands_acked == 4


@pytest.mark.parametrize("code", [4001, 4004, 4005])
async def test_a_final_close_code_stops_the_vehicle(
    autojump_clock: trio.testing.MockClock, rig: Rig, code: int
) -> None:
    vehicle = new_vehicle(rig)
    admin = await rig.api.admin_token("admin", "admin-password-123")
    with trio.fail_after(HANG_GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(vehicle.run, admin)
            connection = await rig.sockets.next_connection()
            connection.close_from_hub(code)
    assert vehicle.stopped_reason is not None and str(code) in vehicle.stopped_reason
    assert len(rig.sockets.connections) == 1


async def test_a_dropped_socket_is_reopened_with_backoff(
    autojump_clock: trio.testing.MockClock, rig: Rig
) -> None:
    vehicle = new_vehicle(rig)
    with trio.fail_after(HANG_GUARD):
        async with running(rig, vehicle) as first:
            first.close_from_hub(1011)
            closed_at = trio.current_time()
            await rig.sockets.next_connection()
            assert 0.8 <= trio.current_time() - closed_at <= 1.2  # first backoff: 1 s ± 20 %
            rig.sockets.refuse = True
            rig.sockets.connections[-1].close_from_hub(1001)
            await trio.sleep(10)
            rig.sockets.refuse = False
            await rig.sockets.next_connection()
    assert rig.stats.socket_connects == 3


# --- tokens ----------------------------------------------------------------------------------


async def test_an_expired_token_is_renewed_and_the_post_retried(
    autojump_clock: trio.testing.MockClock, rig: Rig
) -> None:
    vehicle = new_vehicle(rig)
    with trio.fail_after(HANG_GUARD):
        async with running(rig, vehicle):
            await trio.sleep(3.5)
            rig.hub.expire_tokens()
            await trio.sleep(3)
    assert rig.hub.refreshes == 1
    assert len(rig.hub.records("location")) == 7  # 0 … 6 s, none lost
    assert rig.stats.rejected == 0
    assert rig.stats.telemetry_sent == rig.stats.telemetry_acked + 1  # the one refused with 401


async def test_the_token_is_refreshed_before_it_expires(
    autojump_clock: trio.testing.MockClock, rig: Rig
) -> None:
    rig.hub.token_ttl = 100
    vehicle = new_vehicle(rig)
    with trio.fail_after(HANG_GUARD):
        async with running(rig, vehicle):
            await trio.sleep(79.5)
            assert rig.hub.refreshes == 0
            await trio.sleep(1.0)
            assert rig.hub.refreshes == 1
            await trio.sleep(80.0)
            assert rig.hub.refreshes == 2
    assert rig.stats.rejected == 0


# --- offline ---------------------------------------------------------------------------------


async def test_an_offline_spell_is_bulk_uploaded_when_the_vehicle_is_back(
    autojump_clock: trio.testing.MockClock, rig: Rig
) -> None:
    vehicle = new_vehicle(rig)
    with trio.fail_after(HANG_GUARD):
        async with running(rig, vehicle) as first:
            await trio.sleep(10.5)
            went = trio.current_time()
            async with trio.open_nursery() as spell:
                spell.start_soon(vehicle.go_offline_for, 30.0)
                await trio.sleep(0.1)
                assert vehicle.offline and not vehicle.socket.connected
                assert first.closed is not None
            back = trio.current_time()
            await rig.sockets.next_connection()
            await trio.sleep(5)
    live = rig.hub.records("location")
    assert not [item for item in live if went < item.at < back]
    bulks = rig.hub.records("bulk")
    assert len(bulks) == 1 and rig.stats.bulk_uploads == 1
    body = bulks[0].body
    assert body["vehicle_id"] == "sim_001" and "offline_period" in body
    assert body["offline_period"]["start"] <= body["messages"][0]["timestamp"]
    bulked = [m["timestamp"] for m in body["messages"] if m["type"] == "location"]
    assert len(bulked) >= 30  # the 30 s away, plus what came while the upload was due
    # every second has its location exactly once, live or in the bulk
    seconds = sorted(
        parse_timestamp(stamp) for stamp in bulked + [i.body["timestamp"] for i in live]
    )
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(seconds)] == [1.0] * (
        len(seconds) - 1
    )
    assert rig.stats.offline_episodes == 1


async def test_no_refresh_while_offline_and_a_fresh_token_for_the_new_socket(
    autojump_clock: trio.testing.MockClock, rig: Rig
) -> None:
    rig.hub.token_ttl = 100  # renewal due at 80 s
    vehicle = new_vehicle(rig)
    with trio.fail_after(HANG_GUARD):
        async with running(rig, vehicle) as first:
            await trio.sleep(70)
            async with trio.open_nursery() as spell:
                spell.start_soon(vehicle.go_offline_for, 30.0)
                await trio.sleep(29.9)
                assert rig.hub.refreshes == 0  # due at 80 s, but the link is down
            second = await rig.sockets.next_connection()
            assert rig.hub.refreshes == 1
            assert second.token != first.token
            assert rig.hub.valid_tokens[second.token] == "sim_001"
            await trio.sleep(5)
    assert vehicle.stopped_reason is None and rig.stats.rejected == 0
