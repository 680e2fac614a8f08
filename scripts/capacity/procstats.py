"""CPU time and RSS of the server under test, read from ``/proc`` (Linux; no dependency).

The hub is our child, so its pid is known. The embedded PostgreSQL daemonises (it is not a
child of the hub); its postmaster is found by the hub's data directory on its command line and
its backends as the postmaster's children. Reading ``/proc`` never blocks for long.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` fields after the command name (index 0 is the state)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float | None:
    """User + system CPU seconds of a process (all its threads); None if it is gone.

    With ``reaped_children`` the CPU of children it has waited for is included too.
    """
    fields = _stat_fields(pid)
    if fields is None:
        return None
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def rss_bytes(pid: int) -> int | None:
    """``VmRSS`` of a process in bytes; None if it is gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def find_process(marker: str) -> int | None:
    """The lowest pid whose command line contains ``marker`` (None if there is none)."""
    needle = marker.encode()
    for pid in sorted(_pids()):
        try:
            if needle in (PROC / str(pid) / "cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def children(parent: int) -> list[int]:
    """Pids whose parent is ``parent``."""
    found = []
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields is not None and int(fields[1]) == parent:
            found.append(pid)
    return found


@dataclass(frozen=True, slots=True)
class ProbeSample:
    """One reading: monotonic time, CPU seconds of server and database, server RSS."""

    at: float
    cpu: float | None
    db_cpu: float | None
    rss: int | None


class ServerProbe:
    """Samples one server process (and its embedded database, when ``db_marker`` is given)."""

    def __init__(self, pid: int, db_marker: str | None = None) -> None:
        self.pid = pid
        self._db_marker = db_marker
        self._postmaster: int | None = None

    def alive(self) -> bool:
        """True while the server process exists (and is not a zombie)."""
        fields = _stat_fields(self.pid)
        return fields is not None and fields[0] != "Z"

    def sample(self) -> ProbeSample:
        """Read CPU and RSS now (scans ``/proc`` for the database's processes)."""
        return ProbeSample(time.monotonic(), cpu_seconds(self.pid), self._db_cpu(), self.rss())

    def rss(self) -> int | None:
        """The server's RSS in bytes."""
        return rss_bytes(self.pid)

    def _db_cpu(self) -> float | None:
        if self._db_marker is None:
            return None
        if self._postmaster is None or cpu_seconds(self._postmaster) is None:
            self._postmaster = find_process(self._db_marker)
        if self._postmaster is None:
            return None
        total = cpu_seconds(self._postmaster, reaped_children=True) or 0.0
        for pid in children(self._postmaster):
            total += cpu_seconds(pid) or 0.0
        return total


def cpu_percent(before: ProbeSample, after: ProbeSample, *, database: bool = False) -> float | None:
    """CPU use between two samples in percent of one core (None if unknown)."""
    first, last = (before.db_cpu, after.db_cpu) if database else (before.cpu, after.cpu)
    elapsed = after.at - before.at
    if first is None or last is None or elapsed <= 0:
        return None
    return 100 * (last - first) / elapsed
