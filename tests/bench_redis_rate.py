"""What a rate-limit take costs with the buckets in Redis (TVM-SEC-003): a micro-benchmark.

    .venv/bin/python -m tests.bench_redis_rate [--url redis://127.0.0.1:6379/0] [--takes 3000]

Rows: the take script called once per take (one at a time, then 100 callers at once), the
batching :class:`~storage.redis_rate.RedisBuckets` the hub uses (1, 10, 100 callers), the
whole :class:`~actors.rate_limit.SharedRateLimiter` take (with its Decision) and the
in-process bucket for scale — each row µs of wall time per take, takes per second, µs of
this process' CPU per take — then the three at a paced load (500 and 2,000 takes/s from 100
vehicles, as a fleet reports), where the CPU per take is what the hub pays. Keys live under
a fresh ``tvm:bench:<hex>:`` prefix, deleted at the end. Not a test (pytest does not collect
it); the figures are in storage/redis_rate.py.
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections.abc import Awaitable, Callable

import coredis
import trio
import trio.lowlevel
from coredis.retry import NoRetryPolicy

from actors.rate_limit import RateLimiter, SharedRateLimiter
from hub.config import RateLimit
from storage import redis_rate
from storage.redis_rate import RedisBuckets

LIMIT = RateLimit(rate=1_000_000.0, burst=1_000_000)  # never refuses: the cost is the same


async def measure(
    name: str, takes: int, callers: int, take: Callable[[int], Awaitable[object]]
) -> None:
    """Run ``takes`` takes spread over ``callers`` concurrent tasks; print one row."""
    per_caller = takes // callers

    async def caller(index: int) -> None:
        for _ in range(per_caller):
            await take(index)

    wall, cpu = time.perf_counter(), time.process_time()
    async with trio.open_nursery() as nursery:
        for index in range(callers):
            nursery.start_soon(caller, index)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = per_caller * callers
    print(
        f"{name:<44} {wall / done * 1e6:8.1f} µs/take {done / wall:10,.0f} takes/s"
        f" {cpu / done * 1e6:8.1f} µs CPU"
    )


async def paced(
    name: str,
    rate: int,
    seconds: float,
    take: Callable[[int], Awaitable[object]],
    *,
    work: float = 0.0,
) -> None:
    """``rate`` takes a second for ``seconds``, as 100 vehicles at ``rate / 100`` each with
    their phases spread over the period (how a fleet reports); one row: µs of this process'
    CPU per take, callers' pacing included (the same for every variant)."""
    vehicles = 100
    period = vehicles / rate
    rounds = int(seconds / period)
    start = trio.current_time() + 0.05

    async def vehicle(index: int) -> None:
        for n in range(rounds):
            await trio.sleep_until(start + n * period + index * period / vehicles)
            spin_until = time.perf_counter() + work  # the rest of the report's handling
            while time.perf_counter() < spin_until:
                pass
            await take(index)

    wall, cpu = time.perf_counter(), time.process_time()
    async with trio.open_nursery() as nursery:
        for index in range(vehicles):
            nursery.start_soon(vehicle, index)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = rounds * vehicles
    print(f"{name:<44} {done / wall:8,.0f} takes/s paced {cpu / done * 1e6:8.1f} µs CPU/take")


async def main(url: str, takes: int) -> None:
    prefix = f"tvm:bench:{secrets.token_hex(4)}:"
    client: coredis.Redis[str] = coredis.Redis.from_url(
        url, decode_responses=True, retry_policy=NoRetryPolicy()
    )
    buckets = RedisBuckets(url, prefix=prefix)
    shared = SharedRateLimiter({"location": LIMIT}, buckets)
    local = RateLimiter({"location": LIMIT})
    interval = repr(1000.0 / LIMIT.rate)
    async with client, trio.open_nursery() as nursery:
        script = client.register_script(redis_rate._TAKE_SCRIPT)
        await nursery.start(buckets.run)

        async def direct(index: int) -> object:
            return await script(
                keys=[f"{prefix}location:v{index}"], args=["", interval, str(LIMIT.burst), "1"]
            )

        async def batched(index: int) -> object:
            return await buckets.take("location", f"v{index}", rate=LIMIT.rate, burst=LIMIT.burst)

        async def limiter(index: int) -> object:
            return await shared.take("location", f"v{index}")

        async def in_memory(index: int) -> object:
            await trio.lowlevel.checkpoint()
            return local.take("location", f"v{index}")

        await measure("warm-up (not a figure)", 300, 10, direct)
        await measure("EVALSHA per take, 1 caller", takes, 1, direct)
        await measure("EVALSHA per take, 100 callers", takes, 100, direct)
        for callers in (1, 10, 100):
            await measure(f"RedisBuckets (batched), {callers} callers", takes, callers, batched)
        for callers in (1, 100):
            await measure(f"SharedRateLimiter.take, {callers} callers", takes, callers, limiter)
        await measure("RateLimiter.take (in memory), 1 caller", takes, 1, in_memory)
        for rate, work in ((500, 0.0), (2000, 0.0), (500, 0.0014)):
            busy = f" +{work * 1e3:g} ms work" if work else ""
            await paced(f"EVALSHA per take, {rate}/s{busy}", rate, 3.0, direct, work=work)
            batches = buckets.batches
            await paced(f"RedisBuckets, {rate}/s{busy}", rate, 3.0, batched, work=work)
            print(f"  {rate * 3 / max(1, buckets.batches - batches):.1f} takes per batch")
            await paced(f"in memory, {rate}/s{busy}", rate, 3.0, in_memory, work=work)
        print(f"largest batch {buckets.largest_batch}, {buckets.batches} batches")
        nursery.cancel_scope.cancel()
    async with client:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(keys)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--takes", type=int, default=3000)
    arguments = parser.parse_args()
    trio.run(main, arguments.url, arguments.takes)
