"""Where alerts are kept, and the frame of a stored alert.

:class:`AlertStore` is the ``alerts`` table (``storage.queries.alerts.DatabaseAlertStore``)
or an in-memory fake in unit tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from hub.clock import format_timestamp
from hub.contract import ws_events
from storage.database import Row
from storage.queries.alerts import OpenCritical


class AlertStore(Protocol):
    """The alerts table as the Alerts actor and the alert book use it (may raise StorageError)."""

    async def page(
        self,
        *,
        open_only: bool | None,
        vehicle_id: str | None,
        severity: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Row]:
        """Alerts newest first, after the key ``before`` (see ``storage.queries.alerts``)."""
        ...

    async def acknowledge(self, alert_id: str, acknowledged_by: str) -> Row | None:
        """Record the first acknowledgement; the alert as stored, or ``None`` if unknown."""
        ...

    async def mark_escalated(self, alert_id: str) -> Row | None:
        """Set ``escalated_at`` if still open; the alert with ``marked``, or ``None``."""
        ...

    async def unescalated_critical(self) -> list[OpenCritical]:
        """Open, not yet escalated critical alerts with their age."""
        ...


def alert_frame(row: Row, *, escalated: bool) -> dict[str, Any]:
    """The socket frame of a stored alert; ``timestamp`` is when it was raised."""
    return ws_events.alert(
        row["alert_id"],
        row["vehicle_id"],
        severity=row["severity"],
        kind=row["kind"],
        message=row["message"],
        timestamp=format_timestamp(row["created_at"]),
        error_code=row["error_code"],
        escalated=escalated,
        backfilled=row["backfilled"],
    )
