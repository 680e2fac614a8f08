"""Fuzz the REST API with Schemathesis against a real hub, once per kind of caller.

Starts ``python -m api.cli serve`` on an embedded PostgreSQL (:func:`bench_common.hub_process`),
logs in as the admin, registers a vehicle and logs it in, stores a little of everything so
the reads have rows to answer with, then runs ``schemathesis run --checks all`` against the
hub's own ``/openapi.json``: once with the admin token, once with the vehicle token. Fixed
seed, bounded examples per operation. Exit status 0 only if every run reports no failure.

Only the public HTTP interface is used. The check configuration, and why it differs from
Schemathesis' defaults where it does, is in ``scripts/api_fuzz.toml``.

    .venv/bin/python scripts/api_fuzz.py                      # both runs
    .venv/bin/python scripts/api_fuzz.py --role vehicle -n 10 # a quicker look
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.bench_common import ADMIN, hub_process, wire_time

CONFIG = Path(__file__).with_name("api_fuzz.toml")
HOOKS = Path(__file__).with_name("api_fuzz_hooks.py")
VEHICLE_ID = "fuzz_vehicle_01"
ROLES = ("vehicle", "admin")
DEFAULT_SEED = 20251216
DEFAULT_MAX_EXAMPLES = 25


@dataclass(frozen=True, slots=True)
class Tokens:
    """Bearer tokens of the callers the runs use."""

    admin: str
    vehicle: str

    def of(self, role: str) -> str:
        """The token for ``role``."""
        return self.admin if role == "admin" else self.vehicle


def _now(offset_seconds: float = 0.0) -> str:
    return wire_time(datetime.now(UTC) + timedelta(seconds=offset_seconds))


def login(client: httpx.Client, body: dict[str, str]) -> str:
    """An access token for these credentials."""
    answer = client.post("/api/v1/auth/token", json=body)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def prepare(base_url: str) -> Tokens:
    """Log in, register the fuzz vehicle and store one of each record for the reads."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        admin = login(
            client, {"grant_type": "password", "username": ADMIN[0], "password": ADMIN[1]}
        )
        admin_headers = {"Authorization": f"Bearer {admin}"}
        created = client.post(
            "/api/v1/admin/vehicles",
            json={"vehicle_id": VEHICLE_ID, "name": "Fuzz target"},
            headers=admin_headers,
        )
        created.raise_for_status()
        credentials = created.json()
        vehicle = login(
            client,
            {"client_id": credentials["client_id"], "client_secret": credentials["client_secret"]},
        )
        _seed(client, admin_headers, {"Authorization": f"Bearer {vehicle}"})
    return Tokens(admin=admin, vehicle=vehicle)


def _seed(client: httpx.Client, admin: dict[str, str], vehicle: dict[str, str]) -> None:
    """One record of each kind, a queued command, a reservation and an alert."""
    base = f"/api/v1/vehicle/{VEHICLE_ID}"
    reports = {
        "location": {
            "location": {
                "latitude": 35.68,
                "longitude": 139.76,
                "heading": 90.0,
                "speed": 0.5,
                "accuracy": 0.1,
            }
        },
        "status": {"state": "idle", "passengers_onboard": False, "operational_hours": True},
        "battery": {
            "battery": {
                "soc_percent": 80.0,
                "voltage": 52.0,
                "current": -5.0,
                "temperature": 30.0,
                "charging": False,
            }
        },
        "docking": {"phase": "approaching", "docking_success": False},
        "error": {
            "error_code": "NAV_PATH_NOT_FOUND",
            "severity": "error",
            "subsystem": "navigation",
        },
    }
    for offset, (kind, body) in enumerate(reports.items()):
        answer = client.post(
            f"{base}/{kind}", json={"timestamp": _now(-10 + offset), **body}, headers=vehicle
        )
        answer.raise_for_status()
    steps = (
        (f"{base}/commands?wait=false", {"type": "resume"}, (409,)),
        (
            f"{base}/commands?wait=false",
            {"type": "configure", "config_updates": {"audio_volume": 50}},
            (),
        ),
        (
            "/api/v1/reservations",
            {
                "passenger_name": "Fuzz Passenger",
                "pickup": {"waypoint_id": "lobby", "latitude": 35.68, "longitude": 139.76},
                "destination": {"waypoint_id": "room_1", "latitude": 35.69, "longitude": 139.77},
                "scheduled_time": _now(3600),
                "vehicle_id": VEHICLE_ID,
            },
            (),
        ),
    )
    for path, body, tolerated in steps:
        answer = client.post(path, json=body, headers=admin)
        if answer.status_code not in tolerated:
            answer.raise_for_status()


def write_config(directory: Path, values: dict[str, str]) -> Path:
    """``api_fuzz.toml`` with its ``${NAME}`` placeholders filled in, in ``directory``.

    Schemathesis fills in ``${NAME}`` in some settings but not in dictionary values, so the
    runner does it for the whole file.
    """
    text = CONFIG.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    path = directory / CONFIG.name
    path.write_text(text)
    return path


def schemathesis_command(
    config: Path, base_url: str, seed: int, max_examples: int, extra: Sequence[str]
) -> list[str]:
    """The ``schemathesis run`` command line of one run."""
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        str(seed),
        "--max-examples",
        str(max_examples),
        *extra,
    ]


def run(base_url: str, role: str, tokens: Tokens, args: argparse.Namespace) -> int:
    """One Schemathesis run as ``role``; its exit status."""
    extra = list(args.schemathesis_args)
    if args.report_dir:
        report = Path(args.report_dir) / role
        extra += ["--report", "junit,ndjson", "--report-dir", str(report)]
    values = {
        "TVM_FUZZ_TOKEN": tokens.of(role),
        "TVM_FUZZ_VEHICLE": VEHICLE_ID,
        "TVM_FUZZ_HOOKS": str(HOOKS.resolve()),
    }
    with tempfile.TemporaryDirectory(prefix="tvm-fuzz-") as directory:
        config = write_config(Path(directory), values)
        command = schemathesis_command(config, base_url, args.seed, args.max_examples, extra)
        print(f"\n=== schemathesis as {role}: {' '.join(command)}", flush=True)
        started = time.monotonic()
        status = subprocess.call(command, env={**os.environ, "NO_COLOR": "1"}, cwd=directory)
    print(f"=== {role}: exit {status} after {time.monotonic() - started:.0f} s", flush=True)
    return status


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--role", choices=(*ROLES, "all"), default="all")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("-n", "--max-examples", type=int, default=DEFAULT_MAX_EXAMPLES)
    parser.add_argument("--report-dir", default=None, help="write JUnit and NDJSON reports here")
    parser.add_argument(
        "schemathesis_args", nargs="*", help="passed on to `schemathesis run` (after --)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Start a hub, fuzz it as each role, stop it; 0 when no run failed."""
    args = _arguments(argv)
    roles = ROLES if args.role == "all" else (args.role,)
    # Refusals are what a fuzz run causes by the thousand; the hub logs errors only.
    with hub_process(log_level="ERROR") as base_url:
        tokens = prepare(base_url)
        statuses = {role: run(base_url, role, tokens, args) for role in roles}
    failed = [role for role, status in statuses.items() if status != 0]
    print(f"\nAPI fuzz: {'failures as ' + ', '.join(failed) if failed else 'no failures'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
