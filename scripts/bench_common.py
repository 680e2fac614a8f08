"""Shared by the benchmark scripts: a hub process of their own, logins, wire timestamps.

Scripts talk to the hub only through its public HTTP/WebSocket API, like any client.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import httpx
import trio

ADMIN = ("bench-admin", "bench-admin-password")


def wire_time(moment: datetime) -> str:
    """A contract timestamp."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


HUB_READY_TIMEOUT = 60.0
HUB_STOP_TIMEOUT = 40.0
WORKERS_STOP_TIMEOUT = 70.0
"""``serve --workers`` may take 55 s (its workers' graceful stop and drain) before it kills them."""
POSTGRES_STOP_TIMEOUT = 10.0
WORKER_LABEL = re.compile(r'hub_worker_info\{[^}]*worker="(\d+)"')


@dataclass(frozen=True, slots=True)
class HubHandle:
    """A hub subprocess this script started: where it listens, its pid and its data dir."""

    url: str
    pid: int
    data_dir: str


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; return the new soft limit.

    Child processes (the hub, generator workers) inherit the raised limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def stop_orphaned_postgres(data_dir: str) -> None:
    """Stop the embedded PostgreSQL a hub left running in ``data_dir`` (e.g. it was killed).

    The pid comes from the cluster's own ``postmaster.pid``, so only that server is signalled
    (SIGINT: fast shutdown). Blocks up to 10 s for it to go.
    """
    pid_file = os.path.join(data_dir, "postgres", "postmaster.pid")
    try:
        with open(pid_file) as lines:
            pid = int(lines.readline().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGINT)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + POSTGRES_STOP_TIMEOUT
    while time.monotonic() < deadline and os.path.exists(pid_file):
        time.sleep(0.1)


def _workers_seen(url: str) -> set[str]:
    """The worker ids that ``/metrics`` named on one new connection (empty on any failure)."""
    try:
        answer = httpx.get(f"{url}/metrics", timeout=1)
    except httpx.HTTPError:
        return set()
    return set(WORKER_LABEL.findall(answer.text)) if answer.status_code == 200 else set()


@contextmanager
def hub_server(
    *, rate_limits: bool = False, extra_env: Mapping[str, str] | None = None, workers: int = 1
) -> Iterator[HubHandle]:
    """A ``tvm-hub serve`` subprocess on a free port (rate limits off unless asked for).

    With ``workers`` > 1 it runs ``TVM_WORKERS=workers``: the pid is the parent's, its worker
    processes and (without ``REDIS_URL``) an embedded redis-server are its children.

    Blocks until ``/health/ready`` answers 200 and, with several workers, until each worker
    has answered ``/metrics`` once (each request on a new connection, which the kernel hands
    to one of the listening workers): at most 60 s in all, else ``SystemExit``. On exit the
    hub gets SIGTERM and up to 40 s (70 s with workers) to stop, then SIGKILL; an embedded
    PostgreSQL it left running is stopped, and its data dir is removed.
    """
    data_dir = tempfile.mkdtemp(prefix="tvm-bench-")
    port = free_port()
    env = {
        **os.environ,
        "TVM_PORT": str(port),
        "TVM_DATA_DIR": data_dir,
        "TVM_RATE_LIMIT_ENABLED": "true" if rate_limits else "false",
        "TVM_ADMIN_USERNAME": ADMIN[0],
        "TVM_ADMIN_PASSWORD": ADMIN[1],
        "TVM_LOG_LEVEL": "WARNING",
        "TVM_LOGIN_ATTEMPTS_PER_MINUTE": "100000",  # many simulated vehicles share one address
        # Registering thousands of vehicles is not what is measured: cheap secret hashes
        # (never allowed in production) make it take seconds instead of minutes.
        "TVM_ARGON2_TIME_COST": "1",
        "TVM_ARGON2_MEMORY_KIB": "1024",
        "TVM_ARGON2_PARALLELISM": "1",
        **(extra_env or {}),
    }
    if workers > 1:
        env["TVM_WORKERS"] = str(workers)
    command = [sys.executable, "-m", "api.cli", "serve"]
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HUB_READY_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"hub exited with code {process.returncode} before it was ready")
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit(f"hub did not become ready in {HUB_READY_TIMEOUT:.0f} s")
        seen: set[str] = set()
        while workers > 1 and len(seen) < workers:
            if process.poll() is not None:
                raise SystemExit(f"hub exited with code {process.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"only {len(seen)} of {workers} hub workers answered "
                    f"in {HUB_READY_TIMEOUT:.0f} s"
                )
            seen |= _workers_seen(url)
            time.sleep(0.05)
        yield HubHandle(url=url, pid=process.pid, data_dir=data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=WORKERS_STOP_TIMEOUT if workers > 1 else HUB_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if not os.environ.get("DATABASE_URL"):
            stop_orphaned_postgres(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def hub_process(*, rate_limits: bool = False, log_level: str = "WARNING") -> Iterator[str]:
    """A ``tvm-hub serve`` subprocess on a free port (rate limits off unless asked for)."""
    with hub_server(rate_limits=rate_limits, extra_env={"TVM_LOG_LEVEL": log_level}) as hub:
        yield hub.url


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """Log in as the benchmark admin."""
    answer = await client.post(
        "/api/v1/auth/token",
        json={"grant_type": "password", "username": ADMIN[0], "password": ADMIN[1]},
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def _post_through_unavailable(
    client: httpx.AsyncClient, path: str, body: dict[str, str], headers: dict[str, str] | None
) -> httpx.Response:
    """POST, retried (up to 5 times, after ``Retry-After``) while the hub answers 503."""
    for _ in range(5):
        answer = await client.post(path, json=body, headers=headers)
        if answer.status_code != 503:
            return answer
        await trio.sleep(min(float(answer.headers.get("Retry-After", "1")), 5.0))
    return answer


async def vehicle_headers(
    client: httpx.AsyncClient, admin: dict[str, str], vehicle_id: str
) -> dict[str, str]:
    """Register a vehicle and return its Authorization header.

    A 503 (the hub's database busy) is retried; a registration that committed although its
    answer was a 503 then reads 409, and the vehicle gets new credentials instead.
    """
    created = await _post_through_unavailable(
        client, "/api/v1/admin/vehicles", {"vehicle_id": vehicle_id, "name": vehicle_id}, admin
    )
    if created.status_code == 409:
        created = await _post_through_unavailable(
            client, f"/api/v1/admin/vehicles/{vehicle_id}/rotate-secret", {}, admin
        )
    created.raise_for_status()
    credentials = created.json()
    login = await _post_through_unavailable(
        client,
        "/api/v1/auth/token",
        {"client_id": credentials["client_id"], "client_secret": credentials["client_secret"]},
        None,
    )
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def vehicle_token(client: httpx.AsyncClient, admin: dict[str, str], vehicle_id: str) -> str:
    """Register a vehicle and return its access token."""
    headers = await vehicle_headers(client, admin, vehicle_id)
    return headers["Authorization"].removeprefix("Bearer ")


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
