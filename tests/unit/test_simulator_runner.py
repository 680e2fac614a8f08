"""The simulated fleet end to end against an in-memory hub on MockClock; the progress display,
the totals, the options and the ``tvm-hub simulate`` entry."""

from __future__ import annotations

import argparse
import io
from collections import Counter

import httpx
import pytest
import trio
import trio.testing

from api import cli
from hub.simulator import options as simulator_options
from hub.simulator.fake_hub import FakeHub, FakeSockets
from hub.simulator.hub_api import SimulatorError
from hub.simulator.options import OptionsError, SimulationOptions, from_arguments
from hub.simulator.runner import Simulation
from hub.simulator.stats import SimStats, fleet_view, progress_line
from hub.simulator.testing import TrioWallClock

HANG_GUARD = 3600.0  # virtual seconds: the autojump clock gets there only if a test is stuck


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeHub, FakeSockets]:
    fake = FakeHub(TrioWallClock())
    sockets = FakeSockets(fake)
    monkeypatch.setattr(
        "hub.simulator.vehicle_socket.open_websocket_url", sockets.open_websocket_url
    )
    return fake, sockets


def simulation_of(
    fake: FakeHub, chosen: SimulationOptions, out: io.StringIO | None = None
) -> Simulation:
    """A run against ``fake``, its vehicles' timestamps following virtual time."""
    return Simulation(
        chosen,
        out=out or io.StringIO(),
        handle_signals=False,
        http_transport=fake.transport(),
        wall_clock=TrioWallClock(),
    )


def options(**overrides: object) -> SimulationOptions:
    values: dict[str, object] = {
        "vehicles": 3,
        "admin_username": "admin",
        "admin_password": "admin-password-123",
        "url": "http://hub.test",
        "duration": 180.0,
        "seed": 42,
        "offline_rate": 0.5,
        "error_rate": 0.5,
    }
    values.update(overrides)
    return SimulationOptions(**values)  # type: ignore[arg-type]


async def test_a_fleet_runs_for_its_duration_and_stops_cleanly(
    autojump_clock: trio.testing.MockClock, hub: tuple[FakeHub, FakeSockets]
) -> None:
    fake, sockets = hub
    out = io.StringIO()
    simulation = simulation_of(fake, options(), out)
    with trio.fail_after(HANG_GUARD):
        await simulation.run()
    assert fake.registered == {"sim_001", "sim_002", "sim_003"}
    stats = simulation.stats
    assert stats.rejected == 0 and stats.http_failures == 0
    assert stats.telemetry_acked == stats.telemetry_sent > 3 * 100
    assert stats.offline_episodes >= 1 and stats.bulk_uploads >= stats.offline_episodes
    # every second of every vehicle has its location once, live or in a bulk
    for vehicle_id in sorted(fake.registered):
        stamps = [item.body["timestamp"] for item in fake.records("location", vehicle_id)]
        for bulk in fake.records("bulk", vehicle_id):
            stamps += [m["timestamp"] for m in bulk.body["messages"] if m["type"] == "location"]
        assert len(stamps) == len(set(stamps)) >= 180
    for vehicle in simulation.vehicles:
        assert len(vehicle.backlog) == 0 and vehicle.stopped_reason is None
    # each offline spell dropped a socket (1006); every other one was closed with 1000 at the end
    closes = Counter(c.closed.code if c.closed else None for c in sockets.connections)
    assert closes == {1006: stats.offline_episodes, 1000: len(sockets.connections) - closes[1006]}
    lines = out.getvalue().splitlines()
    assert len(lines) == 36  # one every 5 s when stdout is not a terminal
    assert lines[0].startswith("[     5s] idle=") and "| ws " in lines[0]
    summary = simulation.summary()
    assert "totals:" in summary and f"telemetry_acked    {stats.telemetry_acked}" in summary


async def test_a_stop_request_ends_the_run_early(
    autojump_clock: trio.testing.MockClock, hub: tuple[FakeHub, FakeSockets]
) -> None:
    fake, _ = hub
    simulation = simulation_of(fake, options(duration=None, vehicles=2))
    with trio.fail_after(HANG_GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(simulation.run)
            await trio.sleep(30)
            simulation.request_stop()
    assert 30.0 <= simulation.elapsed < 31.0


async def test_the_run_ends_when_every_vehicle_is_refused(
    autojump_clock: trio.testing.MockClock, hub: tuple[FakeHub, FakeSockets]
) -> None:
    fake, _ = hub
    fake.valid_tokens = _NoVehicleTokens()
    simulation = simulation_of(fake, options())
    with trio.fail_after(HANG_GUARD):
        await simulation.run()
    assert simulation.elapsed < 5.0
    assert all("4001" in (v.stopped_reason or "") for v in simulation.vehicles)


class _NoVehicleTokens(dict[str, str]):
    """Tokens the fake hub forgets at once, except the admin's: every socket gets 4001."""

    def __setitem__(self, token: str, owner: str) -> None:
        if owner == "*admin":
            super().__setitem__(token, owner)


async def test_a_refused_admin_login_is_a_simulator_error(
    autojump_clock: trio.testing.MockClock, hub: tuple[FakeHub, FakeSockets]
) -> None:
    fake, _ = hub
    fake.forced.append(httpx.Response(401, json={"error": "invalid_client"}))
    simulation = simulation_of(fake, options())
    with pytest.raises(SimulatorError, match="invalid_client"):
        await simulation.run()


# --- display and options ---------------------------------------------------------------------


def test_the_progress_line_shows_every_counter() -> None:
    stats = SimStats(telemetry_sent=120, telemetry_acked=118, rate_limited=2, error_reports=3)
    stats.commands_received, stats.commands_acked, stats.bulk_uploads = 4, 4, 1
    view = fleet_view(
        ["idle", "idle", "navigating", "emergency_stop"],
        connected=3,
        offline=1,
        backlog=40,
        stopped=0,
    )
    line = progress_line(65.0, stats, view)
    assert line == (
        "[    65s] idle=2 nav=1 dock=0 chg=0 error=0 estop=1 | ws 3/4 | tel 118/120 429s 2"
        " rej 0 fail 0 | errors 3 | cmd 4/4 | offline 1 (backlog 40) | bulk 1 (0 msgs)"
    )
    assert view.states == Counter({"idle": 2, "navigating": 1, "emergency_stop": 1})


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    simulator_options.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_admin_credentials_default_to_the_environment() -> None:
    env = {"TVM_ADMIN_USERNAME": "admin", "TVM_ADMIN_PASSWORD": "admin-password-123"}
    chosen = from_arguments(parse("--vehicles", "5", "--url", "http://h:1/"), env)
    assert (chosen.admin_username, chosen.admin_password) == ("admin", "admin-password-123")
    assert chosen.url == "http://h:1" and chosen.vehicle_id(0) == "sim_001"
    with pytest.raises(OptionsError, match="admin credentials"):
        from_arguments(parse("--vehicles", "5"), {})


@pytest.mark.parametrize(
    "argv",
    [
        ("--vehicles", "0"),
        ("--vehicles", "2", "--duration", "-1"),
        ("--vehicles", "2", "--prefix", "bad prefix"),
        ("--vehicles", "2", "--offline-rate", "1.5"),
        ("--vehicles", "2", "--url", "ftp://hub"),
    ],
)
def test_bad_options_are_refused(argv: tuple[str, ...]) -> None:
    with pytest.raises(OptionsError):
        from_arguments(parse(*argv, "--admin-user", "a", "--admin-password", "p"), {})


def test_tvm_hub_simulate_checks_its_arguments_before_anything_else(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TVM_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("TVM_ADMIN_PASSWORD", raising=False)
    monkeypatch.setattr(cli, "load_settings", _must_not_be_called)
    assert cli.main(["simulate", "--vehicles", "2"]) == 2
    assert "admin credentials" in capsys.readouterr().err


def _must_not_be_called() -> None:
    raise AssertionError("simulate needs none of the hub's settings")
