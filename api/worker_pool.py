"""Keeping N worker processes running, and stopping them together: the parent's loop of
``tvm-hub serve --workers N``.

Plain blocking code on the main thread (no event loop): the parent does nothing else while
its workers run, and the kernel ties each child's "parent died" signal to the thread that
started it (:mod:`hub.child_processes`).

- **Start**: worker ``k`` (0 to N - 1) is ``command`` with the environment
  ``environment(k)``, in a session of its own; stdout and stderr are the parent's.
- **A worker dies**: logged (status or signal, how long it ran) and started again after a
  delay: 0.5 s, doubled after each quick death, at most 30 s; back to 0.5 s once a worker
  has run 60 s. The others keep serving meanwhile.
- **SIGTERM or SIGINT**: no more restarts; each worker gets SIGTERM and the parent waits for
  all of them, up to ``stop_timeout``; any still running then is killed (SIGKILL). A second
  signal kills them at once. A parent leaving for any other reason (an exception) kills
  whatever still runs, so no worker outlives it.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from hub.child_processes import child_process_options

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.1
"""How often the parent looks at its workers (and how soon it notices a signal)."""
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0
"""A worker that ran this long before dying is restarted after the first delay again."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class _Slot:
    """One worker number and the process currently filling it."""

    worker_id: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    delay: float = FIRST_RESTART_DELAY


class WorkerPool:
    """``count`` copies of ``command``, kept running until a stop signal (see the module)."""

    def __init__(
        self,
        count: int,
        command: Sequence[str],
        environment: Callable[[int], Mapping[str, str]],
        *,
        stop_timeout: float,
    ) -> None:
        self._command = list(command)
        self._environment = environment
        self._stop_timeout = stop_timeout
        self._slots = [_Slot(worker_id) for worker_id in range(count)]
        self._stop_signal: int | None = None
        self._hurry = False

    def run(self) -> int:
        """Start the workers and keep them running until SIGTERM or SIGINT, then stop them.

        Blocks until every worker has exited. Must run on the main thread: it installs the
        handlers of both signals for its duration (and puts the previous ones back). Returns
        0 when every worker stopped by itself with status 0, else 1.
        """
        previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        try:
            now = time.monotonic()
            for slot in self._slots:
                self._start(slot, now)
            while self._stop_signal is None:
                self._tend(time.monotonic())
                time.sleep(POLL_INTERVAL)
            return self._stop_all()
        finally:
            self._kill_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop_signal is None:
            self._stop_signal = signum
        else:
            self._hurry = True

    def _start(self, slot: _Slot, now: float) -> None:
        slot.restart_at = None
        slot.started_at = now
        try:
            slot.process = subprocess.Popen(
                self._command,
                env=dict(self._environment(slot.worker_id)),
                **child_process_options(),
            )
        except OSError as exc:
            logger.error("worker %d could not be started: %s", slot.worker_id, exc)
            self._schedule_restart(slot, now)
            return
        logger.info("worker %d started (pid %d)", slot.worker_id, slot.process.pid)

    def _tend(self, now: float) -> None:
        """Notice workers that died and start the ones whose restart delay is over."""
        for slot in self._slots:
            if slot.process is not None:
                status = slot.process.poll()
                if status is None:
                    continue
                ran = now - slot.started_at
                if ran >= STABLE_AFTER:
                    slot.delay = FIRST_RESTART_DELAY
                logger.warning(
                    "worker %d (pid %d) %s after %.1f s; starting it again in %.1f s",
                    slot.worker_id,
                    slot.process.pid,
                    describe_status(status),
                    ran,
                    slot.delay,
                )
                slot.process = None
                self._schedule_restart(slot, now)
            elif slot.restart_at is not None and now >= slot.restart_at:
                self._start(slot, now)

    def _schedule_restart(self, slot: _Slot, now: float) -> None:
        slot.restart_at = now + slot.delay
        slot.delay = min(slot.delay * 2, MAX_RESTART_DELAY)

    def _stop_all(self) -> int:
        """Forward SIGTERM, wait up to the stop timeout, kill what is left; the exit status."""
        assert self._stop_signal is not None
        running = [slot for slot in self._slots if slot.process is not None]
        logger.info(
            "received %s: stopping %d workers (SIGTERM; SIGKILL after %.0f s)",
            signal.Signals(self._stop_signal).name,
            len(running),
            self._stop_timeout,
        )
        for slot in running:
            assert slot.process is not None
            slot.process.send_signal(signal.SIGTERM)
        clean = True
        deadline = time.monotonic() + self._stop_timeout
        while running and time.monotonic() < deadline and not self._hurry:
            time.sleep(POLL_INTERVAL)
            for slot in list(running):
                assert slot.process is not None
                status = slot.process.poll()
                if status is None:
                    continue
                running.remove(slot)
                clean = clean and status == 0
                log = logger.info if status == 0 else logger.warning
                log(
                    "worker %d (pid %d) %s",
                    slot.worker_id,
                    slot.process.pid,
                    describe_status(status),
                )
                slot.process = None
        if running:
            why = "a second signal" if self._hurry else f"{self._stop_timeout:.0f} s"
            logger.warning("%d workers still running after %s: killing them", len(running), why)
            return 1
        return 0 if clean else 1

    def _kill_all(self) -> None:
        """SIGKILL every worker still running and reap it (blocks until they are gone)."""
        for slot in self._slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.kill()
        for slot in self._slots:
            if slot.process is not None:
                slot.process.wait()
                slot.process = None


def describe_status(status: int) -> str:
    """``exited with status 1`` or ``was killed by SIGKILL`` (a :class:`Popen` return code)."""
    if status >= 0:
        return f"exited with status {status}"
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = f"signal {-status}"
    return f"was killed by {name}"
