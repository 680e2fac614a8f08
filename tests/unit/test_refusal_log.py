"""Refusals and failures are logged, but a flood of them never floods the log."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from api.refusal_log import LINES_PER_SECOND, RefusalThrottle, log_failure, log_refusal


def refuse(throttle: RefusalThrottle) -> None:
    log_refusal(
        429,
        "rate_limited",
        method="POST",
        route="/r",
        principal=None,
        request_id="req_1",
        throttle=throttle,
    )


def fail(throttle: RefusalThrottle, cause: BaseException | None = None) -> None:
    log_failure(
        503,
        "service_unavailable",
        method="POST",
        route="/r",
        request_id="req_2",
        cause=cause,
        throttle=throttle,
    )


async def test_a_flood_of_failures_writes_the_first_lines_then_says_how_many_it_left_out(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api.refusals")
    throttle = RefusalThrottle()
    for _ in range(LINES_PER_SECOND + 5):
        fail(throttle)
    assert len(caplog.records) == LINES_PER_SECOND
    assert all(record.levelno == logging.ERROR for record in caplog.records)
    assert caplog.records[0].getMessage() == "POST /r answered 503 service_unavailable"

    await trio.sleep(1)
    caplog.clear()
    fail(throttle)
    assert [record.getMessage() for record in caplog.records] == [
        f"5 failed requests were not logged (over {LINES_PER_SECOND}/s)",
        "POST /r answered 503 service_unavailable",
    ]


async def test_a_failure_line_carries_its_cause_and_request_id(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api.refusals")
    cause = TimeoutError("no answer from the database within 1.5 s")
    fail(RefusalThrottle(), cause=cause)
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[1] is cause
    assert (record.request_id, record.status) == ("req_2", 503)  # type: ignore[attr-defined]


async def test_refusals_and_failures_have_their_own_share(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api.refusals")
    refusals, failures = RefusalThrottle(), RefusalThrottle()
    for _ in range(LINES_PER_SECOND * 2):
        refuse(refusals)
    fail(failures)
    assert caplog.records[-1].levelno == logging.ERROR
    assert len(caplog.records) == LINES_PER_SECOND + 1
