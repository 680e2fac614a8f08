"""Token buckets per (vehicle, kind) and per login key (CONTRACT §5), on trio's clock."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import trio

from hub.config import RateLimit
from hub.errors import RateLimitedError


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
        wall = time.time()
        return Decision(
            allowed=allowed,
            limit=limit.burst,
            remaining=int(bucket.tokens),
            reset_epoch=math.ceil(wall + bucket.seconds_until_full()),
            retry_after=max(1, math.ceil(bucket.seconds_until_token())),
        )

    def refund(self, kind: str, key: str) -> None:
        """Give back the token of an attempt that turned out not to count (a good login)."""
        bucket = self._buckets.get((kind, key))
        if bucket is not None:
            bucket.tokens = min(float(bucket.burst), bucket.tokens + 1)

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated_at) * bucket.rate >= bucket.burst:
                del self._buckets[key]
