"""Command-line options of ``python -m scripts.bench_capacity`` and the ``--smoke`` preset."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.capacity.plan import MODES, Timing

SMOKE_DEFAULTS: dict[str, object] = {
    "steps": "5,10",
    "fanout_steps": "5,10",
    "idle_steps": "20",
    "storm_steps": "20",
    "seconds": 2.0,
    "warmup": 1.0,
    "timeout": 5.0,
    "pause": 0.5,
    "sessions": 3,
    "ramp_seconds": 2.0,
    "estop_vehicles": 3,
    "estop_rate": 2.0,
    "hub_ping_interval": 1.0,
}
"""Small numbers so CI proves the script works in well under two minutes."""


@dataclass(frozen=True, slots=True)
class Options:
    """Everything a run needs from the command line."""

    modes: tuple[str, ...]
    steps: tuple[int, ...]
    fanout_steps: tuple[int, ...]
    idle_steps: tuple[int, ...]
    storm_steps: tuple[int, ...]
    timing: Timing
    pause: float
    sessions: int
    estop_load: int | None
    rest_capacity: int | None
    estop_vehicles: int
    estop_rate: float
    generator_processes: int
    connections_per_vehicle: int
    register_concurrency: int
    hub_ping_interval: float | None
    ceiling: bool
    plot: Path | None
    smoke: bool
    workers: int = 1
    hubs: int = 1

    def steps_for(self, mode: str) -> tuple[int, ...]:
        """The vehicle counts ``mode`` steps through (estop has one step, chosen at run time)."""
        return {
            "fanout": self.fanout_steps,
            "idle": self.idle_steps,
            "storm": self.storm_steps,
        }.get(mode, self.steps)


def _counts(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of counts: {text!r}"
        ) from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"counts must be positive: {text!r}")
    return values


def _modes(groups: Sequence[str]) -> tuple[str, ...]:
    chosen = {mode.strip() for group in groups for mode in group.split(",") if mode.strip()}
    unknown = chosen - set(MODES)
    if unknown:
        raise SystemExit(f"unknown mode(s) {sorted(unknown)}; choose from {', '.join(MODES)}")
    return tuple(mode for mode in MODES if mode in chosen) or MODES


def build_parser(description: str) -> argparse.ArgumentParser:
    """The argument parser (``description`` is the entry module's docstring)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("mode", nargs="*", help=f"modes to run, comma-separated or several: {', '.join(MODES)}")
    add(
        "--modes",
        "--mode",
        action="append",
        default=[],
        dest="mode_options",
        metavar="MODES",
        help="the same as the positional modes (default: all)",
    )
    add("--steps", default="250,500,1000,2000", help="vehicle counts for rest, ws (and ceiling)")
    add("--fanout-steps", default="50,100,250,500", help="vehicle counts for fanout")
    add("--idle-steps", default="10000", help="socket counts for idle")
    add("--storm-steps", default="2000", help="vehicle counts for storm")
    add("--seconds", type=float, default=20.0, help="measured seconds per step")
    add("--warmup", type=float, default=5.0, help="unmeasured seconds before each step")
    add("--timeout", type=float, default=10.0, help="a message unanswered after this is lost")
    add("--pause", type=float, default=2.0, help="seconds between steps")
    add("--sessions", type=int, default=50, help="fleet sessions in fanout")
    add("--ramp-seconds", type=float, default=20.0, help="idle: spread the connects over this")
    add("--storm-window", type=float, default=1.0, help="storm: all connect within this")
    add("--estop-load", type=int, help="estop: REST vehicles loading the hub meanwhile")
    add("--rest-capacity", type=int, help="estop: load is 80%% of this (else of measured rest)")
    add("--estop-vehicles", type=int, default=20, help="estop: vehicles that receive stops")
    add("--estop-rate", type=float, default=5.0, help="estop: stops per second")
    add("--generator-processes", type=int, default=1, help="split the load over N processes")
    add("--connections-per-vehicle", type=int, default=4, help="rest: keep-alive pool cap")
    add("--register-concurrency", type=int, default=8, help="registrations in flight")
    add("--connect-concurrency", type=int, default=64, help="socket connects in flight")
    add("--connect-timeout", type=float, default=10.0)
    add("--hub-ping-interval", type=float, help="TVM_WS_PING_INTERVAL_SECONDS for the hub")
    add(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run each hub as TVM_WORKERS=N worker processes on one port; CPU and RSS are "
        "then the whole hub's: parent, workers and their redis-server (default 1)",
    )
    add(
        "--hubs",
        type=int,
        default=1,
        metavar="N",
        help="run N hub processes acting as one, on free ports: one DATABASE_URL (required "
        "for N > 1), one REDIS_URL (else a private redis-server) and one JWT_SECRET; "
        "vehicle i uses hub i %% N, fleet session j hub (j + 1) %% N, stops go to another "
        "hub than the target's socket; CPU and RSS are summed (default 1)",
    )
    add(
        "--ceiling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="step the no-op stack ceiling too in rest mode (default on)",
    )
    add("--plot", type=Path, metavar="FILE.png", help="write p50/p99 plots (needs matplotlib)")
    add("--smoke", action="store_true", help="tiny numbers, a few seconds per mode (for CI)")
    return parser


def parse_options(argv: Sequence[str] | None, description: str) -> Options:
    """Parse ``argv``; with ``--smoke`` the smoke preset replaces the defaults."""
    parser = build_parser(description)
    probe, _ = parser.parse_known_args(argv)
    if probe.smoke:
        parser.set_defaults(**SMOKE_DEFAULTS)
    arguments = parser.parse_args(argv)
    timing = Timing(
        warmup=arguments.warmup,
        seconds=arguments.seconds,
        timeout=arguments.timeout,
        ramp=arguments.ramp_seconds,
        storm_window=arguments.storm_window,
        connect_timeout=arguments.connect_timeout,
        connect_concurrency=arguments.connect_concurrency,
    )
    if arguments.seconds <= 0 or arguments.warmup < 0 or arguments.timeout <= 0:
        parser.error("--seconds and --timeout must be positive, --warmup not negative")
    if arguments.estop_rate <= 0 or arguments.estop_vehicles < 1:
        parser.error("--estop-rate must be positive and --estop-vehicles at least 1")
    if arguments.workers < 1 or arguments.hubs < 1:
        parser.error("--workers and --hubs must be at least 1")
    try:
        steps = {
            name: _counts(getattr(arguments, name))
            for name in ("steps", "fanout_steps", "idle_steps", "storm_steps")
        }
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    return Options(
        modes=_modes([*arguments.mode, *arguments.mode_options]),
        steps=steps["steps"],
        fanout_steps=steps["fanout_steps"],
        idle_steps=steps["idle_steps"],
        storm_steps=steps["storm_steps"],
        timing=timing,
        pause=arguments.pause,
        sessions=arguments.sessions,
        estop_load=arguments.estop_load,
        rest_capacity=arguments.rest_capacity,
        estop_vehicles=arguments.estop_vehicles,
        estop_rate=arguments.estop_rate,
        generator_processes=max(1, arguments.generator_processes),
        connections_per_vehicle=max(1, arguments.connections_per_vehicle),
        register_concurrency=max(1, arguments.register_concurrency),
        hub_ping_interval=arguments.hub_ping_interval,
        ceiling=arguments.ceiling,
        plot=arguments.plot,
        smoke=arguments.smoke,
        workers=arguments.workers,
        hubs=arguments.hubs,
    )
