"""Counters the simulated fleet keeps, and the progress line and totals made from them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, fields

from hub.contract.telemetry import VehicleState

STATE_ORDER: tuple[VehicleState, ...] = (
    "idle",
    "navigating",
    "docking",
    "charging",
    "error",
    "emergency_stop",
)
_STATE_LABELS = {
    "navigating": "nav",
    "docking": "dock",
    "charging": "chg",
    "emergency_stop": "estop",
}


@dataclass(slots=True)
class SimStats:
    """Fleet-wide counters; plain integers, changed only from trio tasks (no locking needed)."""

    telemetry_sent: int = 0
    """Live telemetry POSTs made (a resend after a 401 counts again, one after a 429 not)."""
    telemetry_acked: int = 0
    """Live telemetry POSTs answered 200 (duplicates included)."""
    rate_limited: int = 0
    """429 answers, any endpoint."""
    rejected: int = 0
    """4xx answers other than 401/429 (a record the hub refused)."""
    http_failures: int = 0
    """Transport errors and 5xx answers."""
    error_reports: int = 0
    """Error reports made (live or in a bulk)."""
    commands_received: int = 0
    commands_acked: int = 0
    """Command acks sent on the socket (a late ``executed`` counts too)."""
    bulk_uploads: int = 0
    bulk_messages: int = 0
    offline_episodes: int = 0
    socket_connects: int = 0
    token_refreshes: int = 0


@dataclass(frozen=True, slots=True)
class FleetView:
    """The fleet at one moment: what the progress line shows besides the counters."""

    states: Counter[str]
    vehicles: int
    connected: int
    offline: int
    backlog: int
    stopped: int


def fleet_view(
    states: Iterable[str], *, connected: int, offline: int, backlog: int, stopped: int
) -> FleetView:
    """Count the vehicles per state."""
    counted = Counter(states)
    return FleetView(
        states=counted,
        vehicles=sum(counted.values()),
        connected=connected,
        offline=offline,
        backlog=backlog,
        stopped=stopped,
    )


def progress_line(elapsed: float, stats: SimStats, fleet: FleetView) -> str:
    """One line: time, states, sockets, telemetry, 429s, errors, commands, offline, bulk."""
    states = " ".join(
        f"{_STATE_LABELS.get(state, state)}={fleet.states.get(state, 0)}" for state in STATE_ORDER
    )
    parts = [
        f"[{elapsed:6.0f}s]",
        states,
        f"| ws {fleet.connected}/{fleet.vehicles}",
        f"| tel {stats.telemetry_acked}/{stats.telemetry_sent}",
        f"429s {stats.rate_limited}",
        f"rej {stats.rejected}",
        f"fail {stats.http_failures}",
        f"| errors {stats.error_reports}",
        f"| cmd {stats.commands_acked}/{stats.commands_received}",
        f"| offline {fleet.offline} (backlog {fleet.backlog})",
        f"| bulk {stats.bulk_uploads} ({stats.bulk_messages} msgs)",
    ]
    if fleet.stopped:
        parts.append(f"| stopped {fleet.stopped}")
    return " ".join(parts)


def progress_table(elapsed: float, stats: SimStats, fleet: FleetView) -> list[str]:
    """The same as :func:`progress_line` as a few short lines (for a terminal, redrawn)."""
    states = "  ".join(f"{state} {fleet.states.get(state, 0)}" for state in STATE_ORDER)
    stopped = f"  (stopped {fleet.stopped})" if fleet.stopped else ""
    return [
        f"tvm-hub simulate  {elapsed:.0f} s  vehicles {fleet.vehicles}{stopped}",
        f"  states     {states}",
        f"  sockets    {fleet.connected}/{fleet.vehicles} connected   offline {fleet.offline}"
        f" (backlog {fleet.backlog})",
        f"  telemetry  {stats.telemetry_acked}/{stats.telemetry_sent} acked   429s"
        f" {stats.rate_limited}   rejected {stats.rejected}   failures {stats.http_failures}",
        f"  errors     {stats.error_reports} reported   commands {stats.commands_acked}/"
        f"{stats.commands_received} acked   bulk {stats.bulk_uploads} ({stats.bulk_messages} msgs)",
    ]


def totals(elapsed: float, stats: SimStats, fleet: FleetView) -> str:
    """The closing summary: the final progress line, then every counter on its own line."""
    lines = [progress_line(elapsed, stats, fleet), "totals:"]
    for field in fields(stats):
        lines.append(f"  {field.name:<18} {getattr(stats, field.name)}")
    return "\n".join(lines)
