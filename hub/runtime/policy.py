"""When to restart a crashed child and when to give up: the restart rules, with no I/O.

:class:`RestartPolicy` is the configuration; :class:`RestartHistory` is one child's record
of crashes and restarts, which turns "it crashed at time t" into "restart after d seconds"
or "escalate". Times are passed in (the supervisor reads trio's clock), so the rules are
tested without a loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How a supervisor restarts crashed children, and when it gives up.

    The n-th crash within ``restart_window`` is followed by a restart after
    ``initial_backoff * backoff_factor ** (n - 1)``, at most ``max_backoff``. Crashes older
    than the window no longer count, so a child that crashes rarely is restarted quickly. A
    crash that would need more than ``max_restarts`` restarts within the window escalates.
    """

    initial_backoff: float = 0.1 * SECONDS
    backoff_factor: float = 2.0
    max_backoff: float = 5 * SECONDS
    max_restarts: int = 5
    restart_window: float = 60 * SECONDS

    def __post_init__(self) -> None:
        if not 0 <= self.initial_backoff <= self.max_backoff:
            raise ValueError("need 0 <= initial_backoff <= max_backoff")
        if self.backoff_factor < 1:
            raise ValueError("backoff_factor must be at least 1")
        if self.max_restarts < 0 or self.restart_window <= 0:
            raise ValueError("need max_restarts >= 0 and restart_window > 0")

    def backoff(self, crashes_in_window: int) -> float:
        """Seconds to wait before restarting after this many crashes within the window."""
        try:
            delay = self.initial_backoff * self.backoff_factor ** max(crashes_in_window - 1, 0)
        except OverflowError:
            return self.max_backoff
        return min(delay, self.max_backoff)


class RestartHistory:
    """One child's crashes and restarts under a policy; it outlives every incarnation."""

    __slots__ = ("_crash_times", "_policy", "last_restart_at", "restarts")

    def __init__(self, policy: RestartPolicy) -> None:
        self._policy = policy
        self._crash_times: deque[float] = deque()
        self.restarts = 0
        """Restarts so far, over the child's whole life."""
        self.last_restart_at: float | None = None
        """trio time of the latest restart, or None if it never restarted."""

    def __repr__(self) -> str:
        return f"<RestartHistory {self.restarts} restarts, {len(self._crash_times)} recent>"

    def crashes_in_window(self, now: float) -> int:
        """How many crashes happened less than ``restart_window`` before ``now``."""
        self._forget_before(now)
        return len(self._crash_times)

    def record_crash(self, now: float) -> float | None:
        """Note a crash at ``now``; return the backoff before restarting, or None to escalate."""
        self._crash_times.append(now)
        crashes = self.crashes_in_window(now)
        if crashes > self._policy.max_restarts:
            return None
        return self._policy.backoff(crashes)

    def record_restart(self, now: float) -> None:
        """Note that a fresh actor was started at ``now`` after a crash."""
        self.restarts += 1
        self.last_restart_at = now

    def _forget_before(self, now: float) -> None:
        window = self._policy.restart_window
        while self._crash_times and now - self._crash_times[0] >= window:
            self._crash_times.popleft()
