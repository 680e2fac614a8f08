"""Where a simulated vehicle is, where it is going and how fast: one straight leg at a time."""

from __future__ import annotations

import random
from typing import Any

from hub.simulator.geo import Point, Waypoint, bearing_degrees, distance_metres, move_towards
from hub.simulator.params import MAX_WIRE_SPEED

MIN_APPROACH_SPEED = 0.3
"""m/s: the slowest a vehicle creeps up to its goal."""


class Motion:
    """Position, heading and speed; :meth:`drive` moves towards :attr:`target`, never blocks."""

    def __init__(self, position: Point, rng: random.Random) -> None:
        self.position = position
        self.heading = rng.uniform(0.0, 360.0)
        self.speed = 0.0
        self.target: Waypoint | None = None
        self._rng = rng

    def drive(self, seconds: float, max_speed: float) -> bool:
        """Drive towards the target for ``seconds``; True (and stopped) once it is reached."""
        assert self.target is not None
        goal = self.target.point
        remaining = distance_metres(self.position, goal)
        # Slow down over the last couple of metres, as a careful vehicle does.
        wanted = min(max_speed, max(MIN_APPROACH_SPEED, remaining / 2.0))
        speed = min(wanted * self._rng.uniform(0.95, 1.0), MAX_WIRE_SPEED)
        if remaining > 0:
            self.heading = bearing_degrees(self.position, goal)
        if speed * seconds < remaining:
            self.position = move_towards(self.position, goal, speed * seconds)
            self.speed = speed
            return False
        self.position = goal
        self.speed = 0.0
        return True

    def short_location(self) -> dict[str, float]:
        """Latitude and longitude only (error reports, e-stop acks)."""
        return {
            "latitude": round(self.position.latitude, 7),
            "longitude": round(self.position.longitude, 7),
        }

    def location_fields(self) -> dict[str, Any]:
        """A location report's ``location`` object, with a little GNSS noise in its extras."""
        return {
            **self.short_location(),
            "altitude": round(40.0 + self._rng.uniform(-0.3, 0.3), 2),
            "heading": round(self.heading, 1) % 360.0,
            "speed": round(min(self.speed, MAX_WIRE_SPEED), 2),
            "accuracy": round(self._rng.uniform(0.05, 0.3), 2),
        }
