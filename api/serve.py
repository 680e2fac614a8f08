"""Starting and stopping the hub: database, migrations, actors, services, HTTP server.

Layout of the running process (nurseries named by role)::

    trio.run
      └─ asyncio bridge (trio-asyncio loop around everything)
           └─ database pool
                └─ service nursery
                     ├─ supervisor: writer, router, alerts, retention, vehicles…, sessions…
                     └─ Hypercorn serving the app

Every long-lived task runs under the one supervisor, so a crash is logged, restarted with
backoff and visible in ``/debug/actors``. SIGTERM or SIGINT stops accepting, closes the
sockets with 1001, lets requests in flight finish (≤ 30 s), writes what the vehicle actors
queued, commits what the Writer still holds, closes the pool and returns, so the process
exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.middleware import ProxyFixMiddleware
from hypercorn.trio import serve as hypercorn_serve

from actors.accounts import AccountService
from actors.alerts.actor import ALERTS_KEY, ALERTS_KIND, ALERTS_MAILBOX, AlertsActor
from actors.alerts.book import AlertBook
from actors.alerts.channels import channels_from_settings
from actors.alerts.publisher import HubPublisher
from actors.bus_relay import BusRelay, BusService
from actors.fleet_reads import FleetReads
from actors.health import HealthProbe
from actors.missions import MissionService
from actors.rate_limit import RateLimiter, SharedRateLimiter
from actors.retention.job import RETENTION_CALL_TIMEOUT, RetentionJob, RetentionPolicy
from actors.router.sink import start_router
from actors.sockets.connection import SocketPolicy
from actors.vehicle.actor import VehicleActor, VehicleOptions
from actors.vehicle.directory import VehicleDirectory
from actors.vehicle.queued_follower import QueuedCommandFollower
from actors.vehicle.registry import RegistryFollower, VehicleRegistry
from actors.vehicle.store import PostgresVehicleStore
from api import contained_connections
from api.app import create_app
from api.context import HubServices
from api.edge import ASGIApp, RedirectInsecure
from api.fast_commands import CommandRoute
from api.fast_telemetry import TelemetryRoute
from api.lean_http import LeanPaths
from api.lean_sockets import LeanSockets
from api.ws_send import BatchedWebsocketSend
from hub.config import RateLimit, Settings
from hub.gc_policy import tune_garbage_collector
from hub.loop_lag import watch_loop_lag
from hub.runtime import Registry, ServiceActor, Supervisor
from hub.security import TokenCodec
from storage import migrate
from storage.database import Database, open_asyncio_bridge, open_database
from storage.embedded import start_embedded_postgres
from storage.queries import vehicles as vehicle_queries
from storage.queries.alerts import DatabaseAlertStore
from storage.redis_bus import RedisBus, new_hub_id
from storage.redis_rate import RedisBuckets
from storage.replica import ReadDatabases, open_read_databases
from storage.writer import Writer

logger = logging.getLogger(__name__)

GRACEFUL_TIMEOUT = 30.0
BUS_START_WAIT = 2.0  # seconds start-up waits for Redis before serving on this hub alone
DRAIN_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """Where the hub's PostgreSQL is, and how to stop it if the hub started it."""

    dsn: str
    stop: Callable[[], None]


def resolve_database(settings: Settings) -> DatabaseTarget:
    """``DATABASE_URL``, or an embedded PostgreSQL under the data dir (blocks ~1 s to start)."""
    if settings.database_url is not None:
        return DatabaseTarget(settings.database_url, lambda: None)
    embedded = start_embedded_postgres(Path(settings.data_dir))
    return DatabaseTarget(embedded.dsn, embedded.stop)


def login_limits(settings: Settings) -> dict[str, RateLimit]:
    """The two login buckets (per client id, per address) of CONTRACT §5."""
    per_minute = settings.login_attempts_per_minute
    login = RateLimit(per_minute / 60.0, per_minute)
    return {"login_client": login, "login_address": login}


def token_codec(settings: Settings) -> TokenCodec:
    """The access-token codec the settings describe."""
    return TokenCodec(
        settings.jwt_secret,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl,
    )


async def start_services(
    settings: Settings,
    database: Database,
    writer: Writer,
    actors: Registry,
    reads: ReadDatabases | None = None,
) -> HubServices:
    """Load what the services need, start the hub's actors and wire everything together."""
    await database.check_durability()
    supervisor = actors.supervisor
    await supervisor.start_child("writer", "main", lambda: ServiceActor(writer))
    registry = VehicleRegistry(database)
    await registry.load()
    await supervisor.start_child(
        "registry", "changes", lambda: ServiceActor(RegistryFollower(registry, database.dsn))
    )
    codec = token_codec(settings)
    shared_buckets: RedisBuckets | None = None  # limits shared by every hub (TVM-SEC-003)
    if settings.redis_url is not None and settings.rate_limit_enabled:
        buckets = shared_buckets = RedisBuckets(
            settings.redis_url, prefix=f"{settings.redis_namespace}:rate:"
        )
        await supervisor.start_child("rate_limits", "redis", lambda: ServiceActor(buckets))
    accounts = AccountService(
        database=database,
        registry=registry,
        codec=codec,
        limiter=(
            RateLimiter(login_limits(settings), enabled=settings.rate_limit_enabled)
            if shared_buckets is None
            else SharedRateLimiter(login_limits(settings), shared_buckets)
        ),
        refresh_ttl_seconds=settings.refresh_token_ttl,
    )
    admin = settings.admin_username, settings.admin_password
    if admin[0] and admin[1] and await accounts.ensure_admin(admin[0], admin[1]):
        logger.info("created admin user %s", settings.admin_username)
    bus = (
        None
        if settings.redis_url is None
        else RedisBus(
            settings.redis_url,
            hub_id=new_hub_id(),
            presence_ttl=settings.ping_interval + settings.pong_timeout,
            namespace=settings.redis_namespace,
        )
    )
    router = await start_router(actors, bus=bus, presence=bus)
    alert_store = DatabaseAlertStore(database)
    alerts = await supervisor.start_child(
        ALERTS_KIND,
        ALERTS_KEY,
        lambda: AlertsActor(
            fan_out=router,
            store=alert_store,
            channels=channels_from_settings(settings),
            escalate_after=settings.alert_escalation_after,
        ),
        mailbox_size=ALERTS_MAILBOX,
    )
    retention = RetentionJob(
        database.with_call_timeout(RETENTION_CALL_TIMEOUT), RetentionPolicy.from_settings(settings)
    )
    await supervisor.start_child("retention", "daily", lambda: ServiceActor(retention))
    publisher = HubPublisher(router, alerts)
    store = PostgresVehicleStore(database, writer)
    known_error_codes = await vehicle_queries.known_error_codes(database)
    options = VehicleOptions(
        rate_limits=settings.rate_limits,
        rate_limit_enabled=settings.rate_limit_enabled,
        shared_limits=(
            None
            if shared_buckets is None
            else SharedRateLimiter(settings.rate_limits, shared_buckets)
        ),
        command_ttl=timedelta(seconds=settings.command_ttl),
        ack_timeout=settings.command_ack_timeout,
        ping_interval=settings.ping_interval,
    )

    def make_vehicle_actor(vehicle_id: str) -> VehicleActor:
        return VehicleActor(
            vehicle_id,
            store=store,
            publisher=publisher,
            known_error_codes=known_error_codes,
            options=options,
            presence=bus,
        )

    vehicles = VehicleDirectory(
        actors=actors, known=registry, make_actor=make_vehicle_actor, hub=bus
    )
    await supervisor.start_child(
        "commands", "queued", lambda: ServiceActor(QueuedCommandFollower(vehicles, database.dsn))
    )
    if bus is not None:
        relay = BusRelay(router, vehicles)
        await supervisor.start_child("bus", "redis", lambda: ServiceActor(BusService(bus, relay)))
        with trio.move_on_after(BUS_START_WAIT):  # start on the bus if Redis is there
            await bus.until_up()

    return HubServices(
        settings=settings,
        codec=codec,
        registry=registry,
        accounts=accounts,
        reads=FleetReads(database=database, registry=registry, history_reads=reads),
        health=HealthProbe(
            database=database,
            writer=writer,
            registry=registry,
            reads=reads,
            redis_url=settings.redis_url,
        ),
        actors=actors,
        vehicles=vehicles,
        router=router,
        alerts=AlertBook(alert_store, alerts),
        missions=MissionService(database=database, registry=registry),
        socket_policy=SocketPolicy(
            ping_interval=settings.ping_interval, pong_timeout=settings.pong_timeout
        ),
    )


async def wait_for_stop_signal() -> None:
    """Return at the first SIGTERM or SIGINT."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            logger.info("received %s, shutting down", signal.Signals(signum).name)
            return


async def serve_hub(
    settings: Settings,
    dsn: str,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] = wait_for_stop_signal,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``shutdown_trigger`` returns; report the bound addresses when listening."""
    async with (
        open_asyncio_bridge(),
        open_database(
            dsn,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            connect_timeout=settings.db_pool_timeout,
        ) as database,
        open_read_databases(
            database, settings.database_read_url, max_size=settings.db_pool_max
        ) as reads,
    ):
        writer = Writer(database, retry_delays=settings.db_retry_delays)
        supervisor = Supervisor(name="hub")
        config = hypercorn_config(settings)
        async with trio.open_nursery() as service_nursery:
            await service_nursery.start(supervisor.run)
            actors = Registry(supervisor)
            services = await start_services(settings, database, writer, actors, reads)
            app = create_app(services)
            served: ASGIApp = app  # type: ignore[assignment]
            if settings.fast_paths:  # the sockets served in front of Quart
                served = LeanSockets(served, services)
            # Inside ProxyFixMiddleware, which deep-copies the scope: the writer holds a stream.
            served = BatchedWebsocketSend(served)
            if settings.fast_paths:  # the hot POSTs answered in front of Quart
                served = LeanPaths(
                    served, services, [TelemetryRoute(services), CommandRoute(services)]
                )
            if settings.tls_enabled and settings.http_redirect_port is not None:
                served = RedirectInsecure(served, https_port=settings.port or 443)
            if settings.trusted_proxy_hops:  # the client's address as the proxies saw it
                served = ProxyFixMiddleware(  # type: ignore[assignment]
                    served,  # type: ignore[arg-type]
                    mode="legacy",
                    trusted_hops=settings.trusted_proxy_hops,
                )

            async def stop_trigger() -> None:
                await shutdown_trigger()
                services.accepting = False
                told = services.vehicles.going_away()
                closed = await _close_sessions(actors)
                logger.info(
                    "shutting down: %d vehicle and %d frontend sockets closing", told, closed
                )

            async def serve_http(*, task_status: trio.TaskStatus[list[str]]) -> None:
                contained_connections.install()  # a fault in one connection ends only it
                await hypercorn_serve(
                    served,  # type: ignore[arg-type]
                    config,
                    shutdown_trigger=stop_trigger,
                    task_status=task_status,
                )
                with trio.move_on_after(DRAIN_TIMEOUT):
                    await services.vehicles.drain()  # command rows and statuses queued so far
                service_nursery.cancel_scope.cancel()  # HTTP is done: stop every actor

            binds = await service_nursery.start(serve_http)
            tune_garbage_collector()
            await service_nursery.start(watch_loop_lag)
            base = binds[0]
            logger.info(
                "TVM Hub%s listening on %s — API docs %s/docs, WebSocket protocol"
                " %s/asyncapi.json, health %s/health",
                _worker_name(settings),
                ", ".join(binds),
                base,
                base,
                base,
            )
            task_status.started(binds)
        with trio.CancelScope(shield=True):
            services.accepting = False
            await writer.drain()


async def _close_sessions(actors: Registry) -> int:
    """Stop every frontend session: each closes its socket with 1001 as it goes."""
    refs = actors.supervisor.refs("session")
    async with trio.open_nursery() as closing:
        for ref in refs:
            closing.start_soon(actors.supervisor.stop_child, ref.kind, ref.key)
    return len(refs)


LISTEN_BACKLOG = 4096
"""Connections the kernel may hold before the hub accepts them (capped by
``net.core.somaxconn``). A hub restart has the whole fleet reconnect within a second or two;
with Hypercorn's default of 100 the rest of the SYNs are dropped and retried 1, 3, 7 s later,
which a vehicle sees as a connect timeout."""


def hypercorn_config(settings: Settings) -> HypercornConfig:
    """Hypercorn's configuration: listeners, TLS 1.2+ (Hypercorn's minimum), limits."""
    config = HypercornConfig()
    config.bind = [f"{settings.host}:{settings.port}"]
    if settings.tls_enabled:
        config.certfile = str(settings.tls_cert_file)
        config.keyfile = str(settings.tls_key_file)
        config.ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20"
        if settings.http_redirect_port is not None:
            config.insecure_bind = [f"{settings.host}:{settings.http_redirect_port}"]
    config.graceful_timeout = GRACEFUL_TIMEOUT
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.websocket_max_message_size = settings.websocket_max_message_bytes
    config.h11_max_incomplete_size = 64 * 1024
    config.backlog = LISTEN_BACKLOG
    if settings.worker_id is not None:
        share_port(config, settings.workers)
    return config


def share_port(config: HypercornConfig, workers: int) -> None:
    """Bind with ``SO_REUSEPORT``, so the ``workers`` processes of ``serve --workers`` listen on
    one port and the kernel spreads new connections across them.

    Hypercorn sets that option on the sockets it creates when ``workers > 1``; its ``serve``
    runs one process whatever ``workers`` says, and warns that the setting has no effect there.
    """
    config.workers = workers
    warnings.filterwarnings(
        "ignore", message="The config `workers` has no affect", module="hypercorn"
    )


def _worker_name(settings: Settings) -> str:
    """`` worker 2 (pid 4242)`` under ``serve --workers N``, else nothing."""
    if settings.worker_id is None:
        return ""
    return f" worker {settings.worker_id} (pid {os.getpid()})"


def run(settings: Settings) -> None:
    """Start everything and block until the hub stops (the ``tvm-hub serve`` command).

    A worker of ``serve --workers N`` (``TVM_WORKER_ID`` set) finds its database in
    ``DATABASE_URL`` and leaves the migrations to its parent, which ran them before starting it.
    """
    target = resolve_database(settings)
    try:
        if settings.worker_id is None:
            migrate.upgrade(target.dsn)
        trio.run(serve_hub, settings, target.dsn)
    finally:
        target.stop()
