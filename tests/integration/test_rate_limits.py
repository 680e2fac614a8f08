"""Rate limits as a vehicle meets them (CONTRACT §5): 429 body, headers, per vehicle and kind.

These run on the real clock, so they only assert what holds however fast the machine is:
a burst sent back to back is allowed, the request after it is refused (refill is 1 token per
second for location; the burst takes a small fraction of that). Exact refill times are tested
on trio's virtual clock in ``tests/unit/test_rate_limit.py``.

Logins are limited too (10 per minute per address), so each hub registers at most a few
vehicles.
"""

from __future__ import annotations

import re
import time

import httpx
import trio

from tests.integration.harness import (
    Timeline,
    battery_body,
    count,
    docking_body,
    error_body,
    location_body,
    running_hub,
    status_body,
)

RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def assert_limit_headers(answer: httpx.Response, limit: int) -> None:
    """The three X-RateLimit-* headers, with Reset in epoch seconds (now … a minute ahead)."""
    for name in RATE_LIMIT_HEADERS:
        assert name in answer.headers, (name, dict(answer.headers))
    assert answer.headers["X-RateLimit-Limit"] == str(limit)
    assert 0 <= int(answer.headers["X-RateLimit-Remaining"]) <= limit
    reset = int(answer.headers["X-RateLimit-Reset"])
    assert time.time() - 2 <= reset <= time.time() + 60


def assert_refused(answer: httpx.Response, limit: int) -> int:
    """A contract 429; returns its retry_after."""
    assert answer.status_code == 429, answer.text
    body = answer.json()
    assert body["error"] == "rate_limit_exceeded"
    retry_after = body["retry_after"]
    assert isinstance(retry_after, int) and retry_after >= 1
    assert body["message"] == f"Too many requests. Please wait {retry_after} seconds."
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", body["timestamp"])
    assert answer.headers["Retry-After"] == str(retry_after)
    assert_limit_headers(answer, limit)
    assert answer.headers["X-RateLimit-Remaining"] == "0"
    return int(retry_after)


async def test_location_burst_of_five_then_429(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url, rate_limit_enabled=True) as hub:
            chair = await hub.register_vehicle("wheelchair_001")
            other = await hub.register_vehicle("wheelchair_002")
            now = Timeline()

            answers = [await hub.post(chair, "location", location_body(now())) for _ in range(6)]
            for answer in answers[:5]:
                assert answer.status_code == 200, answer.text
                assert_limit_headers(answer, 5)
            remaining = [int(a.headers["X-RateLimit-Remaining"]) for a in answers[:5]]
            assert remaining[0] == 4
            assert remaining == sorted(remaining, reverse=True)
            assert assert_refused(answers[5], 5) == 1
            assert await count(hub, "vehicle_locations", "wheelchair_001") == 5

            # Another vehicle has its own bucket; another kind has its own bucket.
            elsewhere = await hub.post(other, "location", location_body(now()))
            assert elsewhere.status_code == 200, elsewhere.text
            assert elsewhere.headers["X-RateLimit-Remaining"] == "4"
            status = await hub.post(chair, "status", status_body("idle", now()))
            assert status.status_code == 200, status.text
            assert_limit_headers(status, 5)


async def test_every_telemetry_answer_carries_the_limit_headers(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url, rate_limit_enabled=True) as hub:
            chair = await hub.register_vehicle("wheelchair_001")
            now = Timeline()
            bodies = {
                "location": (location_body(now()), 5),
                "status": (status_body("idle", now()), 5),
                "battery": (battery_body(ts=now()), 2),
                "error": (error_body(ts=now()), 20),
                "docking": (docking_body("approaching", now()), 10),
            }
            for kind, (body, limit) in bodies.items():
                answer = await hub.post(chair, kind, body)
                assert answer.status_code == 200, (kind, answer.text)
                assert_limit_headers(answer, limit)
                assert answer.headers["X-RateLimit-Remaining"] == str(limit - 1), kind

            # Battery: 1 per 5 s, burst 2 — the third is refused and told to wait 5 s.
            second = await hub.post(chair, "battery", battery_body(ts=now()))
            assert second.status_code == 200, second.text
            third = await hub.post(chair, "battery", battery_body(ts=now()))
            assert assert_refused(third, 2) == 5


async def test_error_reports_allow_a_burst_of_twenty(database_url: str) -> None:
    with trio.fail_after(60):
        async with running_hub(database_url, rate_limit_enabled=True) as hub:
            chair = await hub.register_vehicle("wheelchair_001")
            now = Timeline()

            started = trio.current_time()
            statuses = []
            while 429 not in statuses:
                answer = await hub.post(chair, "error", error_body("warning", ts=now()))
                statuses.append(answer.status_code)
                assert len(statuses) <= 200, "error reports were never limited"
            elapsed = trio.current_time() - started

            allowed = statuses[:-1]
            assert set(allowed) == {200}
            # 20 at once, plus whatever refilled (10 per second) while they were being sent.
            assert 20 <= len(allowed) <= 20 + int(elapsed * 10) + 1, (len(allowed), elapsed)
            assert await count(hub, "vehicle_errors", "wheelchair_001") == len(allowed)

            # Six errors in a second are no problem, unlike locations.
            location_answers = [
                (await hub.post(chair, "location", location_body(now()))).status_code
                for _ in range(6)
            ]
            assert location_answers == [200] * 5 + [429]
