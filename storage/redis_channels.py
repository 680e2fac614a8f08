"""Publishing to Redis channels (coredis, native on trio through anyio).

``storage/`` is the only package that talks to Redis; the alert side channels in
``actors.alerts.channels`` use :class:`RedisAlertChannel` from here.
"""

from __future__ import annotations

import json
import time
from typing import Any

import coredis

REDIS_ALERT_CHANNEL = "tvm:alerts"


class RedisAlertChannel:
    """Publishes each alert frame as JSON on the Redis channel ``tvm:alerts``.

    One short connection per alert: critical alerts are rare, and a connection that died
    between two of them is never a reason to lose the second.
    """

    name = "redis"

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self._url = url
        self._timeout = timeout

    async def deliver(self, frame: dict[str, Any]) -> None:
        """Publish the frame; raises if Redis cannot be reached."""
        client = coredis.Redis.from_url(
            self._url, connect_timeout=self._timeout, stream_timeout=self._timeout
        )
        async with client:
            await client.publish(REDIS_ALERT_CHANNEL, json.dumps(frame))


async def redis_round_trip(url: str, *, socket_timeout: float) -> float:
    """Seconds a ``PING`` takes on a fresh connection; raises if Redis cannot be reached
    within ``socket_timeout`` per step (coredis wraps its errors in exception groups).
    Callers bound the whole call with their own deadline."""
    client = coredis.Redis.from_url(
        url, connect_timeout=socket_timeout, stream_timeout=socket_timeout
    )
    started = time.perf_counter()
    async with client:
        await client.ping()
    return time.perf_counter() - started


def describe_error(exc: BaseException) -> str:
    """The innermost error as ``Type: message`` (coredis wraps its errors in exception
    groups, one inside the other)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
