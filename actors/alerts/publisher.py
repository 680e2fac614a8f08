"""The Publisher every VehicleActor gets: events to the Router, alerts to the Alerts actor."""

from __future__ import annotations

import logging
from typing import Any

from actors.alerts.actor import AlertsMessage, RaiseAlert
from actors.router.sink import RouterSink
from hub.runtime import ActorRef, ActorStoppedError, MailboxFullError

logger = logging.getLogger(__name__)


class HubPublisher:
    """Fan-out for vehicle actors; never blocks (see ``actors.vehicle.ports.Publisher``)."""

    def __init__(self, router: RouterSink, alerts: ActorRef[AlertsMessage]) -> None:
        self._router = router
        self._alerts = alerts
        self.alerts_lost = 0

    def vehicle_event(self, vehicle_id: str, event: dict[str, Any]) -> None:
        """Straight to the Router."""
        self._router.vehicle_event(vehicle_id, event)

    def command_status(
        self, vehicle_id: str, event: dict[str, Any], *, sender_session: str | None
    ) -> None:
        """Straight to the Router."""
        self._router.command_status(vehicle_id, event, sender_session=sender_session)

    def alert(self, event: dict[str, Any]) -> None:
        """Through the Alerts actor (which hands it to the Router, side channels, escalation).

        If that actor cannot take it (its mailbox of 10,000 is full, or it is stopped), the
        alert still reaches the sessions through the Router, and is stored in the database.
        """
        try:
            self._alerts.tell_nowait(RaiseAlert(event))
        except (MailboxFullError, ActorStoppedError):
            self.alerts_lost += 1
            logger.error("alerts actor did not take alert %s", event.get("alert_id"))
            self._router.alert(event)

    async def staff_online(self) -> bool:
        """Whether an admin or operator session is attached (asked of the Router)."""
        return await self._router.staff_online()
