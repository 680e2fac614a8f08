"""Telemetry kept on the vehicle while it cannot post, and the bulk uploads that carry it home.

CONTRACT §4: a bulk body holds 1 to 1000 messages, each ``{"type", "timestamp", "data"}``
where ``data`` is the kind's REST body without ``timestamp``, plus the ``offline_period`` the
messages come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.contract.bulk import BULK_MAX_MESSAGES
from hub.simulator.reports import Telemetry


@dataclass(frozen=True, slots=True)
class BulkBatch:
    """One bulk upload body and how many messages it carries."""

    body: dict[str, Any]

    @property
    def size(self) -> int:
        """Number of messages in the upload."""
        return len(self.body["messages"])


def bulk_message(record: Telemetry) -> dict[str, Any]:
    """A record as a bulk message: the timestamp moves out of ``data`` onto the message."""
    data = {key: value for key, value in record.body.items() if key != "timestamp"}
    return {"type": record.kind, "timestamp": record.timestamp, "data": data}


class Backlog:
    """Records waiting for a bulk upload, oldest first; never blocks.

    :meth:`went_offline` and :meth:`came_online` mark the offline period the next uploads
    report; records that merely failed to post while online are uploaded without one.
    """

    def __init__(self, *, max_messages: int = BULK_MAX_MESSAGES) -> None:
        self.max_messages = max_messages
        self._records: list[Telemetry] = []
        self._offline_start: str | None = None
        self._offline_end: str | None = None

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: Telemetry) -> None:
        """Keep ``record`` for a later upload."""
        self._records.append(record)

    def went_offline(self, timestamp: str) -> None:
        """The vehicle lost its link at ``timestamp`` (the first loss counts)."""
        if self._offline_start is None:
            self._offline_start = timestamp
        self._offline_end = None

    def came_online(self, timestamp: str) -> None:
        """The link is back at ``timestamp``."""
        if self._offline_start is not None:
            self._offline_end = timestamp

    @property
    def offline(self) -> bool:
        """True between :meth:`went_offline` and :meth:`came_online`."""
        return self._offline_start is not None and self._offline_end is None

    def next_batch(self, vehicle_id: str) -> BulkBatch | None:
        """The oldest ≤ ``max_messages`` records as one upload body, or None if empty.

        The records stay in the backlog until :meth:`confirm` says the upload went through,
        so a failed upload is retried with the same messages.
        """
        if not self._records:
            return None
        # Records overflowing a busy sender may reach the backlog out of order.
        self._records.sort(key=lambda record: record.timestamp)
        chunk = self._records[: self.max_messages]
        body: dict[str, Any] = {
            "vehicle_id": vehicle_id,
            "messages": [bulk_message(record) for record in chunk],
        }
        if self._offline_start is not None:
            start = min(self._offline_start, chunk[0].timestamp)
            end = max(self._offline_end or chunk[-1].timestamp, chunk[-1].timestamp)
            body["offline_period"] = {"start": start, "end": end}
        return BulkBatch(body=body)

    def confirm(self, batch: BulkBatch) -> None:
        """Drop the records of an upload the hub accepted (or refused for good)."""
        del self._records[: batch.size]
        if not self._records and not self.offline:
            self._offline_start = self._offline_end = None
