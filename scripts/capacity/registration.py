"""Registering the run's vehicles and logging them in, concurrently but bounded.

Each vehicle costs the hub two argon2 computations (the secret's hash at registration, its
check at login), so this is the slow part of a run; nothing is cached between runs. Setup is
not measured, so the ordinary httpx client is fine here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import trio

from scripts.bench_common import admin_headers, vehicle_token
from scripts.capacity.plan import Credential

SECONDS_PER_VEHICLE_BOUND = 1.0
BOUND_BASE = 120.0


async def admin_token(url: str) -> str:
    """The benchmark admin's access token (blocks for one login)."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        headers = await admin_headers(client)
    return headers["Authorization"].removeprefix("Bearer ")


async def register_vehicles(
    url: str,
    vehicle_ids: list[str],
    *,
    concurrency: int,
    progress: Callable[[str], None],
) -> list[Credential]:
    """Register and log in every vehicle (at most ``concurrency`` at once); in input order.

    Blocks until all are done; raises ``httpx.HTTPError`` on the first failure and
    ``trio.TooSlowError`` past a bound of 120 s plus 1 s per vehicle.
    """
    found: dict[str, Credential] = {}
    limiter = trio.CapacityLimiter(max(1, concurrency))
    started = time.monotonic()
    report_every = max(1, len(vehicle_ids) // 10)
    limits = httpx.Limits(max_connections=concurrency + 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        admin = await admin_headers(client)

        async def register(vehicle_id: str) -> None:
            async with limiter:
                token = await vehicle_token(client, admin, vehicle_id)
            found[vehicle_id] = Credential(vehicle_id, token)
            if len(found) % report_every == 0 or len(found) == len(vehicle_ids):
                elapsed = time.monotonic() - started
                progress(
                    f"registered {len(found)}/{len(vehicle_ids)} vehicles "
                    f"({len(found) / max(elapsed, 1e-9):.1f}/s)"
                )

        with trio.fail_after(BOUND_BASE + SECONDS_PER_VEHICLE_BOUND * len(vehicle_ids)):
            async with trio.open_nursery() as registrations:
                for vehicle_id in vehicle_ids:
                    registrations.start_soon(register, vehicle_id)
    return [found[vehicle_id] for vehicle_id in vehicle_ids]
