"""Alerts for people: listing and acknowledging (CONTRACT §7), stateless over the alerts table.

An acknowledgement is stored, then told to the Alerts actor so that it stops watching the
alert for escalation (another hub's actor sees it stored when it comes to escalate).
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from actors.accounts import storage_guard
from actors.alerts.actor import AlertAcknowledged, AlertsMessage
from actors.alerts.store import AlertStore
from hub.errors import NotFoundError
from hub.runtime import ActorRef, ActorStoppedError, MailboxFullError
from storage.database import Row


class AlertBook:
    """Pages of stored alerts, and acknowledgements."""

    def __init__(self, store: AlertStore, alerts: ActorRef[AlertsMessage]) -> None:
        self._store = store
        self._alerts = alerts

    async def page(
        self,
        *,
        open_only: bool | None,
        vehicle_id: str | None,
        severity: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Row]:
        """Up to ``limit`` alerts newest first, after the key ``before``."""
        async with storage_guard():
            return await self._store.page(
                open_only=open_only,
                vehicle_id=vehicle_id,
                severity=severity,
                before=before,
                limit=limit,
            )

    async def acknowledge(self, alert_id: str, username: str) -> Row:
        """Acknowledge an alert (which stops its escalation); NotFoundError if unknown.

        Acknowledging again answers with the first acknowledgement, unchanged.
        """
        async with storage_guard():
            row = await self._store.acknowledge(alert_id, username)
        if row is None:
            raise NotFoundError(f"No alert {alert_id}")
        # If the actor cannot take it, the escalation's conditional update still sees it.
        with contextlib.suppress(MailboxFullError, ActorStoppedError):
            self._alerts.tell_nowait(AlertAcknowledged(alert_id))
        return row
