"""A VehicleActor whose rate buckets are shared through Redis (TVM-SEC-003), on the autojump
clock with the in-memory store and a stand-in for Redis that answers when the test says.

The control task never awaits the shared take: the telemetry lane does, so an emergency stop
goes out while a report's take is still waiting for Redis; a report the shared bucket
refuses is answered 429 and stores nothing; and the actor's own in-memory buckets are not
used (the shared ones decide).
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.rate_limit import SharedRateLimiter
from hub.config import Settings
from hub.errors import RateLimitedError
from storage.redis_rate import BucketState, RedisBuckets
from tests.unit.test_vehicle_actor import (
    GUARD,
    location,
    next_frame,
    open_vehicle,
    stop,
)


class HeldBuckets(RedisBuckets):
    """Shared buckets whose takes wait until :meth:`answer` (a slow Redis), then say
    ``taken``; no client, no Redis."""

    def __init__(self, *, taken: bool) -> None:
        super().__init__("redis://127.0.0.1:1/0")
        self.taken = taken
        self.kinds: list[str] = []
        self._answered = trio.Event()

    def answer(self) -> None:
        self._answered.set()

    async def take(
        self, kind: str, key: str, *, rate: float, burst: int, cost: int = 1
    ) -> BucketState:
        self.kinds.append(kind)
        await self._answered.wait()
        return BucketState(self.taken, 0.0 if not self.taken else burst - 1.0)


def shared(buckets: RedisBuckets) -> SharedRateLimiter:
    return SharedRateLimiter(Settings().rate_limits, buckets)


async def test_a_stop_goes_out_while_a_report_waits_for_redis_and_the_429_stores_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    buckets = HeldBuckets(taken=False)
    with trio.fail_after(GUARD):
        async with open_vehicle(shared_limits=shared(buckets)) as vehicle:
            link = await vehicle.connect()
            refused: list[BaseException] = []

            async def report() -> None:
                with pytest.raises(RateLimitedError) as error:
                    await vehicle.report(location())
                refused.append(error.value)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(report)
                await trio.sleep(1.0)  # the report's take is waiting for "Redis"
                assert buckets.kinds == ["location"]
                answer = await vehicle.send(stop())
                assert answer.status == "sent"
                assert await next_frame(link, vehicle) == (1.0, "cmd_ESTOP_1")
                buckets.answer()
            [error] = refused
            assert isinstance(error, RateLimitedError) and error.retry_after == 1
            assert vehicle.store.commits == []  # a 429 stores nothing
            published = [event["type"] for _, event in vehicle.publisher.vehicle_events]
            assert "location_update" not in published


async def test_with_shared_buckets_the_actor_s_own_burst_does_not_apply(
    autojump_clock: trio.testing.MockClock,
) -> None:
    buckets = HeldBuckets(taken=True)
    buckets.answer()
    with trio.fail_after(GUARD):
        async with open_vehicle(shared_limits=shared(buckets)) as vehicle:
            answers = [await vehicle.report(location()) for _ in range(8)]  # local burst: 5
            assert [answer.quota.allowed for answer in answers] == [True] * 8
            assert answers[0].quota.remaining == 4  # what the shared bucket said
            assert buckets.kinds == ["location"] * 8
            assert len(vehicle.store.commits) == 8
