"""Telemetry cadence on trio's MockClock: 1 location/s, battery every 5 s, status every 10 s or on
change (CONTRACT §3 rates), driven by the real drive loop."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

from hub.simulator.cadence import Cadence
from hub.simulator.drive import drive
from hub.simulator.params import VehicleParams
from hub.simulator.reports import Ack, Emission, Telemetry
from hub.simulator.testing import QUIET, WallClock, command, dispatch_frame, make_model

HANG_GUARD = 3600.0  # virtual seconds: the autojump clock gets there only if a test is stuck


class Timeline:
    """Records each emission with the virtual time (since start) it was handed over."""

    def __init__(self) -> None:
        self.start = trio.current_time()
        self.events: list[tuple[float, Emission]] = []
        self.executed = trio.Event()

    def deliver(self, emission: Emission) -> None:
        self.events.append((trio.current_time() - self.start, emission))
        if isinstance(emission, Ack) and emission.frame["status"] == "executed":
            self.executed.set()

    def times(self, kind: str) -> list[float]:
        return [at for at, item in self.events if isinstance(item, Telemetry) and item.kind == kind]

    def statuses(self) -> list[tuple[float, str]]:
        return [
            (at, item.body["state"])
            for at, item in self.events
            if isinstance(item, Telemetry) and item.kind == "status"
        ]


async def test_a_quiet_vehicle_reports_exactly_on_the_contract_rates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = make_model()
    timeline = Timeline()
    with trio.fail_after(HANG_GUARD):
        with trio.move_on_after(60.5):
            await drive(model, timeline.deliver)
    assert timeline.times("location") == [float(second) for second in range(61)]
    assert timeline.times("battery") == [float(second) for second in range(0, 61, 5)]
    assert timeline.times("status") == [float(second) for second in range(0, 61, 10)]
    assert timeline.times("docking") == timeline.times("error") == []


async def test_status_comes_at_once_on_a_change_and_never_more_than_10_s_apart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = make_model()
    timeline = Timeline()

    def deliver_all(emissions: list[Emission]) -> None:
        for emission in emissions:
            timeline.deliver(emission)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drive, model, timeline.deliver)
        await trio.sleep(12.5)
        model.on_command(command(dispatch_frame()))
        deliver_all(model.take_emissions())
        with trio.fail_after(HANG_GUARD):
            await timeline.executed.wait()
        await trio.sleep(25.0)
        nursery.cancel_scope.cancel()

    statuses = timeline.statuses()
    assert statuses[:3] == [(0.0, "idle"), (10.0, "idle"), (12.5, "navigating")]
    assert statuses[3] == (22.0, "navigating")  # the periodic one, 10 s after the change
    for (earlier, _), (later, _) in itertools.pairwise(statuses):
        assert later - earlier <= 10.0
    # every change of state is reported the moment the model makes it
    locations = timeline.times("location")
    changes = [
        (at, state) for (_, before), (at, state) in itertools.pairwise(statuses) if state != before
    ]
    assert [state for _, state in changes] == [
        "navigating", "docking", "navigating", "docking", "idle"
    ]  # fmt: skip
    assert all(at == 12.5 or at in locations for at, _ in changes)
    assert locations == [float(second) for second in range(len(locations))]
    docking = timeline.times("docking")
    assert docking and all(
        later - earlier <= 1.0 for earlier, later in itertools.pairwise(docking[:12])
    )


async def test_a_configured_telemetry_frequency_slows_locations_but_never_above_1_hz(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = make_model(clock=WallClock())
    model.on_command(
        command(
            {
                "type": "configure",
                "command_id": "cmd_1",
                "config_updates": {"telemetry_frequency": 0.5},
            }
        )
    )
    timeline = Timeline()
    with trio.move_on_after(10.5):
        await drive(model, timeline.deliver)
    assert timeline.times("location") == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]

    fast = make_model()
    fast.on_command(
        command(
            {
                "type": "configure",
                "command_id": "cmd_2",
                "config_updates": {"telemetry_frequency": 2.0},
            }
        )
    )
    timeline = Timeline()
    with trio.move_on_after(5.5):
        await drive(fast, timeline.deliver, 0.25)
    assert timeline.times("location") == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


async def test_a_short_tick_does_not_change_the_rates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    model = make_model(params=VehicleParams(error_rate_per_minute=0.0, patrol=False))
    timeline = Timeline()
    with trio.move_on_after(20.05):
        await drive(model, timeline.deliver, 0.1)
    # 0.1 s ticks add up to 0.9999999999999999 s: a report is due within float slack
    assert timeline.times("location") == pytest.approx([float(second) for second in range(21)])
    assert len(timeline.times("battery")) == 5
    assert QUIET.status_interval == 10.0 and len(timeline.times("status")) == 3


def test_a_late_report_is_not_made_up_with_a_burst() -> None:
    cadence = Cadence(1.0)
    assert cadence.due(0.0)
    assert not cadence.due(0.5)
    assert cadence.due(4.2)  # a stall of 3 s: one report, not four
    assert not cadence.due(5.0)
    assert cadence.due(5.2)
