"""Helpers for tests of the simulator: a steerable wall clock, a quiet vehicle, commands."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from hub.contract.commands import AnyCommand, parse_command
from hub.simulator.geo import DEFAULT_SITE, Point, Waypoint, offset, random_route
from hub.simulator.params import VehicleParams
from hub.simulator.reports import Stamper
from hub.simulator.vehicle_model import VehicleModel

SITE = Point(*DEFAULT_SITE)
EPOCH = datetime(2025, 12, 16, 10, 0, 0, tzinfo=UTC)

QUIET = VehicleParams(
    error_rate_per_minute=0.0,
    docking_failure_probability=0.0,
    patrol=False,
)
"""A vehicle that does nothing on its own: no faults, no failed dockings, no patrols."""


class WallClock:
    """A wall clock that moves only when told (``advance``), starting at :data:`EPOCH`."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(seconds=seconds)


def make_model(
    *,
    params: VehicleParams = QUIET,
    soc_percent: float = 80.0,
    seed: int = 7,
    clock: Callable[[], datetime] | None = None,
    vehicle_id: str = "sim_001",
) -> VehicleModel:
    """A vehicle at its charger by :data:`SITE`, with a seeded route and RNG."""
    rng = random.Random(seed)
    home = Waypoint("charger_001", offset(SITE, -20.0, -20.0))
    return VehicleModel(
        vehicle_id,
        home=home,
        route=random_route(rng, SITE),
        rng=rng,
        stamper=Stamper(clock or WallClock()),
        params=params,
        soc_percent=soc_percent,
    )


def dispatch_frame(
    command_id: str = "cmd_1",
    mission_id: str = "mission_1",
    *,
    pickup_metres: tuple[float, float] = (30.0, 10.0),
    destination_metres: tuple[float, float] = (-40.0, 25.0),
    pickup_action: str = "dock_wheelchair",
    destination_action: str = "undock_wheelchair",
) -> dict[str, Any]:
    """A dispatch as the hub forwards it; waypoints given as (east, north) metres from SITE."""
    pickup = offset(SITE, *pickup_metres)
    destination = offset(SITE, *destination_metres)
    return {
        "type": "dispatch",
        "command_id": command_id,
        "timestamp": "2025-12-16T10:00:00.000Z",
        "priority": "normal",
        "mission": {
            "mission_id": mission_id,
            "pickup": {
                "waypoint_id": "lobby_entrance",
                "latitude": pickup.latitude,
                "longitude": pickup.longitude,
                "action": pickup_action,
            },
            "destination": {
                "waypoint_id": "room_201",
                "latitude": destination.latitude,
                "longitude": destination.longitude,
                "action": destination_action,
            },
        },
    }


def command(frame: dict[str, Any]) -> AnyCommand:
    """A command frame parsed as the vehicle parses it."""
    return parse_command(frame)


class TrioWallClock:
    """A wall clock that follows trio's clock: :data:`EPOCH` plus ``trio.current_time()``.

    With ``MockClock`` the timestamps a vehicle writes move exactly with virtual time.
    """

    def __call__(self) -> datetime:
        return EPOCH + timedelta(seconds=trio.current_time())
