"""Rate-limit buckets shared through Redis (TVM-SEC-003): what one hub spends, every hub sees.

A real Redis (the ``redis_url`` fixture: 127.0.0.1:6379 when reachable); every test keeps to
keys under a prefix of its own, deleted afterwards. Two :class:`RedisBuckets`, each with its
own client, stand for two hubs. Refill is tested on a clock passed to the script (exact, no
sleeping), and once on Redis' own clock with a 50 ms refill. Redis going away is a closed
port, or a proxy (:mod:`tests.integration.redis_proxy`) closed, opened again or made silent.
The last tests run real hubs (a real PostgreSQL) with ``REDIS_URL`` set.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import coredis
import pytest
import trio

from actors.rate_limit import Decision, SharedRateLimiter
from api.serve import login_limits
from hub import metrics
from hub.config import RateLimit, Settings
from storage import redis_rate
from storage.redis_rate import RedisBuckets
from tests.integration.harness import Timeline, count, location_body, running_hub
from tests.integration.redis_proxy import RedisProxy
from tests.integration.test_rate_limits import assert_limit_headers, assert_refused

VEHICLE = "wheelchair_001"
LOCATION = {"location": RateLimit(rate=1.0, burst=5)}
BATTERY = {"battery": RateLimit(rate=1 / 5, burst=2)}


class Clock:
    """A clock the test moves by hand (seconds), passed to the take script instead of TIME."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def _deleting(redis_url: str, pattern: str) -> None:
    """Delete every key matching ``pattern`` (a test's own, after the test)."""
    client: coredis.Redis[str] = coredis.Redis.from_url(redis_url, decode_responses=True)
    async with client:
        keys = [key async for key in client.scan_iter(match=pattern)]
        if keys:
            await client.delete(keys)


@pytest.fixture
async def namespace(redis_url: str) -> AsyncIterator[str]:
    """A hub namespace of this test's own (its buckets are ``<namespace>:rate:…``); its
    keys are deleted afterwards."""
    mine = f"test-rate-{secrets.token_hex(4)}"
    yield mine
    await _deleting(redis_url, mine + ":*")


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    mine = f"tvm:test:rate:{secrets.token_hex(4)}:"
    yield mine
    await _deleting(redis_url, mine + "*")


@asynccontextmanager
async def serving(*buckets: RedisBuckets) -> AsyncIterator[None]:
    """The buckets' client tasks, running for the block."""
    async with trio.open_nursery() as nursery:
        for each in buckets:
            await nursery.start(each.run)
        yield
        nursery.cancel_scope.cancel()


def unavailable(kind: str) -> float:
    """``rate_limit_unavailable_total`` of ``kind`` so far."""
    value = metrics.REGISTRY.get_sample_value("rate_limit_unavailable_total", {"kind": kind})
    return value or 0.0


def free_port() -> int:
    """A local port nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def takes(
    limiter: SharedRateLimiter, kind: str, n: int, key: str = VEHICLE
) -> list[Decision]:
    return [await limiter.take(kind, key) for _ in range(n)]


# ---------------------------------------------------------------------------------------------
# Two limiters (two hubs) on one Redis


async def test_two_hubs_share_one_burst_and_the_sixth_take_is_refused_on_either(
    redis_url: str, prefix: str
) -> None:
    clock = Clock()
    hub_a = RedisBuckets(redis_url, prefix=prefix, clock=clock)
    hub_b = RedisBuckets(redis_url, prefix=prefix, clock=clock)
    on_a, on_b = SharedRateLimiter(LOCATION, hub_a), SharedRateLimiter(LOCATION, hub_b)
    with trio.fail_after(10):
        async with serving(hub_a, hub_b):
            before = time.time()
            first = await takes(on_a, "location", 3)
            then = await takes(on_b, "location", 2)
            assert all(decision.allowed for decision in first + then)
            assert [d.remaining for d in first + then] == [4, 3, 2, 1, 0]
            assert {d.limit for d in first + then} == {5}

            for refused in (
                await on_a.take("location", VEHICLE),
                await on_b.take("location", VEHICLE),
            ):
                assert not refused.allowed
                error = refused.refusal()
                assert (error.retry_after, error.limit, error.remaining) == (1, 5, 0)
                # Full again 5 s after the burst (the script's clock stood still meanwhile).
                assert before + 5 <= error.reset_epoch <= time.time() + 6

            # Another vehicle, another kind of the same vehicle: buckets of their own.
            assert (await on_b.take("location", "wheelchair_002")).remaining == 4
            status = SharedRateLimiter({"status": RateLimit(1.0, 5)}, hub_a)
            assert (await status.take("status", VEHICLE)).remaining == 4
    assert hub_a.takes + hub_b.takes == 9


async def test_a_shared_bucket_refills_at_its_rate_and_never_above_its_burst(
    redis_url: str, prefix: str
) -> None:
    clock = Clock()
    start = clock.now
    hub_a = RedisBuckets(redis_url, prefix=prefix, clock=clock)
    hub_b = RedisBuckets(redis_url, prefix=prefix, clock=clock)
    on_a, on_b = SharedRateLimiter(BATTERY, hub_a), SharedRateLimiter(BATTERY, hub_b)
    with trio.fail_after(10):
        async with serving(hub_a, hub_b):
            assert (await on_a.take("battery", VEHICLE)).allowed
            assert (await on_b.take("battery", VEHICLE)).allowed
            refused = await on_a.take("battery", VEHICLE)
            assert not refused.allowed and refused.retry_after == 5

            clock.now = start + 2.5  # half of the 5 s refill: 2.5 s left
            assert (await on_b.take("battery", VEHICLE)).retry_after == 3
            clock.now = start + 4.999
            just_before = await on_b.take("battery", VEHICLE)
            assert not just_before.allowed and just_before.retry_after == 1
            clock.now = start + 5.0
            assert (await on_a.take("battery", VEHICLE)).allowed
            assert not (await on_b.take("battery", VEHICLE)).allowed

            clock.now = start + 3600.0  # an hour of silence buys the burst, not 720 tokens
            allowed = [d.allowed for d in await takes(on_b, "battery", 3)]
            assert allowed == [True, True, False]


async def test_on_redis_clock_a_bucket_refills_and_an_idle_full_one_vanishes(
    redis_url: str, prefix: str
) -> None:
    fast = {"location": RateLimit(rate=20.0, burst=1)}  # one token per 50 ms
    hub_a, hub_b = RedisBuckets(redis_url, prefix=prefix), RedisBuckets(redis_url, prefix=prefix)
    on_a, on_b = SharedRateLimiter(fast, hub_a), SharedRateLimiter(fast, hub_b)
    client: coredis.Redis[str] = coredis.Redis.from_url(redis_url, decode_responses=True)
    key = f"{prefix}location:{VEHICLE}"
    with trio.fail_after(10):
        async with client, serving(hub_a, hub_b):
            assert (await on_a.take("location", VEHICLE)).allowed
            refused = await on_b.take("location", VEHICLE)
            assert not refused.allowed and refused.retry_after == 1
            assert 0 < await client.pttl(key) <= 50  # expires once it would be full
            await trio.sleep(0.06)
            assert (await on_b.take("location", VEHICLE)).allowed
            await trio.sleep(0.06)
            assert await client.exists([key]) == 0  # idle and full: gone


async def test_login_buckets_are_shared_and_a_refund_on_one_hub_counts_on_the_other(
    redis_url: str, prefix: str
) -> None:
    limits = login_limits(Settings(login_attempts_per_minute=4))
    clock = Clock()
    hub_a = RedisBuckets(redis_url, prefix=prefix, clock=clock)
    hub_b = RedisBuckets(redis_url, prefix=prefix, clock=clock)
    on_a, on_b = SharedRateLimiter(limits, hub_a), SharedRateLimiter(limits, hub_b)
    address = "192.0.2.7"
    with trio.fail_after(10):
        async with serving(hub_a, hub_b):
            assert all(d.allowed for d in await takes(on_a, "login_address", 2, address))
            assert all(d.allowed for d in await takes(on_b, "login_address", 2, address))
            refused = await on_a.take("login_address", address)
            assert not refused.allowed and refused.retry_after == 15  # 4 a minute
            await on_b.refund("login_address", address)  # that attempt was a good login
            assert (await on_a.take("login_address", address)).allowed
            assert not (await on_b.take("login_address", address)).allowed
            # The client's bucket is another one.
            assert (await on_b.take("login_client", "veh_client_1")).remaining == 3


# ---------------------------------------------------------------------------------------------
# Redis away: takes let through, counted, bounded; limits back by themselves


async def test_with_redis_on_a_closed_port_takes_are_allowed_counted_and_quick(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    buckets = RedisBuckets(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix)
    limiter = SharedRateLimiter(LOCATION, buckets)
    before = unavailable("location")
    with trio.fail_after(5):
        async with serving(buckets):
            started = trio.current_time()
            decisions = await takes(limiter, "location", 20)
            elapsed = trio.current_time() - started
    assert all(decision.allowed for decision in decisions)  # limits off, not a 429 in sight
    assert unavailable("location") - before == 20
    assert elapsed < 1.0, elapsed  # one failed connect at most; then Redis is skipped
    assert [d.limit for d in decisions[:2]] == [5, 5]  # the headers still describe the limit
    assert buckets.describe()["redis"] == "down"
    warnings = [r for r in caplog.records if "Redis does not answer" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once per minute, not once per take


async def test_limits_apply_again_by_themselves_when_redis_is_back(
    redis_url: str, prefix: str
) -> None:
    proxy = RedisProxy(redis_url)
    clock = Clock()
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            await proxy.open(nursery)
            await proxy.close()  # the port is known; nothing listens on it
            buckets = RedisBuckets(proxy.url, prefix=prefix, recheck_interval=0.1, clock=clock)
            limiter = SharedRateLimiter(LOCATION, buckets)
            async with serving(buckets):
                before = unavailable("location")
                assert all(d.allowed for d in await takes(limiter, "location", 8))
                assert unavailable("location") - before == 8

                await proxy.open(nursery)
                await trio.sleep(0.3)  # past the recheck interval
                before = unavailable("location")
                allowed = [d.allowed for d in await takes(limiter, "location", 6)]
                assert allowed == [True] * 5 + [False]
                assert unavailable("location") == before
                assert buckets.describe()["redis"] == "up"

                await proxy.close()  # and away again, mid-life: a connection it held dies
                started = trio.current_time()
                assert (await limiter.take("location", VEHICLE)).allowed
                assert trio.current_time() - started < 0.5
                assert unavailable("location") == before + 1
            nursery.cancel_scope.cancel()


async def test_a_redis_that_does_not_answer_costs_one_short_wait_then_none(
    redis_url: str, prefix: str
) -> None:
    proxy = RedisProxy(redis_url)
    proxy.silent = True
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await proxy.open(nursery)
            buckets = RedisBuckets(proxy.url, prefix=prefix, timeout=0.25)
            limiter = SharedRateLimiter(LOCATION, buckets)
            before = unavailable("location")
            async with serving(buckets):
                started = trio.current_time()
                assert (await limiter.take("location", VEHICLE)).allowed
                first = trio.current_time() - started
                started = trio.current_time()
                assert (await limiter.take("location", VEHICLE)).allowed
                second = trio.current_time() - started
            assert 0.2 <= first < 0.6, first  # the take's timeout, not coredis' own
            assert second < 0.2, second  # Redis is known to be away: no second wait
            assert unavailable("location") - before == 2
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------------
# Real hubs with REDIS_URL


SLOW_LOCATION = {**Settings().rate_limits, "location": RateLimit(rate=1 / 10, burst=5)}


async def test_two_hubs_share_a_vehicle_burst_and_the_failed_logins_of_an_address(
    database_url: str, redis_url: str, namespace: str
) -> None:
    limits = {
        "redis_url": redis_url,
        "redis_namespace": namespace,
        "rate_limit_enabled": True,
        "rate_limits": SLOW_LOCATION,  # no refill during the test, however slow the machine
        "login_attempts_per_minute": 3,
    }
    with trio.fail_after(90):
        async with running_hub(database_url, **limits) as hub_a:
            vehicle = await hub_a.register_vehicle(VEHICLE)  # B loads it when it starts
            async with running_hub(database_url, **limits) as hub_b:
                now = Timeline()
                answers = [
                    await hub_a.post(vehicle, "location", location_body(now())) for _ in range(3)
                ]
                answers += [
                    await hub_b.post(vehicle, "location", location_body(now())) for _ in range(2)
                ]
                for answer in answers:
                    assert answer.status_code == 200, answer.text
                    assert_limit_headers(answer, 5)
                remaining = [int(a.headers["X-RateLimit-Remaining"]) for a in answers]
                assert remaining == [4, 3, 2, 1, 0]
                for hub in (hub_a, hub_b):
                    refused = await hub.post(vehicle, "location", location_body(now()))
                    assert assert_refused(refused, 5) == 10
                assert await count(hub_a, "vehicle_locations", VEHICLE) == 5  # 429s store nothing

                # Failed logins from one address: 3 a minute across both hubs.
                bad = {"client_id": "veh_nobody", "client_secret": "wrong-secret-123"}
                failed = [(await hub.login(**bad)).status_code for hub in (hub_a, hub_b, hub_a)]
                assert failed == [401, 401, 401]
                assert (await hub_b.login(**bad)).status_code == 429

                client: coredis.Redis[str] = coredis.Redis.from_url(
                    redis_url, decode_responses=True
                )
                async with client:
                    held = await client.hgetall(f"{namespace}:rate:location:{VEHICLE}")
                assert float(held["tokens"]) < 1


async def test_a_hub_whose_redis_is_away_answers_without_limits_and_limits_again_when_back(
    database_url: str, redis_url: str, namespace: str
) -> None:
    proxy = RedisProxy(redis_url)
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            await proxy.open(nursery)
            await proxy.close()
            settings = {
                "redis_url": proxy.url,
                "redis_namespace": namespace,
                "rate_limit_enabled": True,
                "rate_limits": SLOW_LOCATION,
            }
            async with running_hub(database_url, **settings) as hub:
                vehicle = await hub.register_vehicle(VEHICLE)
                now = Timeline()
                before = unavailable("location")
                with trio.fail_after(10):
                    away = [
                        await hub.post(vehicle, "location", location_body(now())) for _ in range(8)
                    ]
                assert [answer.status_code for answer in away] == [200] * 8
                assert unavailable("location") - before == 8

                await proxy.open(nursery)
                await trio.sleep(redis_rate.RECHECK_INTERVAL + 0.3)
                back = [
                    (await hub.post(vehicle, "location", location_body(now()))).status_code
                    for _ in range(6)
                ]
                assert back == [200] * 5 + [429]
            nursery.cancel_scope.cancel()
