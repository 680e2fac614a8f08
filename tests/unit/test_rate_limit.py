"""Token buckets per vehicle and kind (CONTRACT §5), on trio's virtual clock.

Every test runs on ``autojump_clock``: ``trio.sleep`` moves virtual time exactly, so the
refill moments asserted here are exact, never approximate.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import trio
import trio.testing

from actors.rate_limit import Decision, RateLimiter
from api.bodies.telemetry import quota_headers
from api.errors import error_headers
from hub.config import RateLimit, Settings
from hub.errors import RateLimitedError

VEHICLE = "wheelchair_001"
OTHER = "wheelchair_002"
HANG_GUARD = 24 * 3600.0  # virtual seconds: the autojump clock gets there only if stuck

# kind → (burst, seconds per token) as the contract states them.
CONTRACT_LIMITS = {
    "location": (5, 1.0),
    "status": (5, 1.0),
    "battery": (2, 5.0),
    "error": (20, 0.1),
    "docking": (10, 0.5),
    "bulk": (3, 5.0),
}


def limiter(*, enabled: bool = True) -> RateLimiter:
    """A limiter with the hub's default (contract) limits."""
    return RateLimiter(Settings().rate_limits, enabled=enabled)


def drain(buckets: RateLimiter, kind: str, key: str = VEHICLE) -> list[Decision]:
    """Take until refused; return every decision, the refusal last."""
    decisions = []
    while True:
        decision = buckets.take(kind, key)
        decisions.append(decision)
        if not decision.allowed:
            return decisions
        assert len(decisions) <= 1000, "the bucket never ran dry"


def headers(decision: Decision) -> dict[str, str]:
    """The headers the edge answers a decision with: the quota, or the 429's."""
    return quota_headers(decision) if decision.allowed else error_headers(decision.refusal())


@dataclass
class Run:
    """A limiter under test, and the virtual time the test started at."""

    buckets: RateLimiter
    start: float

    async def at(self, seconds: float) -> None:
        """Move virtual time to exactly ``seconds`` after the start."""
        await trio.sleep_until(self.start + seconds)
        assert trio.current_time() == self.start + seconds

    def allowed(self, kind: str, key: str = VEHICLE) -> bool:
        """Whether one more ``kind`` request of ``key`` is let through (it takes a token)."""
        return self.buckets.take(kind, key).allowed


@contextmanager
def guarded(buckets: RateLimiter | None = None) -> Iterator[Run]:
    """A :class:`Run` of ``buckets`` (the contract limits if none) starting now; the body fails
    after HANG_GUARD virtual seconds instead of hanging."""
    with trio.fail_after(HANG_GUARD):
        yield Run(limiter() if buckets is None else buckets, trio.current_time())


def test_defaults_are_the_contract_limits() -> None:
    limits = Settings().rate_limits
    for kind, (burst, seconds_per_token) in CONTRACT_LIMITS.items():
        assert limits[kind].burst == burst, kind
        assert limits[kind].rate * seconds_per_token == pytest.approx(1.0), kind


@pytest.mark.parametrize("kind", sorted(CONTRACT_LIMITS))
async def test_each_kind_allows_its_burst_then_refuses(
    kind: str, autojump_clock: trio.testing.MockClock
) -> None:
    decisions = drain(limiter(), kind)
    burst = CONTRACT_LIMITS[kind][0]
    assert len(decisions) == burst + 1
    assert all(decision.allowed for decision in decisions[:-1])
    assert not decisions[-1].allowed


@pytest.mark.parametrize(
    ("kind", "retry_after", "just_before", "refilled"),
    [
        pytest.param("location", 1, 0.999, 1.0, id="location_after_exactly_one_second"),
        pytest.param("battery", 5, 4.999, 5.0, id="battery_after_exactly_five_seconds"),
    ],
)
async def test_a_drained_bucket_refills_after_exactly_its_refill_time(
    autojump_clock: trio.testing.MockClock,
    kind: str,
    retry_after: int,
    just_before: float,
    refilled: float,
) -> None:
    with guarded() as run:
        refused = drain(run.buckets, kind)[-1]
        assert refused.retry_after == retry_after

        await run.at(just_before)
        assert not run.allowed(kind)

        await run.at(refilled)
        assert run.allowed(kind)
        assert not run.allowed(kind)


async def test_location_is_not_refilled_at_0_999_seconds_even_without_earlier_probes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with guarded() as run:
        for _ in range(5):
            assert run.allowed("location")
        await run.at(0.999)
        assert not run.allowed("location")


async def test_bucket_never_holds_more_than_its_burst(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with guarded() as run:
        drain(run.buckets, "location")
        await run.at(3600.0)
        # An hour of silence buys five requests, not 3600.
        assert len(drain(run.buckets, "location")) == 6


async def test_refill_is_gradual_one_token_per_second(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with guarded() as run:
        drain(run.buckets, "location")
        await run.at(3.0)
        allowed = [run.allowed("location") for _ in range(4)]
        assert allowed == [True, True, True, False]


async def test_retry_after_is_whole_seconds_until_the_next_token(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with guarded() as run:
        buckets = run.buckets
        assert drain(buckets, "location")[-1].retry_after == 1
        await run.at(0.5)
        assert buckets.take("location", VEHICLE).retry_after == 1

        assert drain(buckets, "bulk", OTHER)[-1].retry_after == 5
        await run.at(2.5)
        # Half the 5 s refill is done: 2.5 s left, rounded up.
        assert buckets.take("bulk", OTHER).retry_after == 3
        await run.at(4.9)
        assert buckets.take("bulk", OTHER).retry_after == 1

        # Error reports refill every 0.1 s; retry_after is never below 1.
        assert drain(buckets, "error")[-1].retry_after == 1


async def test_refusal_does_not_spend_a_token(autojump_clock: trio.testing.MockClock) -> None:
    with guarded() as run:
        drain(run.buckets, "location")
        for _ in range(50):
            assert not run.allowed("location")
        await run.at(1.0)
        assert run.allowed("location")


async def test_buckets_are_per_vehicle_and_per_kind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    buckets = limiter()
    drain(buckets, "location")
    assert buckets.take("location", OTHER).allowed
    assert buckets.take("status", VEHICLE).allowed
    assert buckets.take("battery", VEHICLE).allowed
    assert not buckets.take("location", VEHICLE).allowed


async def test_headers_count_down_and_reset_is_epoch_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    buckets = limiter()
    before = time.time()
    decisions = drain(buckets, "location")
    after = time.time()
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    for decision in decisions[:-1]:
        answered = headers(decision)
        assert set(answered) == {
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        }
        assert answered["X-RateLimit-Limit"] == "5"
    refusal = decisions[-1].refusal()
    assert isinstance(refusal, RateLimitedError)
    assert (refusal.error, refusal.retry_after, refusal.limit, refusal.remaining) == (
        "rate_limit_exceeded",
        1,
        5,
        0,
    )
    refused = headers(decisions[-1])
    assert refused["Retry-After"] == "1"
    assert refused["X-RateLimit-Remaining"] == "0"
    # Full again 5 s after the burst (virtual time stood still meanwhile).
    reset = int(refused["X-RateLimit-Reset"])
    assert before + 5 <= reset <= after + 6


async def test_disabled_limiter_lets_everything_through(
    autojump_clock: trio.testing.MockClock,
) -> None:
    buckets = limiter(enabled=False)
    for kind in CONTRACT_LIMITS:
        decisions = [buckets.take(kind, VEHICLE) for _ in range(100)]
        assert all(decision.allowed for decision in decisions), kind
        assert all("Retry-After" not in headers(d) for d in decisions)


async def test_configured_limits_are_used(autojump_clock: trio.testing.MockClock) -> None:
    with guarded(RateLimiter({"location": RateLimit(rate=2.0, burst=1)})) as run:
        assert run.allowed("location")
        refused = run.buckets.take("location", VEHICLE)
        assert not refused.allowed
        assert refused.limit == 1
        await run.at(0.499)
        assert not run.allowed("location")
        await run.at(0.5)
        assert run.allowed("location")


async def test_a_refunded_take_gives_the_token_back(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter({"login_client": RateLimit(10 / 60, 10)})
    for _ in range(10):
        assert limiter.take("login_client", "veh_1").allowed
        limiter.refund("login_client", "veh_1")
    assert limiter.take("login_client", "veh_1").remaining == 9
