"""``tvm-hub simulate``: its arguments, their checks, and the entry point the CLI calls.

Importing this module is cheap (no httpx, no trio-websocket): ``api.cli`` imports it to build
its parser; :func:`main` imports the runner only when a simulation actually starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from hub.simulator.geo import DEFAULT_SITE

DEFAULT_URL = "http://127.0.0.1:8000"
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,50}$")


class OptionsError(ValueError):
    """An argument is out of range; the message names it."""


@dataclass(frozen=True, slots=True)
class SimulationOptions:
    """A simulation run: how many vehicles, against which hub, for how long, how unruly."""

    vehicles: int
    admin_username: str
    admin_password: str
    url: str = DEFAULT_URL
    duration: float | None = None
    """Seconds; None runs until Ctrl-C."""
    prefix: str = "sim"
    seed: int | None = None
    offline_rate: float = 0.05
    """Probability per minute that a vehicle drops offline."""
    offline_seconds: tuple[float, float] = (20.0, 90.0)
    error_rate: float = 0.05
    """Probability per minute that a vehicle reports a fault."""
    tick: float = 1.0
    site: tuple[float, float] = DEFAULT_SITE

    def vehicle_id(self, index: int) -> str:
        """The id of vehicle ``index`` (0-based): ``sim_001``, ``sim_002``, …"""
        return f"{self.prefix}_{index + 1:03d}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` arguments to ``parser``."""
    parser.add_argument("--vehicles", type=int, required=True, help="how many vehicles")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"hub base URL (default {DEFAULT_URL})")
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: Ctrl-C)")
    parser.add_argument(
        "--admin-user", default=None, help="admin username (default $TVM_ADMIN_USERNAME)"
    )
    parser.add_argument(
        "--admin-password", default=None, help="admin password (default $TVM_ADMIN_PASSWORD)"
    )
    parser.add_argument("--prefix", default="sim", help="vehicle ids are <prefix>_001, …")
    parser.add_argument("--seed", type=int, default=None, help="random seed (repeatable runs)")
    parser.add_argument(
        "--offline-rate",
        type=float,
        default=0.05,
        help="probability per minute that a vehicle drops offline (default 0.05)",
    )
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.05,
        help="probability per minute that a vehicle reports a fault (default 0.05)",
    )


def from_arguments(
    arguments: argparse.Namespace, env: Mapping[str, str] | None = None
) -> SimulationOptions:
    """Checked options from parsed arguments; :class:`OptionsError` names the bad one."""
    env = os.environ if env is None else env
    username = arguments.admin_user or env.get("TVM_ADMIN_USERNAME")
    password = arguments.admin_password or env.get("TVM_ADMIN_PASSWORD")
    if not username or not password:
        raise OptionsError(
            "admin credentials are needed to register the vehicles: "
            "--admin-user/--admin-password or TVM_ADMIN_USERNAME/TVM_ADMIN_PASSWORD"
        )
    if arguments.vehicles < 1:
        raise OptionsError("--vehicles must be at least 1")
    if arguments.duration is not None and arguments.duration <= 0:
        raise OptionsError("--duration must be positive")
    if not _PREFIX.fullmatch(arguments.prefix):
        raise OptionsError("--prefix must be 1-50 letters, digits, '_' or '-'")
    for name in ("offline_rate", "error_rate"):
        if not 0.0 <= getattr(arguments, name) <= 1.0:
            raise OptionsError(f"--{name.replace('_', '-')} must be a probability in [0, 1]")
    if not arguments.url.startswith(("http://", "https://")):
        raise OptionsError("--url must start with http:// or https://")
    return SimulationOptions(
        vehicles=arguments.vehicles,
        admin_username=username,
        admin_password=password,
        url=arguments.url.rstrip("/"),
        duration=arguments.duration,
        prefix=arguments.prefix,
        seed=arguments.seed,
        offline_rate=arguments.offline_rate,
        error_rate=arguments.error_rate,
    )


def main(arguments: argparse.Namespace) -> int:
    """Run ``tvm-hub simulate``; the exit status (2 for bad arguments)."""
    try:
        options = from_arguments(arguments)
    except OptionsError as exc:
        print(f"tvm-hub simulate: {exc}", file=sys.stderr)
        return 2
    # Warnings and worse to stderr; stdout belongs to the progress display.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s"
    )
    from hub.simulator.runner import simulate

    return simulate(options)
