"""Token buckets per (vehicle, kind) and per login key (CONTRACT §5).

Two kinds of limiter give the same :class:`Decision`:

- :class:`RateLimiter` keeps the buckets in this process, on trio's clock. Taking never
  blocks, so a VehicleActor's control task uses it directly. It is the only limiter without
  ``REDIS_URL``, and when the limits are off.
- :class:`SharedRateLimiter` keeps them in Redis (:mod:`storage.redis_rate`), so every hub of
  a fleet spends from the same buckets (TVM-SEC-003). Taking awaits Redis — one batched
  round trip; 250–500 µs of CPU a take when takes come one at a time, 25–70 µs when many
  are pending together (figures in :mod:`storage.redis_rate`) — so a vehicle's takes
  happen in its telemetry lane, never in its control task. When Redis does not answer
  within 250 ms the take is let through (limits off), counted in
  ``rate_limit_unavailable_total``; limits apply again as soon as Redis answers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import trio

from hub import metrics
from hub.config import RateLimit
from hub.errors import RateLimitedError
from storage.redis_rate import RateStoreUnavailable, RedisBuckets


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one take: allowed or not, and the state of the bucket (the quota)."""

    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int
    retry_after: int

    def refusal(self) -> RateLimitedError:
        """The 429 for a refused take (CONTRACT §5)."""
        return RateLimitedError(
            self.retry_after,
            limit=self.limit,
            remaining=self.remaining,
            reset_epoch=self.reset_epoch,
        )


@dataclass(slots=True)
class TokenBucket:
    """Holds up to ``burst`` tokens, refilled at ``rate`` per second of trio time."""

    rate: float
    burst: int
    tokens: float
    updated_at: float

    def take(self, now: float) -> bool:
        """Take one token if there is one; refill first for the time passed."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated_at) * self.rate)
        self.updated_at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def seconds_until_token(self) -> float:
        """How long until one whole token is back."""
        return max(0.0, (1 - self.tokens) / self.rate)

    def seconds_until_full(self) -> float:
        """How long until the bucket is full again."""
        return max(0.0, (self.burst - self.tokens) / self.rate)


class RateLimiter:
    """Buckets by key, created full on first use; idle full buckets are forgotten."""

    def __init__(self, limits: dict[str, RateLimit], *, enabled: bool = True) -> None:
        self._limits = limits
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self.enabled = enabled

    def take(self, kind: str, key: str) -> Decision:
        """Spend one token of ``kind`` for ``key`` (a vehicle id, client id or address)."""
        limit = self._limits[kind]
        now = trio.current_time()
        bucket = self._buckets.get((kind, key))
        if bucket is None:
            if len(self._buckets) > 100_000:
                self._forget_full(now)
            bucket = TokenBucket(limit.rate, limit.burst, float(limit.burst), now)
            self._buckets[(kind, key)] = bucket
        allowed = bucket.take(now) or not self.enabled
        return decision(limit, allowed=allowed, tokens=bucket.tokens, wall=time.time())

    def refund(self, kind: str, key: str) -> None:
        """Give back the token of an attempt that turned out not to count (a good login)."""
        bucket = self._buckets.get((kind, key))
        if bucket is not None:
            bucket.tokens = min(float(bucket.burst), bucket.tokens + 1)

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated_at) * bucket.rate >= bucket.burst:
                del self._buckets[key]


def decision(limit: RateLimit, *, allowed: bool, tokens: float, wall: float) -> Decision:
    """The decision for a bucket of ``limit`` holding ``tokens`` right after a take."""
    return Decision(
        allowed=allowed,
        limit=limit.burst,
        remaining=int(tokens),
        reset_epoch=math.ceil(wall + max(0.0, (limit.burst - tokens) / limit.rate)),
        retry_after=max(1, math.ceil(max(0.0, (1 - tokens) / limit.rate))),
    )


class SharedRateLimiter:
    """Buckets by key kept in Redis and shared by every hub using ``buckets``' Redis.

    Same buckets, same decisions as :class:`RateLimiter` (created full, refilled at ``rate``
    per second, at most ``burst``), on Redis' clock. While Redis does not answer, every take
    is allowed and counted in ``rate_limit_unavailable_total`` (by kind); the quota headers
    then come from an in-process bucket that refuses nothing.
    """

    def __init__(self, limits: dict[str, RateLimit], buckets: RedisBuckets) -> None:
        self._limits = limits
        self._buckets = buckets
        self._unchecked = RateLimiter(limits, enabled=False)

    async def take(self, kind: str, key: str) -> Decision:
        """Spend one token of ``kind`` for ``key``.

        Blocks for one Redis round trip, at most the buckets' timeout (250 ms); never raises
        for Redis trouble (the take is then allowed). Cancellation abandons the wait.
        """
        limit = self._limits[kind]
        try:
            state = await self._buckets.take(kind, key, rate=limit.rate, burst=limit.burst)
        except RateStoreUnavailable:
            metrics.rate_limit_unavailable.labels(kind).inc()
            return self._unchecked.take(kind, key)
        return decision(limit, allowed=state.taken, tokens=state.tokens, wall=time.time())

    async def refund(self, kind: str, key: str) -> None:
        """Give back the token of an attempt that turned out not to count (a good login).

        Blocks like :meth:`take`; a refund Redis does not answer is lost (that bucket holds
        one token less until it refills).
        """
        limit = self._limits[kind]
        try:
            await self._buckets.take(kind, key, rate=limit.rate, burst=limit.burst, cost=-1)
        except RateStoreUnavailable:
            self._unchecked.refund(kind, key)


Limiter = RateLimiter | SharedRateLimiter
"""Either limiter, for a caller that may await (logins)."""


async def take(limiter: Limiter, kind: str, key: str) -> Decision:
    """``limiter.take``, awaited if the buckets are shared (blocks as that does)."""
    if isinstance(limiter, SharedRateLimiter):
        return await limiter.take(kind, key)
    return limiter.take(kind, key)


async def refund(limiter: Limiter, kind: str, key: str) -> None:
    """``limiter.refund``, awaited if the buckets are shared (blocks as that does)."""
    if isinstance(limiter, SharedRateLimiter):
        await limiter.refund(kind, key)
    else:
        limiter.refund(kind, key)
