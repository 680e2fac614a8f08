"""The parent's loop of ``serve --workers N`` with tiny stand-in workers (``python -c``): a
worker that dies is started again, a stop signal is forwarded, and one that ignores it is
killed after the stop timeout. The stop signal is sent to this process from a helper thread,
as an operator's ``kill`` would be."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from api.worker_pool import WorkerPool

WAIT = 20.0

FIRST_DIES_THEN_SERVES = """
import os, signal, sys, time
log = os.environ["STARTS"]
first = not os.path.exists(log)
if not first:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with open(log, "a") as starts:
    starts.write(f"{os.getpid()}\\n")
if first:
    sys.exit(3)
time.sleep(60)
"""

IGNORES_SIGTERM = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(os.environ["STARTS"], "a").write(f"{os.getpid()}\\n")
time.sleep(60)
"""


def _signal_when(condition: Callable[[], bool]) -> threading.Thread:
    """SIGTERM this process once ``condition()`` holds (or after :data:`WAIT` seconds)."""

    def watch() -> None:
        deadline = time.monotonic() + WAIT
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def _starts(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_a_worker_that_died_is_started_again_and_a_clean_stop_exits_0(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    starts = tmp_path / "starts"
    environment = {**os.environ, "STARTS": str(starts)}
    pool = WorkerPool(
        1,
        [sys.executable, "-c", FIRST_DIES_THEN_SERVES],
        lambda worker_id: environment,
        stop_timeout=WAIT,
    )
    handler_before = signal.getsignal(signal.SIGTERM)
    _signal_when(lambda: len(_starts(starts)) == 2)
    with caplog.at_level(logging.INFO, logger="api.worker_pool"):
        status = pool.run()

    assert status == 0
    first, second = _starts(starts)
    messages = [record.getMessage() for record in caplog.records]
    assert any(f"worker 0 (pid {first}) exited with status 3" in m for m in messages)
    assert f"worker 0 (pid {second}) exited with status 0" in messages
    assert signal.getsignal(signal.SIGTERM) == handler_before  # put back as it was


def test_a_worker_that_ignores_sigterm_is_killed_after_the_stop_timeout(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    environment = {**os.environ, "STARTS": str(starts)}
    pool = WorkerPool(
        2,
        [sys.executable, "-c", IGNORES_SIGTERM],
        lambda worker_id: environment,
        stop_timeout=0.5,
    )
    _signal_when(lambda: len(_starts(starts)) == 2)
    status = pool.run()

    assert status == 1
    for pid in _starts(starts):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
