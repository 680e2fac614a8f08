"""Ingestion benchmark over the public HTTP API: bulk upload time and location POST rate.

Starts its own hub (``tvm-hub serve`` with an embedded PostgreSQL in a temporary directory,
rate limits off) unless ``--url`` points at a running one. Prints figures; asserts nothing.

    python scripts/bench_ingest.py                      # embedded database
    python scripts/bench_ingest.py --clients 20 --seconds 15
    DATABASE_URL=postgresql://… python scripts/bench_ingest.py
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import trio

ADMIN = ("bench-admin", "bench-admin-password")


def wire_time(moment: datetime) -> str:
    """A contract timestamp."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def hub_process() -> Iterator[str]:
    """A ``tvm-hub serve`` subprocess on a free port with rate limits off."""
    data_dir = tempfile.mkdtemp(prefix="tvm-bench-")
    port = free_port()
    env = {
        **os.environ,
        "TVM_PORT": str(port),
        "TVM_DATA_DIR": data_dir,
        "TVM_RATE_LIMIT_ENABLED": "false",
        "TVM_ADMIN_USERNAME": ADMIN[0],
        "TVM_ADMIN_PASSWORD": ADMIN[1],
        "TVM_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "hub.cli", "serve"]
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("hub did not become ready in 60 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=40)
        shutil.rmtree(data_dir, ignore_errors=True)


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    answer = await client.post(
        "/api/v1/auth/token",
        json={"grant_type": "password", "username": ADMIN[0], "password": ADMIN[1]},
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def vehicle_headers(
    client: httpx.AsyncClient, admin: dict[str, str], vehicle_id: str
) -> dict[str, str]:
    created = await client.post(
        "/api/v1/admin/vehicles", json={"vehicle_id": vehicle_id, "name": vehicle_id}, headers=admin
    )
    created.raise_for_status()
    credentials = created.json()
    login = await client.post(
        "/api/v1/auth/token",
        json={"client_id": credentials["client_id"], "client_secret": credentials["client_secret"]},
    )
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def location(moment: datetime) -> dict[str, object]:
    return {
        "timestamp": wire_time(moment),
        "location": {
            "latitude": 35.68 + random.random() / 100,
            "longitude": 139.76 + random.random() / 100,
            "heading": random.uniform(0, 360),
            "speed": random.uniform(0, 2),
            "accuracy": 0.1,
        },
    }


def bulk_body(vehicle_id: str, start: datetime, count: int) -> dict[str, object]:
    messages = []
    for index in range(count):
        moment = start + timedelta(milliseconds=10 * index)
        if index % 2:
            data: dict[str, object] = {
                "battery": {
                    "soc_percent": 80.0,
                    "voltage": 52.0,
                    "current": -5.0,
                    "temperature": 30.0,
                    "charging": False,
                    "estimated_runtime_minutes": 100,
                    "health_percent": 95.0,
                }
            }
            kind = "battery"
        else:
            data = {"location": location(moment)["location"]}
            kind = "location"
        messages.append({"type": kind, "timestamp": wire_time(moment), "data": data})
    return {
        "vehicle_id": vehicle_id,
        "offline_period": {
            "start": wire_time(start),
            "end": wire_time(start + timedelta(seconds=count / 100)),
        },
        "messages": messages,
    }


async def bulk_runs(client: httpx.AsyncClient, admin: dict[str, str], runs: int) -> list[float]:
    vehicle_id = f"bench_bulk_{random.randrange(10**6)}"
    headers = await vehicle_headers(client, admin, vehicle_id)
    timings = []
    for run in range(runs):
        body = bulk_body(vehicle_id, datetime.now(UTC) - timedelta(hours=run + 1), 1000)
        started = time.perf_counter()
        answer = await client.post(f"/api/v1/vehicle/{vehicle_id}/bulk", json=body, headers=headers)
        timings.append(time.perf_counter() - started)
        answer.raise_for_status()
        assert answer.json()["inserted"] == 1000, answer.text
    return timings


async def location_load(
    url: str, admin: dict[str, str], clients: int, seconds: float
) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    prefix = f"bench_loc_{random.randrange(10**6)}"

    async def one_client(index: int) -> None:
        nonlocal errors
        vehicle_id = f"{prefix}_{index}"
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            headers = await vehicle_headers(client, admin, vehicle_id)
            moment = datetime.now(UTC)
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                moment = max(moment + timedelta(milliseconds=1), datetime.now(UTC))
                started = time.perf_counter()
                answer = await client.post(
                    f"/api/v1/vehicle/{vehicle_id}/location", json=location(moment), headers=headers
                )
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    errors += 1

    async with trio.open_nursery() as nursery:
        for index in range(clients):
            nursery.start_soon(one_client, index)
    return len(latencies), latencies, errors


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_benchmarks(url: str, clients: int, seconds: float, bulk_repeats: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        admin = await admin_headers(client)
        timings = await bulk_runs(client, admin, bulk_repeats)
    print(
        f"bulk upload, 1000 messages: median {statistics.median(timings) * 1000:.0f} ms, "
        f"best {min(timings) * 1000:.0f} ms, worst {max(timings) * 1000:.0f} ms "
        f"over {len(timings)} uploads"
    )
    started = time.perf_counter()
    count, latencies, errors = await location_load(url, admin, clients, seconds)
    elapsed = time.perf_counter() - started
    print(
        f"location POSTs, {clients} concurrent clients for {seconds:.0f} s: "
        f"{count / seconds:.0f} req/s, p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
        f"{errors} non-200 (wall {elapsed:.1f} s incl. logins)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running hub (needs TVM_ADMIN credentials bench-admin)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bulk-repeats", type=int, default=5)
    arguments = parser.parse_args()
    if arguments.url:
        trio.run(
            run_benchmarks,
            arguments.url,
            arguments.clients,
            arguments.seconds,
            arguments.bulk_repeats,
        )
        return
    with hub_process() as url:
        trio.run(run_benchmarks, url, arguments.clients, arguments.seconds, arguments.bulk_repeats)


if __name__ == "__main__":
    main()
