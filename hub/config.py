"""Configuration, read only from environment variables and checked before anything starts.

Every setting has a default written in its unit. :func:`load_settings` raises
:class:`ConfigError` naming the variable at fault; the CLI prints that one line and exits 2.
``.env.example`` lists every variable read here.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

SECONDS = 1.0
MINUTES = 60 * SECONDS
HOURS = 60 * MINUTES
DAYS = 24 * HOURS

MIN_JWT_SECRET_BYTES = 32
ARGON2_PRODUCTION_MINIMUM = (2, 19 * 1024)
"""Time cost and memory (KiB) below which production refuses to hash secrets (OWASP)."""
ENVIRONMENTS = ("development", "production")
MAX_WORKERS = 64
"""The most hub processes ``serve --workers`` runs (``TVM_WORKERS``)."""

T = TypeVar("T")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``rate`` tokens per second, holding at most ``burst``."""

    rate: float
    burst: int


def _default_rate_limits() -> dict[str, RateLimit]:
    return {
        "location": RateLimit(1.0, 5),
        "status": RateLimit(1.0, 5),
        "battery": RateLimit(1 / 5, 2),
        "error": RateLimit(10.0, 20),
        "docking": RateLimit(2.0, 10),
        "bulk": RateLimit(1 / 5, 3),
    }


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the hub reads from its environment (CONTRACT §9)."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./var")
    environment: str = "development"
    database_url: str | None = None
    database_read_url: str | None = None
    jwt_secret: str = ""
    jwt_issuer: str = "tvm-hub"
    jwt_audience: str = "tvm"
    access_token_ttl: float = 24 * HOURS
    refresh_token_ttl: float = 30 * DAYS
    admin_username: str | None = None
    admin_password: str | None = None
    db_pool_min: int = 5
    db_pool_max: int = 20
    db_pool_timeout: float = 30 * SECONDS
    db_retry_delays: tuple[float, ...] = (1 * SECONDS, 2 * SECONDS, 4 * SECONDS)
    rate_limits: dict[str, RateLimit] = field(default_factory=_default_rate_limits)
    rate_limit_enabled: bool = True
    login_attempts_per_minute: int = 10
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 64 * 1024
    argon2_parallelism: int = 4
    bulk_max_age: float = 30 * DAYS
    bulk_max_messages: int = 1000
    log_level: str = "INFO"
    log_dir: Path | None = None
    log_files_kept: int = 10
    command_ttl: float = 10 * MINUTES
    command_ack_timeout: float = 5 * SECONDS
    ping_interval: float = 30 * SECONDS
    pong_timeout: float = 10 * SECONDS
    redis_url: str | None = None
    redis_namespace: str = "tvm"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "tvm-hub@localhost"
    smtp_to: tuple[str, ...] = ()
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    alert_escalation_after: float = 5 * MINUTES
    retention_time_utc: str = "02:00"
    retention_locations_days: int = 30
    retention_status_days: int = 90
    retention_audit_days: int = 90
    archive_dir: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_terminated_by_proxy: bool = False
    trusted_proxy_hops: int = 0
    http_redirect_port: int | None = None
    cors_origins: tuple[str, ...] = ()
    body_timeout: float = 30 * SECONDS
    fast_paths: bool = True
    websocket_max_message_bytes: int = 1024 * 1024
    workers: int = 1
    worker_id: int | None = None

    @property
    def tls_enabled(self) -> bool:
        """True when the hub terminates TLS itself."""
        return self.tls_cert_file is not None

    @property
    def is_production(self) -> bool:
        """True when ``TVM_ENV=production``: stricter start checks apply."""
        return self.environment == "production"


DEFAULTS = Settings()
"""Every setting's default, written once (in :class:`Settings`)."""


def _parse(env: Mapping[str, str], name: str, convert: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return convert(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is invalid: {exc}") from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number 0-65535")
    return value


def worker_count(text: str) -> int:
    """``TVM_WORKERS`` (or ``serve --workers``): how many hub processes share the port."""
    value = int(text)
    if not 1 <= value <= MAX_WORKERS:
        raise ValueError(f"must be a whole number of workers from 1 to {MAX_WORKERS}")
    return value


def _worker_id(env: Mapping[str, str], workers: int) -> int | None:
    """``TVM_WORKER_ID``, set by the parent of ``serve --workers N``: 0 to N - 1."""

    def convert(text: str) -> int:
        value = int(text)
        if not 0 <= value < workers:
            raise ValueError(f"must be 0 to {workers - 1} (TVM_WORKERS={workers})")
        return value

    return _parse(env, "TVM_WORKER_ID", convert, None)


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _database_url(text: str) -> str:
    if not text.startswith(("postgresql://", "postgres://")):
        raise ValueError("must start with postgresql://")
    return text


def _rate_limits(env: Mapping[str, str]) -> dict[str, RateLimit]:
    """``TVM_RATE_<KIND>=<rate per second>/<burst>``, e.g. ``TVM_RATE_LOCATION=1/5``."""
    limits = _default_rate_limits()
    for kind in list(limits):
        name = f"TVM_RATE_{kind.upper()}"

        def convert(text: str) -> RateLimit:
            rate_text, _, burst_text = text.partition("/")
            if not burst_text:
                raise ValueError("must be <tokens per second>/<burst>, e.g. 1/5")
            return RateLimit(_positive_float(rate_text), _positive_int(burst_text))

        limits[kind] = _parse(env, name, convert, limits[kind])
    return limits


def _jwt_secret(env: Mapping[str, str], environment: str, data_dir: Path) -> str:
    secret = env.get("JWT_SECRET", "")
    if secret:
        if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigError(f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes")
        return secret
    if environment == "production":
        raise ConfigError("JWT_SECRET is required in production (at least 32 bytes)")
    return _development_secret(data_dir)


def _development_secret(data_dir: Path) -> str:
    """A secret generated once and kept in the data dir, so tokens survive restarts."""
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret


def _proxy_hops(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 5:
        raise ValueError("must be 0 to 5")
    return value


def _namespace(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text):
        raise ValueError("must be 1-64 letters, digits, '_', '.' or '-'")
    return text


def _hour_minute(text: str) -> str:
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ValueError("must be HH:MM (UTC)")
    return f"{int(hours):02d}:{int(minutes):02d}"


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise ValueError("no such file")
    return path


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _redis_url(text: str) -> str:
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return text


def _tls_files(env: Mapping[str, str], environment: str) -> tuple[Path | None, Path | None, bool]:
    """``TLS_CERT_FILE``/``TLS_KEY_FILE`` (both or neither) and whether a proxy terminates TLS;
    production needs one or the other."""
    cert = _parse(env, "TLS_CERT_FILE", _existing_file, None)
    key = _parse(env, "TLS_KEY_FILE", _existing_file, None)
    if (cert is None) != (key is None):
        raise ConfigError("TLS_CERT_FILE and TLS_KEY_FILE must be set together")
    proxy = _parse(env, "TVM_TLS_TERMINATED_BY_PROXY", _bool, DEFAULTS.tls_terminated_by_proxy)
    if environment == "production" and cert is None and not proxy:
        raise ConfigError(
            "TLS_CERT_FILE/TLS_KEY_FILE are required in production "
            "(or set TVM_TLS_TERMINATED_BY_PROXY=true behind a TLS proxy)"
        )
    return cert, key, proxy


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; raise :class:`ConfigError` on the first bad one.

    Blocks only for the file access of the development JWT secret.
    """
    env = os.environ if env is None else env
    environment = _parse(env, "TVM_ENV", str, DEFAULTS.environment)
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"TVM_ENV={environment!r} is invalid: must be development or production")
    data_dir = _parse(env, "TVM_DATA_DIR", Path, DEFAULTS.data_dir).resolve()
    admin_username = env.get("TVM_ADMIN_USERNAME") or None
    admin_password = env.get("TVM_ADMIN_PASSWORD") or None
    if (admin_username is None) != (admin_password is None):
        raise ConfigError("TVM_ADMIN_USERNAME and TVM_ADMIN_PASSWORD must be set together")
    if admin_password is not None and len(admin_password) < 12:
        raise ConfigError("TVM_ADMIN_PASSWORD must be at least 12 characters")
    pool_min = _parse(env, "TVM_DB_POOL_MIN", _positive_int, DEFAULTS.db_pool_min)
    pool_max = _parse(env, "TVM_DB_POOL_MAX", _positive_int, DEFAULTS.db_pool_max)
    if pool_min > pool_max:
        raise ConfigError("TVM_DB_POOL_MIN must not exceed TVM_DB_POOL_MAX")
    log_level = _parse(env, "TVM_LOG_LEVEL", str.upper, DEFAULTS.log_level)
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"TVM_LOG_LEVEL={log_level!r} is invalid: DEBUG, INFO, WARNING or ERROR")
    jwt_secret = _jwt_secret(env, environment, data_dir)
    argon2_time = _parse(env, "TVM_ARGON2_TIME_COST", _positive_int, DEFAULTS.argon2_time_cost)
    argon2_memory = _parse(env, "TVM_ARGON2_MEMORY_KIB", _positive_int, DEFAULTS.argon2_memory_kib)
    minimum_time, minimum_memory = ARGON2_PRODUCTION_MINIMUM
    if environment == "production" and (
        argon2_time < minimum_time or argon2_memory < minimum_memory
    ):
        raise ConfigError(
            f"TVM_ARGON2_TIME_COST >= {minimum_time} and TVM_ARGON2_MEMORY_KIB >="
            f" {minimum_memory} are required in production"
        )
    cert, key, proxy = _tls_files(env, environment)
    workers = _parse(env, "TVM_WORKERS", worker_count, DEFAULTS.workers)
    d = DEFAULTS
    return Settings(
        host=_parse(env, "TVM_HOST", str, d.host),
        port=_parse(env, "TVM_PORT", _port, d.port),
        data_dir=data_dir,
        environment=environment,
        database_url=_parse(env, "DATABASE_URL", _database_url, d.database_url),
        database_read_url=_parse(env, "DATABASE_READ_URL", _database_url, d.database_read_url),
        jwt_secret=jwt_secret,
        jwt_issuer=_parse(env, "JWT_ISSUER", str, d.jwt_issuer),
        jwt_audience=_parse(env, "JWT_AUDIENCE", str, d.jwt_audience),
        access_token_ttl=_parse(
            env, "TVM_ACCESS_TOKEN_TTL_SECONDS", _positive_float, d.access_token_ttl
        ),
        refresh_token_ttl=_parse(
            env, "TVM_REFRESH_TOKEN_TTL_SECONDS", _positive_float, d.refresh_token_ttl
        ),
        admin_username=admin_username,
        admin_password=admin_password,
        db_pool_min=pool_min,
        db_pool_max=pool_max,
        db_pool_timeout=_parse(
            env, "TVM_DB_POOL_TIMEOUT_SECONDS", _positive_float, d.db_pool_timeout
        ),
        rate_limits=_rate_limits(env),
        rate_limit_enabled=_parse(env, "TVM_RATE_LIMIT_ENABLED", _bool, d.rate_limit_enabled),
        login_attempts_per_minute=_parse(
            env, "TVM_LOGIN_ATTEMPTS_PER_MINUTE", _positive_int, d.login_attempts_per_minute
        ),
        argon2_time_cost=argon2_time,
        argon2_memory_kib=argon2_memory,
        argon2_parallelism=_parse(
            env, "TVM_ARGON2_PARALLELISM", _positive_int, d.argon2_parallelism
        ),
        bulk_max_age=_parse(env, "TVM_BULK_MAX_AGE_DAYS", _positive_float, d.bulk_max_age / DAYS)
        * DAYS,
        log_level=log_level,
        log_dir=_parse(env, "TVM_LOG_DIR", Path, d.log_dir),
        log_files_kept=_parse(env, "TVM_LOG_FILES_KEPT", _positive_int, d.log_files_kept),
        command_ttl=_parse(env, "TVM_COMMAND_TTL_SECONDS", _positive_float, d.command_ttl),
        command_ack_timeout=_parse(
            env, "TVM_COMMAND_ACK_TIMEOUT_SECONDS", _positive_float, d.command_ack_timeout
        ),
        ping_interval=_parse(env, "TVM_WS_PING_INTERVAL_SECONDS", _positive_float, d.ping_interval),
        pong_timeout=_parse(env, "TVM_WS_PONG_TIMEOUT_SECONDS", _positive_float, d.pong_timeout),
        redis_url=_parse(env, "REDIS_URL", _redis_url, d.redis_url),
        redis_namespace=_parse(env, "TVM_REDIS_NAMESPACE", _namespace, d.redis_namespace),
        smtp_host=_parse(env, "SMTP_HOST", str, d.smtp_host),
        smtp_port=_parse(env, "SMTP_PORT", _port, d.smtp_port),
        smtp_from=_parse(env, "SMTP_FROM", str, d.smtp_from),
        smtp_to=_parse(env, "SMTP_TO", _list, d.smtp_to),
        smtp_username=_parse(env, "SMTP_USERNAME", str, d.smtp_username),
        smtp_password=_parse(env, "SMTP_PASSWORD", str, d.smtp_password),
        smtp_starttls=_parse(env, "SMTP_STARTTLS", _bool, d.smtp_starttls),
        alert_escalation_after=_parse(
            env, "TVM_ALERT_ESCALATION_SECONDS", _positive_float, d.alert_escalation_after
        ),
        retention_time_utc=_parse(
            env, "TVM_RETENTION_TIME_UTC", _hour_minute, d.retention_time_utc
        ),
        retention_locations_days=_parse(
            env, "TVM_RETENTION_LOCATIONS_DAYS", _positive_int, d.retention_locations_days
        ),
        retention_status_days=_parse(
            env, "TVM_RETENTION_STATUS_DAYS", _positive_int, d.retention_status_days
        ),
        retention_audit_days=_parse(
            env, "TVM_RETENTION_AUDIT_DAYS", _positive_int, d.retention_audit_days
        ),
        archive_dir=_parse(env, "TVM_ARCHIVE_DIR", Path, data_dir / "archive"),
        tls_cert_file=cert,
        tls_key_file=key,
        tls_terminated_by_proxy=proxy,
        trusted_proxy_hops=_parse(
            env, "TVM_TRUSTED_PROXY_HOPS", _proxy_hops, DEFAULTS.trusted_proxy_hops
        ),
        http_redirect_port=_parse(env, "TVM_HTTP_REDIRECT_PORT", _port, d.http_redirect_port),
        cors_origins=_parse(env, "CORS_ORIGINS", _list, d.cors_origins),
        body_timeout=_parse(env, "TVM_BODY_TIMEOUT_SECONDS", _positive_float, d.body_timeout),
        fast_paths=_parse(env, "TVM_FAST_PATHS", _bool, d.fast_paths),
        websocket_max_message_bytes=_parse(
            env, "TVM_WS_MAX_MESSAGE_BYTES", _positive_int, d.websocket_max_message_bytes
        ),
        workers=workers,
        worker_id=_worker_id(env, workers),
    )
