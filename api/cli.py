"""The ``tvm-hub`` command: serve, database migrations, and vehicle/user administration.

Every command reads its configuration from the environment (see ``.env.example``); a bad
setting prints one line naming the variable and exits 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import trio

from actors.accounts import AccountService
from actors.rate_limit import RateLimiter
from actors.vehicle.registry import VehicleRegistry
from api import serve
from api.workers import WorkersStartError, run_workers
from hub.config import ConfigError, Settings, load_settings, worker_count
from hub.contract.roles import PEOPLE_ROLES
from hub.errors import ContractError
from hub.logs import configure_logging
from hub.security import TokenCodec, configure_hashing
from hub.simulator import options as simulator_options
from storage import migrate
from storage.database import StorageError, open_asyncio_bridge, open_database

T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tvm-hub", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser(
        "serve", help="run the hub (HTTP + WebSocket) until SIGTERM"
    )
    serve_command.add_argument(
        "--workers",
        type=_worker_count,
        default=None,
        metavar="N",
        help="hub processes sharing the port (default TVM_WORKERS, else 1); see docs/deployment.md",
    )

    database = commands.add_parser("db", help="database migrations")
    database_commands = database.add_subparsers(dest="db_command", required=True)
    upgrade = database_commands.add_parser("upgrade", help="migrate to a revision (default head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    downgrade = database_commands.add_parser("downgrade", help="roll back (default one step)")
    downgrade.add_argument("revision", nargs="?", default="-1")
    database_commands.add_parser("current", help="print the applied revision")

    vehicle = commands.add_parser("vehicle", help="vehicle administration")
    vehicle_commands = vehicle.add_subparsers(dest="vehicle_command", required=True)
    vehicle_add = vehicle_commands.add_parser("add", help="register a vehicle, print its secret")
    vehicle_add.add_argument("vehicle_id")
    vehicle_add.add_argument("--name", default=None)

    user = commands.add_parser("user", help="user administration")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    user_add = user_commands.add_parser("add", help="add a person; prints the password")
    user_add.add_argument("username")
    user_add.add_argument("--role", choices=PEOPLE_ROLES, required=True)
    user_add.add_argument("--email", default=None)
    user_add.add_argument(
        "--password-prompt", action="store_true", help="ask for the password instead of generating"
    )

    archive = commands.add_parser("archive", help="retention: archive old telemetry and audit logs")
    archive.add_argument(
        "--now", action="store_true", required=True, help="run one retention pass now"
    )

    simulate = commands.add_parser("simulate", help="run simulated vehicles against a hub")
    simulator_options.add_arguments(simulate)
    return parser


def _worker_count(text: str) -> int:
    try:
        return worker_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _serve(settings: Settings, workers: int | None) -> int:
    """``serve``: one hub process, or the parent of ``workers`` of them (``--workers``)."""
    count = settings.workers if workers is None else workers
    if settings.worker_id is not None or count == 1:
        serve.run(settings)
        return 0
    settings = dataclasses.replace(settings, workers=count)
    try:
        return run_workers(settings, prepare=lambda dsn: _prepare_workers(settings, dsn))
    except WorkersStartError as exc:
        logging.getLogger(__name__).error("cannot start the workers: %s", exc)
        print(f"tvm-hub: {exc}", file=sys.stderr)
        return 1


def _prepare_workers(settings: Settings, dsn: str) -> None:
    """Create the configured admin once, before the workers start (each would try it)."""
    username, password = settings.admin_username, settings.admin_password
    if username is None or password is None:
        return
    if trio.run(_with_accounts, settings, dsn, lambda a: a.ensure_admin(username, password)):
        logging.getLogger(__name__).info("created admin user %s", username)


async def _with_accounts(
    settings: Settings, dsn: str, work: Callable[[AccountService], Awaitable[T]]
) -> T:
    async with open_asyncio_bridge(), open_database(dsn, min_size=1, max_size=2) as database:
        registry = VehicleRegistry(database)
        accounts = AccountService(
            database=database,
            registry=registry,
            codec=TokenCodec(
                settings.jwt_secret,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_seconds=settings.access_token_ttl,
            ),
            limiter=RateLimiter({}),
            refresh_ttl_seconds=settings.refresh_token_ttl,
        )
        await registry.load()
        return await work(accounts)


def _run_admin(settings: Settings, work: Callable[[AccountService], Awaitable[T]]) -> T:
    target = serve.resolve_database(settings)
    try:
        migrate.upgrade(target.dsn)
        return trio.run(_with_accounts, settings, target.dsn, work)
    finally:
        target.stop()


def _vehicle_add(settings: Settings, vehicle_id: str, name: str | None) -> int:
    from hub.contract.admin import VehicleCreate
    from hub.contract.validation import validate_model

    body = validate_model(VehicleCreate, {"vehicle_id": vehicle_id, "name": name or vehicle_id})
    credentials = _run_admin(
        settings, lambda accounts: accounts.register_vehicle(body.vehicle_id, body.name)
    )
    print(f"vehicle_id={credentials.vehicle_id}")
    print(f"client_id={credentials.client_id}")
    print(f"client_secret={credentials.client_secret}")
    print("# the secret is shown once; store it on the vehicle now", file=sys.stderr)
    return 0


def _user_add(settings: Settings, username: str, role: str, email: str | None, prompt: bool) -> int:
    from hub.contract.admin import UserCreate
    from hub.contract.validation import validate_model

    password = getpass.getpass("password: ") if prompt else secrets.token_urlsafe(18)
    body = validate_model(
        UserCreate, {"username": username, "password": password, "role": role, "email": email}
    )
    _run_admin(
        settings,
        lambda accounts: accounts.create_user(body.username, body.password, body.role, body.email),
    )
    print(f"username={body.username}")
    print(f"role={body.role}")
    if not prompt:
        print(f"password={password}")
    return 0


def _archive(settings: Settings) -> int:
    """One retention pass (what the daily job does); prints name=value lines of its summary."""
    from actors.retention.job import (
        RETENTION_CALL_TIMEOUT,
        RetentionJob,
        RetentionPolicy,
        RetentionSummary,
    )

    async def one_pass(dsn: str) -> RetentionSummary:
        async with open_asyncio_bridge(), open_database(dsn, min_size=1, max_size=2) as database:
            job = RetentionJob(
                database.with_call_timeout(RETENTION_CALL_TIMEOUT),
                RetentionPolicy.from_settings(settings),
            )
            return await job.run_pass()

    target = serve.resolve_database(settings)
    try:
        migrate.upgrade(target.dsn)
        summary = trio.run(one_pass, target.dsn)
    finally:
        target.stop()
    print("\n".join(summary.lines()))
    return 1 if summary.errors else 0


def _db(settings: Settings, command: str, revision: str) -> int:
    target = serve.resolve_database(settings)
    try:
        if command == "upgrade":
            migrate.upgrade(target.dsn, revision)
        elif command == "downgrade":
            migrate.downgrade(target.dsn, revision)
        print(migrate.current(target.dsn) or "base")
    finally:
        target.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tvm-hub`` console script; returns the exit status."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "simulate":  # a client of the hub: needs none of its settings
        return simulator_options.main(arguments)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"tvm-hub: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        settings.log_level,
        log_dir=settings.log_dir,
        files_kept=settings.log_files_kept,
        worker=settings.worker_id,
    )
    configure_hashing(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    try:
        match arguments.command:
            case "serve":
                return _serve(settings, arguments.workers)
            case "db":
                return _db(settings, arguments.db_command, getattr(arguments, "revision", ""))
            case "vehicle":
                return _vehicle_add(settings, arguments.vehicle_id, arguments.name)
            case "archive":
                return _archive(settings)
            case "user":
                return _user_add(
                    settings,
                    arguments.username,
                    arguments.role,
                    arguments.email,
                    arguments.password_prompt,
                )
    except ContractError as exc:
        print(f"tvm-hub: {exc.error}: {exc.message}", file=sys.stderr)
        return 1
    except StorageError as exc:
        logging.getLogger(__name__).error("database error: %s", exc)
        print(f"tvm-hub: database error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
