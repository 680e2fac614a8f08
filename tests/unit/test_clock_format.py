"""Wire timestamps the hub writes: ISO 8601 UTC, exactly three fractional digits, ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hub.clock import TIMESTAMP_PATTERN, format_timestamp, parse_timestamp


def test_a_utc_moment_is_written_to_the_millisecond_truncated_not_rounded() -> None:
    moment = datetime(2025, 12, 16, 10, 30, 45, 123999, tzinfo=UTC)
    assert format_timestamp(moment) == "2025-12-16T10:30:45.123Z"
    assert format_timestamp(moment.replace(microsecond=0)) == "2025-12-16T10:30:45.000Z"


def test_another_zone_is_converted_to_utc() -> None:
    helsinki = timezone(timedelta(hours=2))
    moment = datetime(2026, 1, 1, 1, 15, 0, 7000, tzinfo=helsinki)
    assert format_timestamp(moment) == "2025-12-31T23:15:00.007Z"


def test_every_written_timestamp_has_the_wire_form_and_reads_back() -> None:
    for moment in (
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),  # the year still has four digits
        datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 1000, tzinfo=UTC),
    ):
        text = format_timestamp(moment)
        assert TIMESTAMP_PATTERN.match(text), text
        assert parse_timestamp(text) == moment
