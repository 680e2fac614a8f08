"""``tvm-hub serve --workers N`` (or ``TVM_WORKERS=N``): N hub processes on one port.

The parent process serves nothing itself. It does once what every worker would otherwise
do, then starts the workers and supervises them (:mod:`api.worker_pool`):

1. takes the port: binds ``TVM_HOST:TVM_PORT`` (and ``TVM_HTTP_REDIRECT_PORT`` with TLS)
   with ``SO_REUSEPORT`` but does not listen, so a port already in use fails the start at
   once and port 0 becomes one real port that every worker shares. The kernel hands new
   connections to listening sockets only, so this one never takes any;
2. resolves the database: ``DATABASE_URL``, or the embedded PostgreSQL under the data dir;
   runs the migrations and creates the configured admin (``prepare``);
3. without ``REDIS_URL`` starts an embedded Redis (:mod:`storage.embedded_redis`);
4. starts the workers with ``DATABASE_URL``, ``REDIS_URL``, the real port,
   ``TVM_WORKERS=N`` and ``TVM_WORKER_ID=0…N-1`` in their environment. Each worker is
   ``tvm-hub serve`` as one process would run it, except that it binds with ``SO_REUSEPORT``
   and neither starts PostgreSQL nor migrates.

On SIGTERM or SIGINT the workers are stopped (each as a single hub stops: sockets closed
with 1001, requests in flight finished, queues written), then Redis, then PostgreSQL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from api.serve import DRAIN_TIMEOUT, GRACEFUL_TIMEOUT, resolve_database
from api.worker_pool import WorkerPool
from hub.config import Settings
from storage import migrate
from storage.embedded import EmbeddedPostgresError
from storage.embedded_redis import EmbeddedRedisError, start_embedded_redis

logger = logging.getLogger(__name__)

STOP_TIMEOUT = GRACEFUL_TIMEOUT + DRAIN_TIMEOUT + 15.0
"""How long the parent waits for its workers after forwarding SIGTERM before killing them:
a worker may take the graceful timeout for requests in flight, the drain of the vehicles'
queues, then the Writer's last commit."""


class WorkersStartError(Exception):
    """The parent could not prepare what its workers need; the message says what."""


def run_workers(settings: Settings, *, prepare: Callable[[str], None] = lambda dsn: None) -> int:
    """Run ``settings.workers`` hub processes until SIGTERM or SIGINT; the exit status.

    Blocks for the whole life of the hub: about a second to start PostgreSQL and Redis, then
    until a stop signal and until every worker has stopped (at most :data:`STOP_TIMEOUT`
    before they are killed). ``prepare`` runs once with the DSN after the migrations. Must
    be called from the main thread. Raises :class:`WorkersStartError` when the port, the
    database or Redis cannot be had; whatever was started is stopped again.
    """
    with contextlib.ExitStack() as stack:
        port = _reserve(stack, settings.host, settings.port)
        redirect_port = None
        if settings.tls_enabled and settings.http_redirect_port is not None:
            redirect_port = _reserve(stack, settings.host, settings.http_redirect_port)
        try:
            target = resolve_database(settings)
        except EmbeddedPostgresError as exc:
            raise WorkersStartError(str(exc)) from exc
        stack.callback(target.stop)
        migrate.upgrade(target.dsn)
        prepare(target.dsn)
        redis_url = settings.redis_url
        if redis_url is None:
            try:
                redis = start_embedded_redis(Path(settings.data_dir))
            except EmbeddedRedisError as exc:
                raise WorkersStartError(str(exc)) from exc
            stack.callback(redis.stop)
            redis_url = redis.url
        scheme = "https" if settings.tls_enabled else "http"
        logger.info(
            "TVM Hub: %d workers on %s://%s:%d (parent pid %d), Redis %s",
            settings.workers,
            scheme,
            settings.host,
            port,
            os.getpid(),
            redis_url if settings.redis_url is None else "from REDIS_URL",
        )
        base = dict(os.environ)

        def environment(worker_id: int) -> Mapping[str, str]:
            return worker_environment(
                base,
                worker_id=worker_id,
                workers=settings.workers,
                dsn=target.dsn,
                redis_url=redis_url,
                port=port,
                redirect_port=redirect_port,
            )

        pool = WorkerPool(
            settings.workers, worker_command(), environment, stop_timeout=STOP_TIMEOUT
        )
        status = pool.run()
    logger.info("TVM Hub stopped (exit status %d)", status)
    return status


def worker_command() -> list[str]:
    """How the parent starts a worker: this Python running ``tvm-hub serve``."""
    return [sys.executable, "-m", "api.cli", "serve"]


def worker_environment(
    base: Mapping[str, str],
    *,
    worker_id: int,
    workers: int,
    dsn: str,
    redis_url: str,
    port: int,
    redirect_port: int | None,
) -> dict[str, str]:
    """The parent's environment plus what makes the process worker ``worker_id`` of
    ``workers``, on the shared database, Redis and port."""
    environment = dict(base)
    environment.update(
        {
            "DATABASE_URL": dsn,
            "REDIS_URL": redis_url,
            "TVM_PORT": str(port),
            "TVM_WORKERS": str(workers),
            "TVM_WORKER_ID": str(worker_id),
        }
    )
    if redirect_port is not None:
        environment["TVM_HTTP_REDIRECT_PORT"] = str(redirect_port)
    return environment


def _reserve(stack: contextlib.ExitStack, host: str, port: int) -> int:
    """Bind ``host:port`` with ``SO_REUSEPORT`` without listening, kept until the stack
    closes; the port bound (the one the kernel chose for port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as Hypercorn decides
    reservation = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        reservation.bind((host, port))
    except OSError as exc:
        raise WorkersStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound: int = reservation.getsockname()[1]
    return bound
