"""Where actors send what frontends should see; the Router implements it.

A vehicle actor publishes without waiting: publishing never blocks a vehicle, and a slow
frontend never slows the hub (the Router and each session's queue absorb it).
"""

from __future__ import annotations

from typing import Any, Protocol


class EventSink(Protocol):
    """Fan-out of vehicle events, command statuses and alerts to frontend sessions."""

    def vehicle_event(self, vehicle_id: str, event: dict[str, Any]) -> None:
        """A telemetry or connection event of one vehicle (``seq`` is added on the way)."""

    def command_status(
        self, vehicle_id: str, event: dict[str, Any], *, sender_session: str | None
    ) -> None:
        """A command's status change: to its sender and the vehicle's subscribers, never dropped."""

    def alert(self, event: dict[str, Any]) -> None:
        """An alert: to every admin and operator session, whatever they subscribed to."""


class RecordingSink:
    """An event sink that keeps everything in lists (unit tests)."""

    def __init__(self) -> None:
        self.vehicle_events: list[tuple[str, dict[str, Any]]] = []
        self.command_statuses: list[tuple[str, dict[str, Any], str | None]] = []
        self.alerts: list[dict[str, Any]] = []

    def vehicle_event(self, vehicle_id: str, event: dict[str, Any]) -> None:
        """Keep it."""
        self.vehicle_events.append((vehicle_id, event))

    def command_status(
        self, vehicle_id: str, event: dict[str, Any], *, sender_session: str | None
    ) -> None:
        """Keep it."""
        self.command_statuses.append((vehicle_id, event, sender_session))

    def alert(self, event: dict[str, Any]) -> None:
        """Keep it."""
        self.alerts.append(event)
