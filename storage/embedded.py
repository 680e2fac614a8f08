"""The private PostgreSQL the hub runs when no ``DATABASE_URL`` is configured.

It comes from the ``pgserver`` package (PostgreSQL binaries in a wheel). The cluster lives in
``<data_dir>/postgres`` and survives restarts; the server listens on a Unix socket only, never
on TCP. What pgserver does that an operator may notice:

- **As root** it runs PostgreSQL as a system user ``pgserver`` (created with ``useradd`` if
  missing), chowns the cluster directory to it and adds ``o+rx`` to *every* parent directory
  of the data dir so that user can reach it. Run the hub as an ordinary user to avoid that.
- **Socket**: in the cluster directory when its path fits the ~107-byte Unix socket limit,
  otherwise in ``$XDG_RUNTIME_DIR/python_PostgresServer/<hash>`` (``/tmp/runtime-<uid>/…``
  when that variable is unset). The DSN names whichever was chosen.
- **Sharing**: every process that starts the same cluster shares one server; it is stopped
  when the last of them calls :meth:`EmbeddedPostgres.stop` (or exits). A server left running
  by a killed process is reused by the next start.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from storage.process_logs import log_tail

logger = logging.getLogger(__name__)

POSTGRES_SUBDIR = "postgres"
"""The cluster's directory inside the hub's data directory."""


class EmbeddedPostgresError(Exception):
    """The embedded PostgreSQL could not be initialised or started; the message quotes its log."""


class EmbeddedPostgres:
    """A running embedded server: connect with :attr:`dsn`, release with :meth:`stop`."""

    def __init__(self, server: Any, data_path: Path) -> None:
        self._server = server
        self.data_path = data_path
        """The cluster directory (``<data_dir>/postgres``)."""
        self.dsn: str = server.get_uri()
        """``postgresql://postgres:@/postgres?host=<socket dir>`` — trust auth, socket only."""
        self._stopped = False

    @property
    def socket_dir(self) -> Path:
        """The directory holding the server's Unix socket."""
        return Path(self._server.get_postmaster_info().socket_dir)

    def shut_down(self) -> None:
        """Stop the server now (``pg_ctl stop -m fast``) whoever holds it; for outage tests.

        Open sessions are disconnected and new connections refused until :meth:`start_again`.
        Blocks until it is down, typically 0.1–1 s (from trio: ``trio.to_thread.run_sync``).
        """
        commands = _import_pgserver()._commands
        commands.pg_ctl(
            ["-w", "-m", "fast", "stop"],
            pgdata=self.data_path,
            user=self._server.system_user,
            timeout=30,
        )
        logger.info("embedded PostgreSQL shut down (%s)", self.data_path)

    def start_again(self) -> None:
        """Start the server after :meth:`shut_down`, on the same socket, so :attr:`dsn` holds.

        Blocks about 0.2 s (from trio: ``trio.to_thread.run_sync``); also refreshes what
        :meth:`stop` needs to know to stop the new server process.
        """
        with type(self._server)._lock:
            self._server.ensure_postgres_running()
        logger.info("embedded PostgreSQL started again (%s)", self.data_path)

    @property
    def postmaster_pid(self) -> int:
        """The server's main process (its backends are its children)."""
        pid: int = self._server.get_pid()
        return pid

    def stop(self) -> None:
        """Release this process's hold on the server; stop it if no other process holds it.

        Blocks until PostgreSQL has shut down (fast mode: open sessions are disconnected),
        typically 0.1–1 s; from trio call it through ``trio.to_thread.run_sync``. Idempotent.
        """
        if self._stopped:
            return
        self._stopped = True
        self._server.cleanup()
        logger.info("embedded PostgreSQL released (%s)", self.data_path)


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (initialising on first use) the PostgreSQL kept in ``data_dir/postgres``.

    Blocks: about 0.2 s to start an existing cluster, about 1 s the first time (``initdb``),
    up to 10 s before giving up. Trio code must call it through ``trio.to_thread.run_sync``.
    If a server for this cluster is already running (another process, or one left by a
    killed hub) it is reused. Raises :class:`EmbeddedPostgresError` if it cannot start.
    """
    pgserver = _import_pgserver()
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_path = data_dir / POSTGRES_SUBDIR
    _quiet_logger("pgserver")
    with pgserver.PostgresServer._lock:
        _forget_dead_holders(data_path)
    try:
        server = pgserver.get_server(data_path, cleanup_mode="stop")
    except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as exc:
        raise EmbeddedPostgresError(
            f"embedded PostgreSQL in {data_path} did not start ({exc}); "
            f"end of its log:\n{log_tail(data_path / 'log')}"
        ) from exc
    embedded = EmbeddedPostgres(server, data_path)
    logger.info(
        "embedded PostgreSQL running: data in %s, socket in %s",
        data_path,
        embedded.socket_dir,
    )
    return embedded


def _import_pgserver() -> ModuleType:
    # pgserver asks platformdirs for the runtime dir at import; with XDG_RUNTIME_DIR unset
    # (containers, root shells) that warns and falls back to /tmp/runtime-<uid>, which is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


def _quiet_logger(name: str) -> None:
    # pgserver logs every subprocess it runs at INFO; keep that out of the hub's log unless
    # someone configured the logger on purpose.
    named = logging.getLogger(name)
    if named.level == logging.NOTSET:
        named.setLevel(logging.WARNING)


def _forget_dead_holders(data_path: Path) -> None:
    """Drop processes that no longer exist from pgserver's list of the server's holders.

    pgserver stops the server only when the list holds nothing but the stopping process; a
    hub killed with SIGKILL stays on it, and from then on nobody would ever stop the server.
    """
    holders_file = data_path / ".handle_pids.json"
    try:
        holders = json.loads(holders_file.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(holders, list):
        return
    alive = [pid for pid in holders if isinstance(pid, int) and _process_exists(pid)]
    if alive != holders:
        holders_file.write_text(json.dumps(alive))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
