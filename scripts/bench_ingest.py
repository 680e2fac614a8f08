"""Ingestion benchmark over the public HTTP API: bulk upload time and location POST rate.

Starts its own hub (``tvm-hub serve`` with an embedded PostgreSQL in a temporary directory,
rate limits off) unless ``--url`` points at a running one. Prints figures; asserts nothing.

    python -m scripts.bench_ingest                      # embedded database
    python -m scripts.bench_ingest --clients 20 --seconds 15
    DATABASE_URL=postgresql://… python -m scripts.bench_ingest
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx
import trio

from scripts.bench_common import (
    admin_headers,
    hub_process,
    percentile,
    vehicle_headers,
    wire_time,
)


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
        # Encoded before the clock starts, as a vehicle holds its buffer: what is timed is
        # the upload and the hub's answer, not this script's JSON encoder.
        content = json.dumps(body).encode()
        started = time.perf_counter()
        answer = await client.post(
            f"/api/v1/vehicle/{vehicle_id}/bulk",
            content=content,
            headers={**headers, "Content-Type": "application/json"},
        )
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
