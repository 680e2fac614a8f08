"""Token buckets kept in Redis, so every hub of a fleet spends from the same buckets
(TVM-SEC-003; coredis, native on trio).

A bucket is a small hash ``<prefix><kind>:<key>`` holding ``tokens`` and ``at`` (the time
they were counted, in ms). One Lua script refills each bucket for the time passed, takes a
token (or gives one back) and stores the result, atomically; a bucket that is full again is
deleted, and every other one expires once it would be full (its TTL is the time to refill),
so idle buckets vanish. Time is Redis ``TIME`` — one clock for every hub — unless a clock is
passed in (tests). Needs Redis ≥ 5 (scripts replicated by effects), standalone or a primary
with replicas, not Redis Cluster: one script call holds the buckets of many vehicles.

**Batching.** :meth:`RedisBuckets.take` does not call Redis itself: it queues the take and
waits, and one task (:meth:`RedisBuckets.run`) sends whatever takes are queued — of every
vehicle and login — in one ``EVALSHA``, up to :data:`MAX_BATCH` at a time. Under light load
a batch is one take; the busier the hub, the more takes share a round trip.

**Cost, measured** with ``.venv/bin/python -m tests.bench_redis_rate`` (Redis 7.0 at
127.0.0.1:6379, the 2-CPU development machine while other test suites ran on it: three runs,
3,000 takes per row; µs of wall time / of this process' CPU per take)::

    one EVALSHA per take, 1 caller          300–470 µs   240–330 µs CPU  (~2,500 takes/s)
    one EVALSHA per take, 100 callers       140–200 µs   120–170 µs CPU  (~6,000 takes/s)
    batched (this module), 1 caller         380–490 µs   300–430 µs CPU  (~2,300 takes/s)
    batched, 10 callers                      60–90 µs     45–70 µs CPU   (~14,000 takes/s)
    batched, 100 callers                     30–50 µs     23–38 µs CPU   (~25,000 takes/s)
    in-memory bucket (no Redis)               6–9 µs       6–9 µs CPU    (~140,000 takes/s)

Paced as a fleet reports (100 vehicles, 500 or 2,000 takes/s, phases spread), takes rarely
overlap (1.0–1.4 per batch) and a take costs 250–500 µs of CPU more than an in-memory one,
batched or not; batching pays when takes pile up (bursts, reconnect storms, a saturated
loop): 10 pending at once cost ~60 µs each instead of ~150. Nearly all of it is coredis'
per-command work in Python — about five trio scheduler passes per command (its writer and
reader tasks) — not the network (Redis answers in ~80 µs). So with shared limits a hub near
its capacity (~600 reports/s at ~1.6 ms CPU each) spends some 15–25 % more CPU per report.
Local buckets that lease tokens from Redis would cost almost nothing per take but cannot hold
the contract's small bursts (2–20 tokens) fleet-wide: a lease strands tokens on one hub, so
two hubs could let through up to twice the burst. Exact shared buckets were chosen.

**Redis away.** A take that cannot be answered within ``timeout`` (250 ms) — Redis
unreachable, slow, or this task not running — raises :class:`RateStoreUnavailable` at
once or at that deadline; after a failed call, takes skip Redis for ``recheck_interval``
(1 s) and then try again by themselves, so an outage costs at most one wait per second and
nothing hangs. Redis loss is logged at most once per ``log_interval``; callers decide what
an unavailable take means (the hub lets it through: limits off, counted).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import coredis
import trio
import trio.lowlevel
from coredis.retry import NoRetryPolicy

from storage.redis_channels import describe_error

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "tvm:rate:"
TAKE_TIMEOUT = 0.25
RECHECK_INTERVAL = 1.0
LOG_INTERVAL = 60.0
MAX_BATCH = 256
QUEUE_SIZE = 10_000

# KEYS: the buckets. ARGV[1]: now in ms ("" = Redis TIME); then per bucket: ms per token,
# burst, cost (1 takes a token, -1 gives one back). Returns per bucket: 1/0 (taken or not)
# and the tokens left, as text (Lua numbers would be truncated to integers on the way out).
_TAKE_SCRIPT = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[1])
end
local out = {}
for i, key in ipairs(KEYS) do
  local base = 2 + (i - 1) * 3
  local interval = tonumber(ARGV[base])
  local burst = tonumber(ARGV[base + 1])
  local cost = tonumber(ARGV[base + 2])
  local held = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(held[1])
  local at = tonumber(held[2])
  if tokens == nil or at == nil then
    tokens = burst
    at = now
  end
  if now > at then
    tokens = math.min(burst, tokens + (now - at) / interval)
    at = now
  end
  local taken = 1
  if cost > 0 then
    if tokens >= cost then tokens = tokens - cost else taken = 0 end
  else
    tokens = math.min(burst, tokens - cost)
  end
  local ttl = math.ceil((burst - tokens) * interval)
  if ttl > 0 then
    redis.call('HSET', key, 'tokens', string.format('%.17g', tokens),
      'at', string.format('%.17g', at))
    redis.call('PEXPIRE', key, ttl)
  else
    redis.call('DEL', key)
  end
  out[2 * i - 1] = taken
  out[2 * i] = string.format('%.17g', tokens)
end
return out
"""


def _cancellation_of(exc: BaseException) -> BaseException:
    """The cancellation alone, out of what coredis raised while being cancelled (its clean-up
    can add a ``ClosedResourceError`` beside it, which would read as a crash)."""
    if isinstance(exc, BaseExceptionGroup):
        cancelled = exc.subgroup(trio.Cancelled)
        if cancelled is not None:
            return cancelled
    return exc


class RateStoreUnavailable(Exception):
    """Redis could not answer a take in time (unreachable, slow, or not connected yet)."""


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket right after one take: whether the token was there, and the tokens left."""

    taken: bool
    tokens: float


@dataclass(slots=True)
class _Pending:
    key: str
    interval_ms: float
    burst: int
    cost: int
    done: trio.Event = field(default_factory=trio.Event)
    state: BucketState | None = None
    error: str | None = None
    abandoned: bool = False

    def resolve(self, state: BucketState | None, error: str | None) -> None:
        self.state, self.error = state, error
        self.done.set()


class RedisBuckets:
    """Shared token buckets (see the module docstring); :meth:`run` keeps the client open.

    One client (a connection pool) for the hub's life. ``clock`` (seconds, any epoch) replaces
    Redis ``TIME`` — for tests; the buckets' TTLs stay in real time.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        timeout: float = TAKE_TIMEOUT,
        recheck_interval: float = RECHECK_INTERVAL,
        log_interval: float = LOG_INTERVAL,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._url = url
        self.prefix = DEFAULT_PREFIX if prefix is None else prefix
        self._timeout = timeout
        self._recheck_interval = recheck_interval
        self._log_interval = log_interval
        self._clock = clock
        self._send, self._receive = trio.open_memory_channel[_Pending](QUEUE_SIZE)
        self._script: coredis.commands.Script[str] | None = None  # while the client is open
        self._down_until = -math.inf
        self._down_since: float | None = None
        self._logged_at = -math.inf
        self._outage_logged = False
        self._unanswered = 0  # takes not answered since the last warning
        self.last_error: str | None = None
        self.batches = 0
        self.takes = 0
        self.largest_batch = 0

    # --- taking (bounded waits) -----------------------------------------------------------

    async def take(
        self, kind: str, key: str, *, rate: float, burst: int, cost: int = 1
    ) -> BucketState:
        """Refill the bucket ``kind``/``key`` (``rate`` tokens per second, at most ``burst``),
        then take ``cost`` tokens from it if it holds them (a ``cost`` of -1 gives one back).

        Blocks for one batch round trip, at most ``timeout``; raises
        :class:`RateStoreUnavailable` when Redis does not answer by then, and at once while
        Redis is known to be away. Cancellation abandons the wait (a take already sent may
        still be counted).
        """
        if self._script is None:
            raise self._unavailable("not connected to Redis")
        if trio.current_time() < self._down_until:
            raise self._unavailable(self.last_error or "Redis is away")
        pending = _Pending(f"{self.prefix}{kind}:{key}", 1000.0 / rate, burst, cost)
        try:
            self._send.send_nowait(pending)
        except trio.WouldBlock:
            raise self._unavailable("too many takes waiting for Redis") from None
        try:
            with trio.move_on_after(self._timeout):
                await pending.done.wait()
        finally:
            pending.abandoned = not pending.done.is_set()
        if pending.state is None:
            raise self._unavailable(pending.error or f"no answer within {self._timeout:g} s")
        return pending.state

    def _unavailable(self, reason: str) -> RateStoreUnavailable:
        self._unanswered += 1
        return RateStoreUnavailable(reason)

    # --- running --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the client and send the queued takes, batch by batch, until cancelled.

        Reports started once the client is open, which needs no answer from Redis (a hub
        starts without it). If the client fails as a whole, takes are answered unavailable
        and a new one is opened after ``recheck_interval``. Returns only by cancellation.
        """
        started = False

        def ready() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        while True:
            try:
                await self._serve(ready)
            except BaseException as exc:
                if trio.current_effective_deadline() == -math.inf:  # we are being cancelled
                    raise _cancellation_of(exc) from None
                if not isinstance(exc, Exception):
                    raise
                self._failed(describe_error(exc))
            ready()
            await trio.sleep(self._recheck_interval)

    async def _serve(self, ready: Callable[[], None]) -> None:
        client: coredis.Redis[str] = coredis.Redis.from_url(
            self._url,
            decode_responses=True,
            connect_timeout=self._timeout,
            stream_timeout=self._timeout,
            retry_policy=NoRetryPolicy(),
        )
        async with client:
            script = client.register_script(_TAKE_SCRIPT)
            self._script = script
            ready()
            try:
                while True:
                    batch = await self._next_batch()
                    if batch:
                        await self._send_batch(script, batch)
            finally:
                self._script = None

    async def _next_batch(self) -> list[_Pending]:
        """Wait for a take; then, after one checkpoint (so takes made meanwhile join), every
        take queued, up to MAX_BATCH. Abandoned takes are dropped (they spend nothing)."""
        batch = [await self._receive.receive()]
        await trio.lowlevel.checkpoint()
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        return [pending for pending in batch if not pending.abandoned]

    async def _send_batch(
        self, script: coredis.commands.Script[str], batch: list[_Pending]
    ) -> None:
        if trio.current_time() < self._down_until:
            for pending in batch:
                pending.resolve(None, self.last_error)
            return
        now = "" if self._clock is None else repr(self._clock() * 1000.0)
        args: list[str] = [now]
        for pending in batch:
            args.extend((repr(pending.interval_ms), str(pending.burst), str(pending.cost)))
        error: str | None = None
        answer: list[Any] = []
        try:
            with trio.move_on_after(self._timeout) as deadline:
                answer = list(await script(keys=[pending.key for pending in batch], args=args))
            if deadline.cancelled_caught:
                error = f"Redis did not answer within {self._timeout:g} s"
        except Exception as exc:  # unreachable, refused, lost: the takes go unanswered
            error = describe_error(exc)
        if error is not None or len(answer) != 2 * len(batch):
            error = error or f"unexpected answer of {len(answer)} items"
            self._failed(error)
            for pending in batch:
                pending.resolve(None, error)
            return
        self._answered(len(batch))
        for index, pending in enumerate(batch):
            taken, tokens = answer[2 * index], answer[2 * index + 1]
            pending.resolve(BucketState(int(taken) == 1, float(tokens)), None)

    # --- Redis away and back ---------------------------------------------------------------

    def _failed(self, error: str) -> None:
        now = trio.current_time()
        self.last_error = error
        self._down_until = now + self._recheck_interval
        if self._down_since is None:
            self._down_since = now
        if now - self._logged_at >= self._log_interval:
            self._logged_at = now
            self._outage_logged = True
            logger.warning(
                "rate limits: Redis does not answer (%s); takes are let through unchecked"
                " until it does (%d since the previous warning)",
                error,
                self._unanswered,
            )
            self._unanswered = 0

    def _answered(self, takes: int) -> None:
        self.batches += 1
        self.takes += takes
        self.largest_batch = max(self.largest_batch, takes)
        if self._down_since is not None:
            if self._outage_logged:
                logger.info(
                    "rate limits: Redis answers again after %.1f s; shared limits apply",
                    trio.current_time() - self._down_since,
                )
            self._down_since = None
            self._outage_logged = False
            self._down_until = -math.inf

    def describe(self) -> dict[str, Any]:
        """Fields for /debug/actors."""
        return {
            "redis": "down" if self._down_since is not None or self._script is None else "up",
            "last_error": self.last_error,
            "batches": self.batches,
            "takes": self.takes,
            "largest_batch": self.largest_batch,
        }
