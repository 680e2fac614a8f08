"""Turning step outcomes into results: ``BENCH`` JSON lines, tables and capacities.

Capacity of a mode = the most vehicles among its steps that passed: p99 under the mode's
threshold (100 ms; 500 ms for fan-out), no error answers, every message answered, and for
fan-out every expected delivery received.

Every result says what served it: ``hubs`` (hub processes acting as one, ``--hubs``) and
``workers`` (worker processes per hub, ``--workers``); the stack ceiling is always 1 and 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from scripts.capacity.recorder import Recorder, percentiles
from scripts.capacity.runner import StepOutcome

DEFAULT_THRESHOLD_MS = 100.0
THRESHOLDS_MS = {"fanout": 500.0}
LATENCY_SERIES = {"fanout": "delivery", "idle": "connect"}
"""The series a mode's latency columns show (the others show ``latency``)."""
BENCH_PREFIX = "BENCH "


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step's figures (one table row, one ``BENCH`` line)."""

    mode: str
    target: str
    hubs: int
    workers: int
    vehicles: int
    sent: int
    answered: int
    errors: int
    timeouts: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    server_cpu_percent: float | None
    db_cpu_percent: float | None
    rss_mb: float | None
    rss_per_vehicle_kb: float | None
    generator_cpu_percent: float | None
    delivered_share: float | None
    threshold_ms: float
    passed: bool
    failures: list[str] = field(default_factory=list)
    extras: dict[str, object] = field(default_factory=dict)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _extras(mode: str, recorder: Recorder, sessions: int, expected: int) -> dict[str, object]:
    counts = recorder.counts
    extras: dict[str, object] = {"error_kinds": dict(recorder.error_kinds)}
    lag = percentiles(recorder.samples.get("lag", []))
    if lag.count:
        # How late the generator itself fired messages: if this is large, it is the bottleneck.
        extras.update(generator_lag_p50_ms=_round(lag.p50), generator_lag_p99_ms=_round(lag.p99))
    for name in ("pings_answered", "warm_failures", "load_warm_failures"):
        if counts[name]:
            extras[name] = counts[name]
    resume_errors = {k: v for k, v in counts.items() if k.startswith("resume_http_")}
    if resume_errors:
        extras["resume_errors"] = resume_errors
    if mode == "fanout":
        acks = percentiles(recorder.samples.get("latency", []))
        extras.update(
            sessions=sessions,
            delivered=counts["delivered"],
            expected_deliveries=expected,
            ack_p50_ms=_round(acks.p50),
            ack_p99_ms=_round(acks.p99),
        )
    if mode == "storm":
        connects = percentiles(recorder.samples.get("connect", []))
        extras.update(connect_p50_ms=_round(connects.p50), connect_p99_ms=_round(connects.p99))
    if mode == "estop":
        load = percentiles(recorder.samples.get("load_latency", []))
        extras.update(
            load_sent=counts["load_sent"],
            load_answered=counts["load_answered"],
            load_errors=counts["load_errors"],
            load_timeouts=counts["load_timeouts"],
            load_p50_ms=_round(load.p50),
            load_p99_ms=_round(load.p99),
        )
    return extras


def summarize(
    mode: str,
    target: str,
    vehicles: int,
    outcome: StepOutcome,
    *,
    baseline_rss: int | None,
    extras: dict[str, object] | None = None,
    hubs: int = 1,
    workers: int = 1,
) -> StepResult:
    """The step's result; ``baseline_rss`` is the server's RSS before any load."""
    recorder = outcome.recorder
    counts = recorder.counts
    series = percentiles(recorder.samples.get(LATENCY_SERIES.get(mode, "latency"), []))
    threshold = THRESHOLDS_MS.get(mode, DEFAULT_THRESHOLD_MS)
    sessions = counts["sessions"]
    expected = counts["answered"] * sessions
    share = None
    if mode == "fanout":
        share = counts["delivered"] / expected if expected else 0.0
    rss_mb = None if outcome.rss_bytes is None else outcome.rss_bytes / 2**20
    per_vehicle = None
    if outcome.rss_bytes is not None and baseline_rss is not None and vehicles:
        per_vehicle = (outcome.rss_bytes - baseline_rss) / vehicles / 1024
    generator = None
    if outcome.window_seconds > 0 and not outcome.failures:
        generator = 100 * recorder.generator_cpu_seconds / outcome.window_seconds
    sent = counts["sent"]
    passed = (
        not outcome.failures
        and sent > 0
        and counts["errors"] == 0
        and counts["answered"] == sent
        and series.p99 is not None
        and series.p99 < threshold
        and (share is None or share >= 1.0)
    )
    return StepResult(
        mode=mode,
        target=target,
        hubs=hubs,
        workers=workers,
        vehicles=vehicles,
        sent=sent,
        answered=counts["answered"],
        errors=counts["errors"],
        timeouts=counts["timeouts"],
        p50_ms=_round(series.p50),
        p90_ms=_round(series.p90),
        p99_ms=_round(series.p99),
        max_ms=_round(series.max),
        server_cpu_percent=_round(outcome.server_cpu_percent),
        db_cpu_percent=_round(outcome.db_cpu_percent),
        rss_mb=_round(rss_mb),
        rss_per_vehicle_kb=_round(per_vehicle),
        generator_cpu_percent=_round(generator),
        delivered_share=_round(share, 4),
        threshold_ms=threshold,
        passed=passed,
        failures=outcome.failures,
        extras={**_extras(mode, recorder, sessions, expected), **(extras or {})},
    )


def bench_line(result: StepResult) -> str:
    """``BENCH {json}``: one greppable line per step."""
    return BENCH_PREFIX + json.dumps(asdict(result), separators=(",", ":"))


COLUMNS = (
    ("target", "target", 8),
    ("vehicles", "vehicles", 8),
    ("sent", "sent", 7),
    ("answered", "answered", 8),
    ("errors", "errors", 6),
    ("timeouts", "lost", 6),
    ("p50_ms", "p50 ms", 8),
    ("p90_ms", "p90 ms", 8),
    ("p99_ms", "p99 ms", 8),
    ("max_ms", "max ms", 8),
    ("server_cpu_percent", "srv CPU%", 8),
    ("db_cpu_percent", "db CPU%", 7),
    ("rss_mb", "RSS MB", 7),
    ("rss_per_vehicle_kb", "KB/veh", 7),
    ("generator_cpu_percent", "gen CPU%", 8),
    ("generator_lag_p99_ms", "gen lag99", 9),
)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def mode_table(mode: str, results: Iterable[StepResult]) -> str:
    """The human table of one mode's steps."""
    rows = [result for result in results if result.mode == mode]
    columns = list(COLUMNS)
    if mode == "fanout":
        columns.append(("delivered_share", "delivered", 9))
    columns.append(("passed", "pass", 4))
    threshold = rows[0].threshold_ms if rows else THRESHOLDS_MS.get(mode, DEFAULT_THRESHOLD_MS)
    hub = next((row for row in rows if row.target == "hub"), None)
    served = f"hubs={hub.hubs} workers={hub.workers}; " if hub is not None else ""
    lines = [f"== {mode} ({served}pass: p99 < {threshold:.0f} ms, no errors, all answered) =="]
    lines.append("  ".join(title.rjust(width) for _, title, width in columns))
    for row in rows:
        values = {**row.extras, **asdict(row)}
        cells = []
        for key, _, width in columns:
            value = values.get(key)
            if key == "delivered_share" and isinstance(value, float):
                cells.append(f"{value:.2%}".rjust(width))
            else:
                cells.append(_cell(value).rjust(width))
        lines.append("  ".join(cells))
        if row.failures:
            lines.append(f"    step failed: {row.failures[0].strip().splitlines()[-1]}")
        kinds = row.extras.get("error_kinds")
        if isinstance(kinds, dict) and kinds:
            top = sorted(kinds.items(), key=lambda item: -item[1])[:4]
            lines.append("    errors: " + ", ".join(f"{name} {count}" for name, count in top))
    return "\n".join(lines)


def capacities(results: Iterable[StepResult]) -> dict[tuple[str, str], int | None]:
    """``(mode, target)`` → the most vehicles of a passing step (None if none passed)."""
    found: dict[tuple[str, str], int | None] = {}
    for result in results:
        key = (result.mode, result.target)
        best = found.get(key)
        if result.passed and (best is None or result.vehicles > best):
            found[key] = result.vehicles
        else:
            found.setdefault(key, None)
    return found


def capacity_table(results: list[StepResult]) -> str:
    """The closing summary: capacity per mode and target."""
    hub = next((result for result in results if result.target == "hub"), None)
    served = f"; hubs={hub.hubs} workers={hub.workers}" if hub is not None else ""
    lines = [f"== capacity (most vehicles of a passing step{served}) =="]
    for (mode, target), vehicles in capacities(results).items():
        tried = sorted(r.vehicles for r in results if (r.mode, r.target) == (mode, target))
        shown = "none passed" if vehicles is None else f"{vehicles} vehicles"
        lines.append(f"  {mode:7} {target:8} {shown:>14}   (steps tried: {tried})")
    return "\n".join(lines)
