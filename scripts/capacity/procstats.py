"""CPU time and RSS of the server under test, read from ``/proc`` (Linux; no dependency).

The hub is our child, so its pid is known. The embedded PostgreSQL daemonises (it is not a
child of the hub); its postmaster is found by the hub's data directory on its command line and
its backends as the postmaster's children. Reading ``/proc`` never blocks for long.

A probe may watch several hubs (``--hubs N``: their figures are summed) and, in tree mode
(``--workers N``), each hub's whole process tree: the ``serve --workers`` parent, its worker
processes and its embedded ``redis-server``. Tree CPU includes what the tree's processes
reaped from their children (so a worker that exits keeps its CPU in the sum); tree RSS is the
sum of the processes' ``VmRSS`` (pages they share are counted in each). The embedded
PostgreSQL is never part of a tree; it is the database's figure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
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


def parents() -> dict[int, int]:
    """Every live process's parent pid, by pid (one scan of ``/proc``)."""
    found = {}
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields is not None:
            found[pid] = int(fields[1])
    return found


def descendants(
    roots: Iterable[int], parent_of: dict[int, int], *, exclude: int | None
) -> set[int]:
    """``roots`` and all their descendants in ``parent_of``, leaving out ``exclude``'s subtree."""
    kids: dict[int, list[int]] = {}
    for pid, parent in parent_of.items():
        kids.setdefault(parent, []).append(pid)
    found: set[int] = set()
    pending = [root for root in roots if root != exclude]
    while pending:
        pid = pending.pop()
        if pid in found:
            continue
        found.add(pid)
        pending.extend(kid for kid in kids.get(pid, ()) if kid != exclude)
    return found


@dataclass(frozen=True, slots=True)
class ProbeSample:
    """One reading: monotonic time, CPU seconds of server and database, server RSS."""

    at: float
    cpu: float | None
    db_cpu: float | None
    rss: int | None


class ServerProbe:
    """Samples the server under test: one process, or the sum over several (``pids``).

    With ``tree`` each pid counts with all its descendants (a ``serve --workers`` parent, its
    workers, its redis-server); without it, each pid alone. With ``db_marker`` the embedded
    database's postmaster (found by that string on its command line) and its backends are
    sampled as the database, and kept out of the trees.
    """

    def __init__(self, *pids: int, db_marker: str | None = None, tree: bool = False) -> None:
        if not pids:
            raise ValueError("ServerProbe needs at least one pid")
        self.pids = pids
        self.tree = tree
        self._db_marker = db_marker
        self._postmaster: int | None = None

    @property
    def pid(self) -> int:
        """The first (for several hubs: hub 0's) server pid."""
        return self.pids[0]

    def dead(self) -> list[int]:
        """The server pids that no longer exist (or are zombies)."""
        return [pid for pid in self.pids if not _running(pid)]

    def alive(self) -> bool:
        """True while every server process exists (and is not a zombie)."""
        return not self.dead()

    def sample(self) -> ProbeSample:
        """Read CPU and RSS now (scans ``/proc`` for the database's and the trees' processes)."""
        members = self._members()
        return ProbeSample(time.monotonic(), self._cpu(members), self._db_cpu(), self._rss(members))

    def rss(self) -> int | None:
        """The server's RSS in bytes (summed over its processes)."""
        return self._rss(self._members())

    def _members(self) -> list[int]:
        """The processes whose CPU and RSS are the server's."""
        if not self.tree:
            return list(self.pids)
        exclude = self._find_postmaster()
        return sorted(descendants(self.pids, parents(), exclude=exclude))

    def _cpu(self, members: list[int]) -> float | None:
        if not self.tree and len(members) == 1:
            return cpu_seconds(members[0])
        readings = [cpu_seconds(pid, reaped_children=self.tree) for pid in members]
        known = [value for value in readings if value is not None]
        return sum(known) if known else None

    def _rss(self, members: list[int]) -> int | None:
        readings = [rss_bytes(pid) for pid in members]
        known = [value for value in readings if value is not None]
        return sum(known) if known else None

    def _find_postmaster(self) -> int | None:
        if self._db_marker is None:
            return None
        if self._postmaster is None or cpu_seconds(self._postmaster) is None:
            self._postmaster = find_process(self._db_marker)
        return self._postmaster

    def _db_cpu(self) -> float | None:
        postmaster = self._find_postmaster()
        if postmaster is None:
            return None
        total = cpu_seconds(postmaster, reaped_children=True) or 0.0
        for pid in children(postmaster):
            total += cpu_seconds(pid) or 0.0
        return total


def _running(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def cpu_percent(before: ProbeSample, after: ProbeSample, *, database: bool = False) -> float | None:
    """CPU use between two samples in percent of one core (None if unknown)."""
    first, last = (before.db_cpu, after.db_cpu) if database else (before.cpu, after.cpu)
    elapsed = after.at - before.at
    if first is None or last is None or elapsed <= 0:
        return None
    return 100 * (last - first) / elapsed
