"""The bench clock: epoch seconds that advance with the monotonic clock, and wire timestamps.

Every process of a run (orchestrator, generator workers) anchors its clock on the wall clock
once and then advances it with ``time.monotonic``, so the clocks of different processes agree
to within microseconds and an NTP step during a run does not move measured latencies. Intended
send times are whole milliseconds, so a wire timestamp carries its message's intended time
exactly and any process can recover it (:func:`parse_wire`).
"""

from __future__ import annotations

import calendar
import time

import trio

_PARSED_SECONDS: dict[str, int] = {}
_PARSE_CACHE_LIMIT = 100_000


class BenchClock:
    """Epoch seconds (float), anchored once on the wall clock, advanced monotonically."""

    def __init__(self) -> None:
        self._wall = time.time()
        self._monotonic = time.monotonic()

    def now(self) -> float:
        """The current bench time in epoch seconds (no blocking)."""
        return self._wall + (time.monotonic() - self._monotonic)

    async def sleep_until(self, moment: float) -> None:
        """Sleep until bench time ``moment`` (returns at once if it has passed); cancellable."""
        delay = moment - self.now()
        if delay > 0:
            await trio.sleep(delay)


def wire_text(millis: int) -> str:
    """The contract timestamp (``2025-12-16T10:30:45.123Z``) of epoch milliseconds."""
    seconds, rest = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest:03d}Z"


def parse_wire(text: str) -> float:
    """Epoch seconds of a contract timestamp (cached per second: this runs per delivery).

    Raises ``ValueError`` for text that is not a contract timestamp.
    """
    prefix = text[:19]
    seconds = _PARSED_SECONDS.get(prefix)
    if seconds is None:
        seconds = calendar.timegm(time.strptime(prefix, "%Y-%m-%dT%H:%M:%S"))
        if len(_PARSED_SECONDS) >= _PARSE_CACHE_LIMIT:
            _PARSED_SECONDS.clear()
        _PARSED_SECONDS[prefix] = seconds
    if len(text) != 24 or text[19] != "." or text[23] != "Z":
        raise ValueError(f"not a contract timestamp: {text!r}")
    return seconds + int(text[20:23]) / 1000
