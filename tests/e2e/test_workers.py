"""``tvm-hub serve --workers N``: N real hub processes on one real port, supervised by a parent.

Each test runs the real console script against the test's own database with ``REDIS_URL``
unset and ``TVM_PORT=0``, so the parent picks the port, starts an embedded Redis under the
data dir and hands both to its workers. Which worker answered is read from ``/metrics``
(``hub_worker_info{worker=…,pid=…}``); each request goes over a fresh connection, which the
kernel gives to one of the listening workers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio

from storage.redis_channels import redis_round_trip
from tests.e2e.test_cli import STOP_TIMEOUT, hub_environment, run_cli, tvm_hub
from tests.e2e.test_fanout import next_of, open_socket, subscribe
from tests.e2e.test_restart_queue import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    admin_token,
    bearer,
    register_vehicle,
    talk,
)
from tests.integration.harness import JWT_SECRET, location_body

START_TIMEOUT = 60.0
REPLACE_TIMEOUT = 30.0
WORKER_INFO = re.compile(r"^hub_worker_info\{(?P<labels>[^}]*)\} 1\.0$", re.MULTILINE)
PARENT_LINE = re.compile(r"TVM Hub: (?P<workers>\d+) workers on http://127\.0\.0\.1:(?P<port>\d+)")
REDIS_LINE = re.compile(r"embedded Redis running: (?P<url>unix://\S+) \(pid (?P<pid>\d+)\)")

pytestmark = pytest.mark.hang_guard(180)


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return hub_environment(
        database_url,
        tmp_path / "data",
        TVM_HOST="127.0.0.1",
        TVM_PORT="0",
        TVM_ADMIN_USERNAME=ADMIN_USERNAME,
        TVM_ADMIN_PASSWORD=ADMIN_PASSWORD,
        JWT_SECRET=JWT_SECRET,
    )


@dataclass
class Workers:
    """A running ``serve --workers N`` parent and what its log says about it."""

    process: subprocess.Popen[bytes]
    log: Path
    base_url: str
    redis_url: str
    redis_pid: int

    def messages(self) -> list[str]:
        """The ``message`` of every JSON log line so far."""
        found = []
        for line in self.log.read_text().splitlines():
            try:
                found.append(str(json.loads(line)["message"]))
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def answering_worker(self) -> tuple[str, int]:
        """``(worker, pid)`` of the worker that answers ``/metrics`` on a fresh connection."""
        answer = httpx.get(f"{self.base_url}/metrics", timeout=10)
        assert answer.status_code == 200
        [labels] = WORKER_INFO.findall(answer.text)
        values = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        return values["worker"], int(values["pid"])

    def wait_for_workers(self, wanted: set[str], *, timeout: float) -> dict[str, int]:
        """Ask over fresh connections until every worker in ``wanted`` answered; worker →
        pid of each worker seen (the last pid seen for each)."""
        seen: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the parent exited:\n{self.log.read_text()}"
            try:
                worker, pid = self.answering_worker()
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            seen[worker] = pid
            if wanted <= set(seen):
                return seen
        pytest.fail(f"only workers {sorted(seen)} answered in {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> int:
        """SIGTERM the parent; its exit status (fails the test if it outlives the timeout)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_TIMEOUT} s after SIGTERM:\n{self.log.read_text()}")


@contextmanager
def serving_workers(env: dict[str, str], log_path: Path, workers: int) -> Iterator[Workers]:
    """``tvm-hub serve --workers N`` once its parent has reported the port; the parent and
    any worker left (found in ``/metrics``) are killed on the way out if still running."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*tvm_hub(), "serve", "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            text = ""
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and PARENT_LINE.search(text) is None:
                assert process.poll() is None, f"serve exited early:\n{log_path.read_text()}"
                time.sleep(0.1)
                text = log_path.read_text()
            parent, redis = PARENT_LINE.search(text), REDIS_LINE.search(text)
            assert parent is not None and redis is not None, text
            assert int(parent["workers"]) == workers
            yield Workers(
                process,
                log_path,
                f"http://127.0.0.1:{parent['port']}",
                redis["url"],
                int(redis["pid"]),
            )
        finally:
            if process.poll() is None:
                process.kill()  # its workers get SIGTERM from the kernel (PDEATHSIG)
                process.wait(timeout=STOP_TIMEOUT)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_workers_share_one_port_the_database_and_an_embedded_redis(
    env: dict[str, str], tmp_path: Path
) -> None:
    with serving_workers(env, tmp_path / "serve.log", 2) as hub:
        pids = hub.wait_for_workers({"0", "1"}, timeout=START_TIMEOUT)
        assert len(set(pids.values())) == 2
        assert hub.process.pid not in pids.values()

        # The parent started Redis under the data dir; every worker was handed its URL.
        socket_path = Path(hub.redis_url.removeprefix("unix://"))
        assert socket_path.is_socket()
        assert socket_path.parent == tmp_path / "data" / "redis"
        assert trio.run(lambda: redis_round_trip(hub.redis_url, socket_timeout=5)) > 0
        for _ in range(6):  # fresh connections: both workers answer /health
            health = httpx.get(f"{hub.base_url}/health", timeout=10)
            assert health.status_code == 200, health.text
            assert health.json()["components"]["redis"]["status"] == "ok"

        # One admin (created by the parent), one token that every worker accepts.
        login = httpx.post(
            f"{hub.base_url}/api/v1/auth/token",
            json={"grant_type": "password", "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        answered: dict[int, int] = {}
        for _ in range(40):
            debug = httpx.get(f"{hub.base_url}/debug/actors", headers=headers, timeout=10)
            assert debug.status_code == 200, debug.text
            worker = debug.json()["worker"]
            answered[worker["id"]] = worker["pid"]
            if len(answered) == 2:
                break
        assert answered == {0: pids["0"], 1: pids["1"]}

        assert hub.stop() == 0, hub.log.read_text()

    messages = hub.messages()
    # Migrations ran once, in the parent; the workers neither migrated nor created the admin.
    assert sum(1 for m in messages if "migrated up to head" in m) == 1
    assert sum(1 for m in messages if m.startswith("created admin user")) == 1
    assert any(f"worker 0 (pid {pids['0']}) listening on" in m for m in messages)


def test_a_killed_worker_is_started_again_while_the_other_serves(
    env: dict[str, str], tmp_path: Path
) -> None:
    with serving_workers(env, tmp_path / "serve.log", 2) as hub:
        before = hub.wait_for_workers({"0", "1"}, timeout=START_TIMEOUT)
        os.kill(before["0"], signal.SIGKILL)

        deadline = time.monotonic() + REPLACE_TIMEOUT
        replaced = None
        while time.monotonic() < deadline and replaced is None:
            try:
                worker, pid = hub.answering_worker()
            except httpx.TransportError:  # a connection handed to the dying worker
                time.sleep(0.05)
                continue
            if worker == "0" and pid != before["0"]:
                replaced = pid
            elif worker == "1":
                assert pid == before["1"]  # the other worker was left alone
        assert replaced is not None, (
            f"no new worker 0 in {REPLACE_TIMEOUT} s:\n{hub.log.read_text()}"
        )
        assert any(
            f"worker 0 (pid {before['0']}) was killed by SIGKILL" in m for m in hub.messages()
        )
        assert any(f"worker 0 started (pid {replaced})" in m for m in hub.messages())
        assert hub.stop() == 0, hub.log.read_text()


def test_sigterm_to_the_parent_stops_every_worker_and_redis(
    env: dict[str, str], tmp_path: Path
) -> None:
    with serving_workers(env, tmp_path / "serve.log", 2) as hub:
        pids = hub.wait_for_workers({"0", "1"}, timeout=START_TIMEOUT)
        # An idle keep-alive connection to a worker must not hold the shutdown up.
        with httpx.Client(base_url=hub.base_url, timeout=10) as client:
            assert client.get("/health/live").status_code == 200
            assert hub.stop() == 0, hub.log.read_text()

    for pid in [*pids.values(), hub.redis_pid]:
        assert not process_exists(pid), f"process {pid} outlived the parent"
    assert not Path(hub.redis_url.removeprefix("unix://")).exists()
    messages = hub.messages()
    for worker, pid in pids.items():
        assert f"worker {worker} (pid {pid}) exited with status 0" in messages
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{hub.base_url}/health/live", timeout=5)


def test_a_port_in_use_stops_the_start_at_once(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli({**env, "TVM_PORT": str(port)}, "serve", "--workers", "2")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "worker 0 started" not in result.stdout


@pytest.mark.parametrize(
    ("arguments", "settings", "named"),
    [
        (["--workers", "0"], {}, "--workers"),
        ([], {"TVM_WORKERS": "65"}, "TVM_WORKERS"),
        ([], {"TVM_WORKERS": "2", "TVM_WORKER_ID": "2"}, "TVM_WORKER_ID"),
    ],
)
def test_a_bad_worker_count_stops_the_start_naming_it(
    tmp_path: Path, arguments: list[str], settings: dict[str, str], named: str
) -> None:
    env = hub_environment("postgresql://nobody@127.0.0.1:1/none", tmp_path, **settings)
    result = run_cli(env, "serve", *arguments)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    if named.startswith("TVM_"):  # a setting: one line (argparse adds its usage line)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "postgres").exists()
    assert not (tmp_path / "redis").exists()


FRONTENDS = re.compile(r'^active_connections\{kind="frontend"\} (?P<count>[0-9.]+)$', re.MULTILINE)
MAX_SESSIONS = 16


def frontends_per_worker(workers: Workers, asks: int = 12) -> dict[str, int]:
    """Open frontend sockets per worker, from ``/metrics`` over fresh connections."""
    counts: dict[str, int] = {}
    for _ in range(asks):
        answer = httpx.get(f"{workers.base_url}/metrics", timeout=10)
        [labels] = WORKER_INFO.findall(answer.text)
        worker = dict(re.findall(r'(\w+)="([^"]*)"', labels))["worker"]
        found = FRONTENDS.search(answer.text)
        counts[worker] = int(float(found["count"])) if found else 0
        if len(counts) == 2 and min(counts.values()) > 0:
            break
    return counts


def test_frontends_on_either_worker_see_a_vehicle_reporting_to_the_other(
    env: dict[str, str], tmp_path: Path
) -> None:
    with serving_workers(env, tmp_path / "serve.log", 2) as workers:
        workers.wait_for_workers({"0", "1"}, timeout=START_TIMEOUT)
        with httpx.Client(base_url=workers.base_url, timeout=10) as client:
            admin = admin_token(client)
            vehicle = register_vehicle(client, admin, "wheelchair_001")

        async def conversation() -> None:
            async with AsyncExitStack() as sessions:
                opened = []
                while len(opened) < MAX_SESSIONS:
                    ws = await sessions.enter_async_context(
                        open_socket(workers.base_url, "/ws/v1/fleet", admin)
                    )
                    await subscribe(ws, ["*"])
                    opened.append(ws)
                    counts = await trio.to_thread.run_sync(frontends_per_worker, workers)
                    if len(counts) == 2 and min(counts.values()) > 0:
                        break
                else:
                    pytest.fail(f"{MAX_SESSIONS} sockets all landed on one worker")
                for latitude in (35.1, 35.2):
                    body = location_body(latitude=latitude)
                    answer = await trio.to_thread.run_sync(
                        lambda b=body: httpx.post(
                            f"{workers.base_url}/api/v1/vehicle/wheelchair_001/location",
                            json=b,
                            headers=bearer(vehicle),
                        )
                    )
                    assert answer.status_code == 200, answer.text
                    seen = [await next_of(ws, "location_update") for ws in opened]
                    assert {frame["location"]["latitude"] for frame in seen} == {latitude}
                    assert len({frame["seq"] for frame in seen}) == 1

        talk(conversation)
        assert workers.stop() == 0
