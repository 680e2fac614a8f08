"""One log line per refused request, without letting a flood flood the log (TVM-ERR-002).

Every 4xx answer is logged once: INFO for 400–429, WARNING for 401 and 403 (someone may be
probing), with the request id, method, route, principal and error code. At most
:data:`LINES_PER_SECOND` such lines are written per second; the rest are counted and one
summary line says how many were left out.

5xx answers (:func:`log_failure`) are logged at ERROR, with the cause's stack trace, under a
throttle of their own: an outage answers every request 503, and a line per answer would
cost the loop more than the answers do, just when it has least to spare.
"""

from __future__ import annotations

import logging
import math

import trio

logger = logging.getLogger("api.refusals")

LINES_PER_SECOND = 20
"""How many refusal lines may be written in one second of trio time."""

_WARNING_STATUSES = frozenset({401, 403})


class RefusalThrottle:
    """Allows ``limit`` lines per whole second of trio time; counts the ones it refuses."""

    def __init__(self, limit: int = LINES_PER_SECOND) -> None:
        self._limit = limit
        self._second = -1
        self._written = 0
        self.suppressed = 0

    def allow(self) -> tuple[bool, int]:
        """Whether a line may be written now, and how many were suppressed before it.

        The count is reported (and reset) with the first line allowed in a new second.
        """
        second = math.floor(trio.current_time())
        reported = 0
        if second != self._second:
            self._second, self._written = second, 0
            reported, self.suppressed = self.suppressed, 0
        if self._written >= self._limit:
            self.suppressed += 1
            return False, 0
        self._written += 1
        return True, reported


_throttle = RefusalThrottle()
_failure_throttle = RefusalThrottle()


def log_refusal(
    status: int,
    code: str,
    *,
    method: str,
    route: str,
    principal: str | None,
    request_id: str | None,
    throttle: RefusalThrottle = _throttle,
) -> None:
    """Log one refused request (4xx), unless this second's share of lines is used up."""
    allowed, suppressed = throttle.allow()
    if suppressed:
        logger.warning(
            "%d refused requests were not logged (over %d/s)", suppressed, LINES_PER_SECOND
        )
    if not allowed:
        return
    level = logging.WARNING if status in _WARNING_STATUSES else logging.INFO
    logger.log(
        level,
        "%s %s answered %d %s (principal %s)",
        method,
        route,
        status,
        code,
        principal or "anonymous",
        extra={"request_id": request_id, "status": status, "error_code": code, "route": route},
    )


def log_failure(
    status: int,
    code: str,
    *,
    method: str,
    route: str,
    request_id: str | None,
    cause: BaseException | None = None,
    throttle: RefusalThrottle = _failure_throttle,
) -> None:
    """Log one failed request (5xx) with ``cause``'s traceback, within this second's share."""
    allowed, suppressed = throttle.allow()
    if suppressed:
        logger.error("%d failed requests were not logged (over %d/s)", suppressed, LINES_PER_SECOND)
    if not allowed:
        return
    logger.error(
        "%s %s answered %d %s",
        method,
        route,
        status,
        code,
        exc_info=cause,
        extra={"request_id": request_id, "status": status, "error_code": code, "route": route},
    )
