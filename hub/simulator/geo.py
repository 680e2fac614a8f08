"""Flat-earth geometry for a site a few hundred metres across: distances, bearings, routes.

An equirectangular projection around each point is exact to well under a centimetre at
these distances, which is far below the accuracy a vehicle reports.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

METRES_PER_DEGREE = 111_320.0
"""Length of one degree of latitude (and of longitude at the equator)."""

DEFAULT_SITE = (35.681236, 139.767125)
"""The contract's example coordinates, used as the default site centre."""

PLACE_NAMES = (
    "lobby_entrance",
    "room_101",
    "room_115",
    "room_201",
    "room_214",
    "ward_a",
    "ward_b",
    "radiology",
    "pharmacy",
    "cafeteria",
    "garden_gate",
    "elevator_hall",
    "rehab_center",
    "outpatient_desk",
)


@dataclass(frozen=True, slots=True)
class Point:
    """A WGS84 position in degrees."""

    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Waypoint:
    """A named place on the site map."""

    name: str
    point: Point


def _metres_per_degree_longitude(latitude: float) -> float:
    return METRES_PER_DEGREE * max(math.cos(math.radians(latitude)), 1e-6)


def offset(origin: Point, east_metres: float, north_metres: float) -> Point:
    """The point ``east_metres``/``north_metres`` away from ``origin``."""
    return Point(
        latitude=origin.latitude + north_metres / METRES_PER_DEGREE,
        longitude=origin.longitude + east_metres / _metres_per_degree_longitude(origin.latitude),
    )


def _east_north(start: Point, end: Point) -> tuple[float, float]:
    east = (end.longitude - start.longitude) * _metres_per_degree_longitude(start.latitude)
    north = (end.latitude - start.latitude) * METRES_PER_DEGREE
    return east, north


def distance_metres(start: Point, end: Point) -> float:
    """Straight-line distance in metres."""
    east, north = _east_north(start, end)
    return math.hypot(east, north)


def bearing_degrees(start: Point, end: Point) -> float:
    """Direction from ``start`` to ``end``, degrees clockwise from true north, in [0, 360)."""
    east, north = _east_north(start, end)
    return math.degrees(math.atan2(east, north)) % 360.0


def move_towards(start: Point, end: Point, metres: float) -> Point:
    """The point ``metres`` along the line to ``end``; ``end`` itself once it is reached."""
    total = distance_metres(start, end)
    if metres >= total or total == 0.0:
        return end
    fraction = metres / total
    return Point(
        latitude=start.latitude + (end.latitude - start.latitude) * fraction,
        longitude=start.longitude + (end.longitude - start.longitude) * fraction,
    )


def random_route(
    rng: random.Random, centre: Point, *, stops: int = 5, radius_metres: float = 150.0
) -> list[Waypoint]:
    """``stops`` distinct named waypoints scattered within ``radius_metres`` of ``centre``."""
    names = rng.sample(PLACE_NAMES, k=min(stops, len(PLACE_NAMES)))
    route = []
    for name in names:
        angle = rng.uniform(0.0, 2.0 * math.pi)
        reach = radius_metres * math.sqrt(rng.random())
        point = offset(centre, reach * math.sin(angle), reach * math.cos(angle))
        route.append(Waypoint(name=name, point=point))
    return route
