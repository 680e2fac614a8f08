"""A mission a simulated vehicle carries out: pick up, then drop off, and how far it has to go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.contract.commands import DispatchCommand
from hub.simulator.docking import TOTAL_SECONDS
from hub.simulator.geo import Point, Waypoint, distance_metres

Leg = Literal["pickup", "destination"]


@dataclass(slots=True)
class MissionRun:
    """The mission in progress and which leg the vehicle is on."""

    command_id: str
    mission_id: str
    pickup: Waypoint
    pickup_action: str
    destination: Waypoint
    destination_action: str
    total_metres: float
    leg: Leg = "pickup"

    @classmethod
    def from_command(cls, command: DispatchCommand, command_id: str, start: Point) -> MissionRun:
        """The run for a dispatch received at ``start``."""
        mission = command.mission
        pickup = Waypoint(
            mission.pickup.waypoint_id, Point(mission.pickup.latitude, mission.pickup.longitude)
        )
        destination = Waypoint(
            mission.destination.waypoint_id,
            Point(mission.destination.latitude, mission.destination.longitude),
        )
        total = distance_metres(start, pickup.point) + distance_metres(
            pickup.point, destination.point
        )
        return cls(
            command_id=command_id,
            mission_id=mission.mission_id,
            pickup=pickup,
            pickup_action=mission.pickup.action,
            destination=destination,
            destination_action=mission.destination.action,
            total_metres=total,
        )

    @property
    def target(self) -> Waypoint:
        """Where the current leg ends."""
        return self.pickup if self.leg == "pickup" else self.destination

    def remaining_metres(self, position: Point) -> float:
        """Distance still to drive, over both legs."""
        if self.leg == "pickup":
            return distance_metres(position, self.pickup.point) + distance_metres(
                self.pickup.point, self.destination.point
            )
        return distance_metres(position, self.destination.point)

    def handling_seconds(self, pickup_wait: float) -> float:
        """Time still to be spent docking or waiting at the stops."""
        seconds = TOTAL_SECONDS if self.destination_action == "undock_wheelchair" else 0.0
        if self.leg == "pickup":
            seconds += TOTAL_SECONDS if self.pickup_action == "dock_wheelchair" else pickup_wait
        return seconds

    def progress(self, position: Point, speed: float, pickup_wait: float) -> dict[str, float]:
        """The status report's ``details``: percent done, eta and distance left."""
        remaining = self.remaining_metres(position)
        done = 1.0 - remaining / self.total_metres if self.total_metres > 0 else 0.0
        eta = remaining / speed + self.handling_seconds(pickup_wait) if speed > 0 else 0.0
        return {
            "progress_percent": round(min(max(done * 100.0, 0.0), 100.0), 1),
            "eta_seconds": round(eta),
            "distance_remaining_meters": round(remaining, 1),
        }
