"""Wall-clock time in the contract's timestamp form (CONTRACT §1).

Timestamps on the wire are ISO 8601 UTC with exactly three fractional digits and ``Z``.
Wall-clock time is only used for what a timestamp *says*; every timer (rate buckets,
heartbeats, retries) reads trio's clock so tests can drive it with ``MockClock``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

TIMESTAMP_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def utc_now() -> datetime:
    """The current UTC time, truncated to milliseconds like every wire timestamp."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_timestamp(moment: datetime) -> str:
    """``2025-12-16T10:30:45.123Z`` for an aware datetime (converted to UTC)."""
    # isoformat ends in "+00:00" for UTC; it is about twice as fast as strftime, which every
    # acknowledgement and frame pays for, and pads a year below 1000 to four digits.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def now_timestamp() -> str:
    """The current time as a wire timestamp."""
    return format_timestamp(utc_now())


def parse_timestamp(text: str) -> datetime:
    """Parse a wire timestamp; raise ``ValueError`` unless it has the exact form and a real date."""
    if not TIMESTAMP_PATTERN.match(text):
        raise ValueError("timestamp must look like 2025-12-16T10:30:45.123Z")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
