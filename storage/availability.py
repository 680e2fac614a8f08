"""Whether the database can be reached, and the probe that notices when it is back.

The first call that finds the database gone (connection refused or lost, server shutting
down: :class:`~storage.database.DatabaseDownError`) marks it *down*. A call that got no answer
within its deadline (:class:`~storage.database.DatabaseSilentError`) only makes it *suspect*:
the probe runs at once, and only if it gets no answer either is the database marked down —
an event loop saturated by its own load reads every answer late, and answering the whole
fleet 503 for it would turn an overload into an outage.

While it is down, calls fail at once with that error instead of each waiting for a
connection, so a request answers 503 in milliseconds; a background task (:meth:`run`) probes
the server every second, and the first success, the probe's or any other call's, marks it
*up* again. Transient errors of a reachable server (deadlock, serialization failure, too many
connections) do not mark it down: they stay
:class:`~storage.database.StorageUnavailableError` and are the Writer's to retry.

Time is read through trio only, so tests drive the probe on ``MockClock``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

from storage.database import DatabaseDownError, DatabaseSilentError, StorageError

logger = logging.getLogger(__name__)

T = TypeVar("T")

PROBE_INTERVAL = 1.0
"""Seconds between two probes while the database is down (TVM-ERR-003)."""

DownListener = Callable[[DatabaseDownError], None]
"""Called synchronously, once per outage, at the moment the database is marked down."""


class DatabaseAvailability:
    """Up or down, as the last call found the database; probes it back up while down."""

    def __init__(self, *, probe_interval: float = PROBE_INTERVAL) -> None:
        self._probe_interval = probe_interval
        self._down_error: DatabaseDownError | None = None
        self._down_since: float | None = None
        self._outages = 0
        self._attention = trio.Event()
        self._suspected = False
        self._became_up = trio.Event()
        self._became_up.set()
        self._listeners: list[DownListener] = []
        self.probes = 0
        """Probes tried so far (each a ``SELECT 1`` on a fresh connection)."""
        self.suspicions = 0
        """Calls that got no answer in time while the database was up (each one probed)."""

    @property
    def is_down(self) -> bool:
        """True from a call that found the database gone until the next success."""
        return self._down_error is not None

    @property
    def down_since(self) -> float | None:
        """trio time at which the current outage was noticed, or ``None`` while up."""
        return self._down_since

    @property
    def outages(self) -> int:
        """How many times the database has been marked down since start."""
        return self._outages

    def check(self) -> None:
        """Raise :class:`DatabaseDownError` at once while the database is known to be down."""
        if self._down_error is not None:
            raise DatabaseDownError(f"database unavailable: {self._down_error}")

    def add_down_listener(self, listener: DownListener) -> None:
        """Call ``listener`` each time the database goes down (e.g. to answer waiters)."""
        self._listeners.append(listener)

    def mark_down(self, error: DatabaseDownError) -> None:
        """Record an outage (no-op if already down) and tell the listeners."""
        if self._down_error is not None:
            return
        self._down_error = error
        self._down_since = trio.current_time()
        self._outages += 1
        logger.warning("database unreachable, answering 503 until it is back: %s", error)
        self._became_up = trio.Event()
        self._attention.set()
        for listener in list(self._listeners):
            listener(error)

    def mark_up(self) -> None:
        """Record that the database answered (no-op if it was not down)."""
        if self._down_error is None:
            return
        assert self._down_since is not None
        logger.warning(
            "database reachable again after %.1f s", trio.current_time() - self._down_since
        )
        self._down_error = None
        self._down_since = None
        self._became_up.set()

    async def wait_up(self) -> None:
        """Return once the database is up (at once if it is not down)."""
        await self._became_up.wait()

    async def call(self, attempt: Callable[[], Awaitable[T]], *, even_if_down: bool = False) -> T:
        """Run one database attempt and keep the books: down on its failure, up on success.

        While down, raises :class:`DatabaseDownError` without running ``attempt`` unless
        ``even_if_down`` (the probe, and retries of a write already in flight). A success marks
        the database up only if no outage began while the attempt ran, so an answer that was
        on its way before the server died does not hide the outage.
        """
        if not even_if_down:
            self.check()
        outages_before = self._outages
        try:
            result = await attempt()
        except DatabaseSilentError:
            self._suspect()
            raise
        except DatabaseDownError as exc:
            self.mark_down(exc)
            raise
        if self._outages == outages_before:
            self.mark_up()
        return result

    def _suspect(self) -> None:
        """A call got no answer in time: have the probe tell at once whether we are down."""
        if self._down_error is None and not self._suspected:
            self.suspicions += 1
            self._suspected = True
            self._attention.set()

    async def _confirm(self, probe: Callable[[], Awaitable[object]]) -> None:
        """Probe once after a silent call: no answer marks the database down."""
        self.probes += 1
        try:
            await self.call(probe, even_if_down=True)
        except StorageError as exc:
            logger.debug("database probe after a silent call failed: %s", exc)
        else:
            logger.info("a database call timed out but the database answers: load, not outage")
        finally:
            self._suspected = False

    async def run(
        self,
        probe: Callable[[], Awaitable[object]],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """While the database is down, run ``probe`` every :data:`PROBE_INTERVAL`, and once at
        once after a silent call while it is up; until cancelled.

        The first probe of an outage runs one interval after it was noticed. ``probe`` must bound
        its own wait and raise a :class:`StorageError` when the server does not answer; a probe
        that overruns the interval is followed by the next one at once.
        """
        task_status.started()
        while True:
            await self._attention.wait()  # down, or a silent call to check
            self._attention = trio.Event()
            if self._suspected and not self.is_down:
                await self._confirm(probe)
                continue
            if not self.is_down:
                continue
            next_probe = (self._down_since or trio.current_time()) + self._probe_interval
            while self.is_down:
                await trio.sleep_until(next_probe)
                if not self.is_down:
                    break
                next_probe = trio.current_time() + self._probe_interval
                self.probes += 1
                try:
                    await self.call(probe, even_if_down=True)
                except StorageError as exc:
                    logger.debug("database probe failed: %s", exc)
