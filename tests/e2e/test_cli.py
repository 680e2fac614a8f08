"""The ``tvm-hub`` console script as an operator runs it: administration commands, start-up
configuration errors, and ``serve`` answering a vehicle and stopping cleanly on SIGTERM.

Each test runs the real script in a subprocess against the test's own database.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from storage import migrate
from storage import testing as db
from tests.integration.harness import location_body

COMMAND_TIMEOUT = 60.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def tvm_hub() -> list[str]:
    """The installed console script, or the module if the script is not beside Python."""
    script = Path(sys.executable).with_name("tvm-hub")
    return [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]


def hub_environment(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without hub settings, plus ours."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TVM_", "JWT_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update({"DATABASE_URL": database_url, "TVM_DATA_DIR": str(data_dir)})
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*tvm_hub(), *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def printed_values(output: str) -> dict[str, str]:
    """The ``name=value`` lines a command printed (log lines are JSON and skipped)."""
    values = {}
    for line in output.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.isidentifier():
            values[name] = value
    return values


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return hub_environment(database_url, tmp_path)


def test_vehicle_add_prints_its_credentials_once(env: dict[str, str], database_url: str) -> None:
    added = run_cli(env, "vehicle", "add", "wheelchair_042", "--name", "Ward 3 chair")
    assert added.returncode == 0, added.stderr
    values = printed_values(added.stdout)
    assert values["vehicle_id"] == "wheelchair_042"
    assert values["client_id"].startswith("veh_")
    secret = values["client_secret"]
    assert len(secret) >= 32
    # Printed once, on its own line; no log line repeats it.
    assert (added.stdout + added.stderr).count(secret) == 1

    [row] = db.fetch(
        database_url,
        "SELECT v.name, c.client_id, c.secret_hash FROM vehicles v"
        " JOIN vehicle_credentials c USING (vehicle_id) WHERE v.vehicle_id = $1",
        "wheelchair_042",
    )
    assert row["name"] == "Ward 3 chair"
    assert row["client_id"] == values["client_id"]
    assert row["secret_hash"].startswith("$argon2") and secret not in row["secret_hash"]

    again = run_cli(env, "vehicle", "add", "wheelchair_042")
    assert again.returncode == 1
    assert "wheelchair_042" in again.stderr
    assert "client_secret=" not in again.stdout

    malformed = run_cli(env, "vehicle", "add", "bad id!")
    assert malformed.returncode != 0
    assert "vehicle_id" in malformed.stderr
    count = db.fetchval(database_url, "SELECT count(*) FROM vehicles")
    assert count == 1


def test_user_add_prints_a_generated_password(env: dict[str, str], database_url: str) -> None:
    added = run_cli(env, "user", "add", "alice", "--role", "operator")
    assert added.returncode == 0, added.stderr
    values = printed_values(added.stdout)
    assert values["username"] == "alice"
    assert values["role"] == "operator"
    assert len(values["password"]) >= 12
    [row] = db.fetch(database_url, "SELECT role, password_hash FROM users WHERE username = 'alice'")
    assert row["role"] == "operator"
    assert values["password"] not in row["password_hash"]

    bad_role = run_cli(env, "user", "add", "bob", "--role", "vehicle")
    assert bad_role.returncode == 2  # argparse refuses the choice
    assert "--role" in bad_role.stderr


def test_db_current_prints_the_head_revision(env: dict[str, str]) -> None:
    current = run_cli(env, "db", "current")
    assert current.returncode == 0, current.stderr
    assert migrate.head() in current.stdout.splitlines()


@pytest.mark.parametrize(
    ("settings", "variable", "command"),
    [
        ({"TVM_PORT": "abc"}, "TVM_PORT", "db current"),
        ({"TVM_PORT": "abc"}, "TVM_PORT", "serve"),
        ({"TVM_PORT": "70000"}, "TVM_PORT", "db current"),
        ({"TVM_ENV": "production"}, "JWT_SECRET", "serve"),
        ({"JWT_SECRET": "too-short"}, "JWT_SECRET", "db current"),
        ({"DATABASE_URL": "mysql://db/tvm"}, "DATABASE_URL", "db current"),
    ],
)
def test_a_bad_setting_stops_the_start_with_one_line_naming_it(
    tmp_path: Path, settings: dict[str, str], variable: str, command: str
) -> None:
    env = hub_environment("postgresql://nobody@127.0.0.1:1/none", tmp_path, **settings)
    result = run_cli(env, *command.split())
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "postgres").exists()  # nothing was started


# ---------------------------------------------------------------------------------------------
# serve


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(env: dict[str, str], log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``tvm-hub serve`` on a free port; killed on the way out if still running."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*tvm_hub(), "serve"],
            env={**env, "TVM_HOST": "127.0.0.1", "TVM_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process, f"http://127.0.0.1:{port}"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)


def wait_until_live(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited early:\n{log.read_text()}"
        try:
            if httpx.get(f"{base_url}/health/live", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"serve not live within {START_TIMEOUT} s:\n{log.read_text()}")


def test_serve_takes_a_vehicle_report_and_stops_cleanly_on_sigterm(
    env: dict[str, str], tmp_path: Path
) -> None:
    vehicle = printed_values(run_cli(env, "vehicle", "add", "wheelchair_042", "--name", "X").stdout)
    operator = printed_values(run_cli(env, "user", "add", "alice", "--role", "operator").stdout)
    log = tmp_path / "serve.log"
    with (
        serving(env, log) as (process, base_url),
        httpx.Client(base_url=base_url, timeout=30) as client,
    ):
        wait_until_live(process, base_url, log)
        body = report_location(client, vehicle, "wheelchair_042")

        person = client.post(
            "/api/v1/auth/token",
            json={"grant_type": "password", "username": "alice", "password": operator["password"]},
        )
        assert person.status_code == 200, person.text
        history = client.get(
            "/api/v1/vehicle/wheelchair_042/locations",
            headers={"Authorization": f"Bearer {person.json()['access_token']}"},
        )
        assert history.status_code == 200
        assert [item["timestamp"] for item in history.json()["items"]] == [body["timestamp"]]

        # A vehicle registered with the command while the hub runs can report at once.
        later = printed_values(run_cli(env, "vehicle", "add", "wheelchair_043").stdout)
        report_location(client, later, "wheelchair_043")

        # The client still holds an idle keep-alive connection: that must not hold the
        # shutdown up (only requests in flight may, for up to 30 s).
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve still running {STOP_TIMEOUT} s after SIGTERM:\n{log.read_text()}")
        assert code == 0, log.read_text()
        assert time.monotonic() - stopping < 10, "an idle connection held the shutdown up"


def report_location(
    client: httpx.Client, credentials: dict[str, str], vehicle_id: str
) -> dict[str, object]:
    """Log the vehicle in and post one location; returns the body posted."""
    login = client.post(
        "/api/v1/auth/token",
        json={"client_id": credentials["client_id"], "client_secret": credentials["client_secret"]},
    )
    assert login.status_code == 200, login.text
    assert login.json()["vehicle_id"] == vehicle_id
    body = location_body(latitude=35.5)
    report = client.post(
        f"/api/v1/vehicle/{vehicle_id}/location",
        json=body,
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    )
    assert report.status_code == 200, report.text
    assert report.json()["status"] == "ok"
    return body


async def test_clients_that_hang_up_early_leave_no_error_in_the_log(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Clients closing right after reading what they asked for: fifty slow bodies closed
    after the 408's headers, fifty sockets closed after the ``auth_failed`` frame. Each used
    to log an ERROR ``BusyResourceError`` (two senders on one socket) in a real hub."""
    vehicle = printed_values(run_cli(env, "vehicle", "add", "wheelchair_042").stdout)
    log = tmp_path / "serve.log"
    with serving({**env, "TVM_BODY_TIMEOUT_SECONDS": "1"}, log) as (process, base_url):
        await trio.to_thread.run_sync(wait_until_live, process, base_url, log)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            login = await client.post(
                "/api/v1/auth/token",
                json={"client_id": vehicle["client_id"], "client_secret": vehicle["client_secret"]},
            )
        token = login.json()["access_token"]
        port = int(base_url.rsplit(":", 1)[1])
        answers: list[bytes] = []

        async def slow_body_then_hang_up() -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(
                (
                    "POST /api/v1/vehicle/wheelchair_042/location HTTP/1.1\r\nHost: hub\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 200\r\n\r\n{"
                ).encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await stream.receive_some(64)
                if not chunk:
                    break
                head += chunk
            await stream.aclose()
            answers.append(head[:12])

        async def bad_token_then_hang_up() -> None:
            url = f"ws://127.0.0.1:{port}/ws/v1/vehicle/wheelchair_042?token=forged"
            async with open_websocket_url(url) as socket:
                answers.append((await socket.get_message()).encode()[:40])

        with trio.fail_after(60):
            async with trio.open_nursery() as clients:
                for _ in range(50):
                    clients.start_soon(slow_body_then_hang_up)
                    clients.start_soon(bad_token_then_hang_up)
            await trio.sleep(1.0)  # let the hub finish with the connections
        process.send_signal(signal.SIGTERM)
        await trio.to_thread.run_sync(process.wait, STOP_TIMEOUT)
    assert answers.count(b"HTTP/1.1 408") == 50
    assert sum(1 for answer in answers if b"auth_failed" in answer) == 50
    errors = [line for line in log.read_text().splitlines() if '"level": "ERROR"' in line]
    assert errors == [], errors[:3]
