"""A real PostgreSQL stopped (or frozen) under a running hub, then brought back (TVM-ERR-003).

The hub runs in-process (``running_hub``) or, in the last test, as the real ``tvm-hub serve``
process. Each test starts a PostgreSQL of its own, not the session's shared server, since it
stops it.
While the database is gone every request answers 503 ``service_unavailable`` with
``Retry-After`` within 2 s of wall time, ``/health`` answers 503 ``down``, and the hub comes
back by itself once the database does. Wall-clock bounds are the behaviour under test here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
import pytest
import trio

from storage import migrate
from storage.embedded import EmbeddedPostgres, start_embedded_postgres
from tests.e2e.test_cli import (
    STOP_TIMEOUT,
    hub_environment,
    printed_values,
    run_cli,
    serving,
    wait_until_live,
)
from tests.integration.harness import (
    JWT_SECRET,
    RunningHub,
    Vehicle,
    location_body,
    running_hub,
    timestamp,
)

pytestmark = pytest.mark.integration

ANSWER_WITHIN = 2.0
"""Seconds a request may take while the database is gone (the issue's bound)."""
RECOVER_WITHIN = 5.0
"""Seconds after the database is back by which ``/health`` must say ok again."""


@asynccontextmanager
async def own_postgres() -> AsyncIterator[EmbeddedPostgres]:
    """A migrated PostgreSQL in a new temporary directory, stopped and deleted afterwards."""
    # mkdtemp, not tmp_path: as root the server runs as user pgserver (see conftest.py).
    data_dir = Path(tempfile.mkdtemp(prefix="tvm-hub-outage-"))
    try:
        embedded = await trio.to_thread.run_sync(start_embedded_postgres, data_dir)
        try:
            await trio.to_thread.run_sync(migrate.upgrade, embedded.dsn)
            yield embedded
        finally:
            await trio.to_thread.run_sync(embedded.stop)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    """The response and the wall-clock seconds it took."""
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "service_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert elapsed < ANSWER_WITHIN, f"503 took {elapsed:.2f} s"


async def assert_everything_answers_unavailable(hub: RunningHub, vehicle: Vehicle) -> list[float]:
    """A location POST, the fleet list and the health checks all say the database is gone."""
    posted, post_time = await timed(hub.post(vehicle, "location", location_body()))
    assert_unavailable(posted, post_time)
    fleet, fleet_time = await timed(hub.client.get("/api/v1/vehicles", headers=hub.admin_headers))
    assert_unavailable(fleet, fleet_time)

    health, health_time = await timed(hub.client.get("/health"))
    assert health.status_code == 503, health.text
    assert health.json()["status"] == "down"
    assert health.json()["components"]["database"]["status"] == "down"
    assert health_time < ANSWER_WITHIN
    ready = await hub.client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["database"] == "down"
    live = await hub.client.get("/health/live")
    assert live.status_code == 200  # the process itself is fine: do not restart it
    return [post_time, fleet_time, health_time]


async def seconds_until_healthy(hub: RunningHub) -> float:
    """Poll ``/health`` until 200; how long that took (fails after :data:`RECOVER_WITHIN`)."""
    started = time.monotonic()
    with trio.fail_after(RECOVER_WITHIN):
        while True:
            if (await hub.client.get("/health")).status_code == 200:
                break
            await trio.sleep(0.05)
    return time.monotonic() - started


async def assert_writes_and_reads_work_again(hub: RunningHub, vehicle: Vehicle) -> None:
    sent_at = timestamp()
    posted = await hub.post(vehicle, "location", location_body(sent_at))
    assert posted.status_code == 200, posted.text
    history = await hub.client.get(
        f"/api/v1/vehicle/{vehicle.vehicle_id}/locations", headers=hub.admin_headers
    )
    assert history.status_code == 200, history.text
    assert sent_at in [item["timestamp"] for item in history.json()["items"]]
    fleet = await hub.client.get("/api/v1/vehicles", headers=hub.admin_headers)
    assert fleet.status_code == 200, fleet.text


async def run_outage(
    embedded: EmbeddedPostgres,
    *,
    take_down: Callable[[], None],
    bring_back: Callable[[], None],
) -> tuple[list[float], float]:
    """Serve, take the database away, check the 503s, bring it back, check recovery.

    Returns the answer times while down and the seconds the hub took to recover.
    """
    async with running_hub(embedded.dsn) as hub:
        vehicle = await hub.register_vehicle("wheelchair_outage")
        before = await hub.post(vehicle, "location", location_body())
        assert before.status_code == 200, before.text

        await trio.to_thread.run_sync(take_down)
        try:
            answer_times = await assert_everything_answers_unavailable(hub, vehicle)
            # Still failing fast a few probe intervals later, with no request piling up.
            await trio.sleep(1.5)
            answer_times += await assert_everything_answers_unavailable(hub, vehicle)
        finally:
            await trio.to_thread.run_sync(bring_back)
        recovery = await seconds_until_healthy(hub)
        await assert_writes_and_reads_work_again(hub, vehicle)
        ready = await hub.client.get("/health/ready")
        assert ready.status_code == 200, ready.text
    return answer_times, recovery


@pytest.mark.hang_guard(180)
async def test_postgres_stopped_under_the_hub_gives_503_and_the_hub_recovers_by_itself() -> None:
    with trio.fail_after(120):
        async with own_postgres() as embedded:
            answer_times, recovery = await run_outage(
                embedded, take_down=embedded.shut_down, bring_back=embedded.start_again
            )
    print(
        f"stopped: answers in {[round(t, 3) for t in answer_times]} s; recovered in "
        f"{recovery:.2f} s"
    )


def _signal_postgres(embedded: EmbeddedPostgres, signum: signal.Signals) -> None:
    postmaster = psutil.Process(embedded.postmaster_pid)
    for process in [postmaster, *postmaster.children(recursive=True)]:
        os.kill(process.pid, signum)


@pytest.mark.hang_guard(180)
async def test_postgres_that_stops_answering_gives_503_within_2_s_and_recovers() -> None:
    """SIGSTOP freezes every server process: connections stay open but nothing answers."""
    with trio.fail_after(120):
        async with own_postgres() as embedded:
            answer_times, recovery = await run_outage(
                embedded,
                take_down=lambda: _signal_postgres(embedded, signal.SIGSTOP),
                bring_back=lambda: _signal_postgres(embedded, signal.SIGCONT),
            )
    print(
        f"frozen: answers in {[round(t, 3) for t in answer_times]} s; recovered in {recovery:.2f} s"
    )


@contextmanager
def own_postgres_sync() -> Iterator[EmbeddedPostgres]:
    """:func:`own_postgres` for plain (non-trio) tests."""
    data_dir = Path(tempfile.mkdtemp(prefix="tvm-hub-outage-"))
    try:
        embedded = start_embedded_postgres(data_dir)
        try:
            migrate.upgrade(embedded.dsn)
            yield embedded
        finally:
            embedded.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def timed_sync(request: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


@pytest.mark.e2e
@pytest.mark.hang_guard(240)
def test_the_serve_process_rides_out_a_postgres_restart_and_still_stops_cleanly(
    tmp_path: Path,
) -> None:
    with own_postgres_sync() as embedded:
        env = hub_environment(embedded.dsn, tmp_path / "data", JWT_SECRET=JWT_SECRET)
        added = run_cli(env, "vehicle", "add", "wheelchair_outage")
        assert added.returncode == 0, added.stderr
        credentials = printed_values(added.stdout)
        log = tmp_path / "serve.log"
        with (
            serving(env, log) as (process, base_url),
            httpx.Client(base_url=base_url, timeout=30) as client,
        ):
            wait_until_live(process, base_url, log)
            login = client.post(
                "/api/v1/auth/token",
                json={
                    "client_id": credentials["client_id"],
                    "client_secret": credentials["client_secret"],
                },
            )
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

            def post_location() -> httpx.Response:
                return client.post(
                    "/api/v1/vehicle/wheelchair_outage/location",
                    json=location_body(),
                    headers=headers,
                )

            assert post_location().status_code == 200

            embedded.shut_down()
            try:
                posted, post_time = timed_sync(post_location)
                assert_unavailable(posted, post_time)
                health, health_time = timed_sync(lambda: client.get("/health"))
                assert health.status_code == 503, health.text
                assert health.json()["status"] == "down"
                assert health_time < ANSWER_WITHIN
            finally:
                embedded.start_again()

            deadline = time.monotonic() + RECOVER_WITHIN
            while client.get("/health").status_code != 200:
                assert time.monotonic() < deadline, f"no recovery:\n{log.read_text()}"
                time.sleep(0.05)
            assert post_location().status_code == 200

            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"serve still running after SIGTERM:\n{log.read_text()}")
            assert code == 0, log.read_text()
