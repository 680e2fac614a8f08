"""Starting and stopping the hub: database, migrations, services, HTTP server.

Layout of the running process (nurseries named by role)::

    trio.run
      └─ asyncio bridge (trio-asyncio loop around everything)
           └─ database pool
                └─ service nursery: Writer task, Hypercorn serving the app

SIGTERM or SIGINT stops accepting, lets requests in flight finish (≤ 30 s), commits what
the Writer still holds, closes the pool and returns, so the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from actors.accounts import AccountService
from actors.alerts.service import AlertingSink, build_alert_service
from actors.events import EventSink
from actors.fleet_reads import FleetReads
from actors.health import HealthProbe
from actors.missions import MissionService
from actors.rate_limit import RateLimiter
from actors.retention.job import RETENTION_CALL_TIMEOUT, RetentionJob, RetentionPolicy
from actors.router.actor import RouterSink, RouterState, start_router
from actors.sockets.connection import SocketPolicy
from actors.vehicle.actor import VehicleActor
from actors.vehicle.battery_health import BatteryHealthService
from actors.vehicle.directory import VehicleDirectory
from actors.vehicle.registry import VehicleRegistry
from actors.vehicle.telemetry import TelemetryService
from api.app import create_app
from api.context import HubServices
from api.edge import ASGIApp, RedirectInsecure
from hub.config import RateLimit, Settings
from hub.runtime import Registry, Supervisor
from hub.security import TokenCodec
from storage import migrate
from storage.database import Database, open_asyncio_bridge, open_database
from storage.embedded import start_embedded_postgres
from storage.queries import vehicles as vehicle_queries
from storage.writer import Writer

logger = logging.getLogger(__name__)

GRACEFUL_TIMEOUT = 30.0
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
    """The telemetry buckets plus the two login buckets (per client id, per address)."""
    per_minute = settings.login_attempts_per_minute
    login = RateLimit(per_minute / 60.0, per_minute)
    return {**settings.rate_limits, "login_client": login, "login_address": login}


async def build_services(
    settings: Settings,
    database: Database,
    writer: Writer,
    actors: Registry,
    router: RouterSink,
) -> HubServices:
    """Load what the services need from the database and wire them together."""
    await database.check_durability()
    registry = VehicleRegistry(database)
    await registry.load()
    limiter = RateLimiter(login_limits(settings), enabled=settings.rate_limit_enabled)
    codec = TokenCodec(
        settings.jwt_secret,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl,
    )
    accounts = AccountService(
        database=database,
        registry=registry,
        codec=codec,
        limiter=limiter,
        refresh_ttl_seconds=settings.refresh_token_ttl,
    )
    admin = settings.admin_username, settings.admin_password
    if admin[0] and admin[1] and await accounts.ensure_admin(admin[0], admin[1]):
        logger.info("created admin user %s", settings.admin_username)
    battery_health = BatteryHealthService(database)
    telemetry = TelemetryService(
        registry=registry,
        battery_health=battery_health,
        staff_online=router.staff_online,
        writer=writer,
        database=database,
        limiter=limiter,
        known_error_codes=await vehicle_queries.known_error_codes(database),
    )
    alerts = build_alert_service(settings, database, router)
    sink: EventSink = AlertingSink(
        router, alerts
    )  # vehicle actors' alerts also go out by mail/Redis

    def make_vehicle_actor(vehicle_id: str) -> VehicleActor:
        return VehicleActor(
            vehicle_id,
            database=database,
            telemetry=telemetry,
            sink=sink,
            command_ttl=timedelta(seconds=settings.command_ttl),
            ack_timeout=settings.command_ack_timeout,
            ping_interval=settings.ping_interval,
        )

    return HubServices(
        settings=settings,
        codec=codec,
        limiter=limiter,
        registry=registry,
        telemetry=telemetry,
        accounts=accounts,
        reads=FleetReads(database=database, registry=registry),
        health=HealthProbe(database=database, writer=writer, registry=registry),
        actors=actors,
        vehicles=VehicleDirectory(actors=actors, known=registry, make_actor=make_vehicle_actor),
        router=router,
        alerts=alerts,
        battery_health=battery_health,
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
    ):
        writer = Writer(database, retry_delays=settings.db_retry_delays)
        supervisor = Supervisor(name="hub")
        config = hypercorn_config(settings)
        async with trio.open_nursery() as service_nursery:
            await service_nursery.start(writer.run)
            await service_nursery.start(supervisor.run)
            actors = Registry(supervisor)
            router = await start_router(actors, RouterState(seq_origin=_seq_origin()))
            services = await build_services(settings, database, writer, actors, router)
            await service_nursery.start(services.alerts.run)
            retention = RetentionJob(
                database.with_call_timeout(RETENTION_CALL_TIMEOUT),
                RetentionPolicy.from_settings(settings),
            )
            await service_nursery.start(retention.run)
            app = create_app(services)
            served: ASGIApp = app  # type: ignore[assignment]
            if settings.tls_enabled and settings.http_redirect_port is not None:
                served = RedirectInsecure(served, https_port=_tls_port(settings))

            async def stop_trigger() -> None:
                await shutdown_trigger()
                services.accepting = False
                closed = services.vehicles.going_away()
                logger.info("shutting down: closed %d sockets with 1001", closed)

            async def serve_http(*, task_status: trio.TaskStatus[list[str]]) -> None:
                await hypercorn_serve(
                    served,  # type: ignore[arg-type]
                    config,
                    shutdown_trigger=stop_trigger,
                    task_status=task_status,
                )
                with trio.move_on_after(DRAIN_TIMEOUT):
                    await services.vehicles.drain()  # command rows and statuses queued so far
                service_nursery.cancel_scope.cancel()  # HTTP is done: stop the Writer too

            binds = await service_nursery.start(serve_http)
            logger.info("TVM Hub listening on %s", ", ".join(binds))
            task_status.started(binds)
        with trio.CancelScope(shield=True):
            services.accepting = False
            await writer.drain()
            await services.battery_health.flush()


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
    return config


def _tls_port(settings: Settings) -> int:
    return settings.port or 443


def _seq_origin() -> int:
    """Where this run's event numbering starts: wall-clock microseconds.

    A restarted hub then numbers events above anything a frontend saw before, so a
    reconnecting frontend's ``since`` is never mistaken for a position in the new stream.
    """
    return time.time_ns() // 1000


def run(settings: Settings) -> None:
    """Start everything and block until the hub stops (the ``tvm-hub serve`` command)."""
    target = resolve_database(settings)
    try:
        migrate.upgrade(target.dsn)
        trio.run(serve_hub, settings, target.dsn)
    finally:
        target.stop()
