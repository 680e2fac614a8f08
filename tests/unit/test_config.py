"""Configuration from the environment: defaults, and one clear error naming the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.config import ConfigError, RateLimit, load_settings


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"TVM_DATA_DIR": str(tmp_path), **values}


def test_defaults_match_the_documented_ones(tmp_path: Path) -> None:
    settings = load_settings(_env(tmp_path))
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.database_url is None
    assert (settings.db_pool_min, settings.db_pool_max, settings.db_pool_timeout) == (5, 20, 30.0)
    assert settings.rate_limits["location"] == RateLimit(1.0, 5)
    assert settings.rate_limits["battery"] == RateLimit(0.2, 2)
    assert not settings.is_production


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings(_env(tmp_path)).jwt_secret
    second = load_settings(_env(tmp_path)).jwt_secret
    assert first == second
    assert len(first.encode()) >= 32
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TVM_PORT", "abc"),
        ("TVM_PORT", "70000"),
        ("TVM_ENV", "staging"),
        ("DATABASE_URL", "mysql://x"),
        ("TVM_DB_POOL_MIN", "0"),
        ("TVM_RATE_LOCATION", "fast"),
        ("TVM_RATE_LIMIT_ENABLED", "maybe"),
        ("TVM_LOG_LEVEL", "LOUD"),
        ("JWT_SECRET", "short"),
    ],
)
def test_a_bad_value_names_its_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(_env(tmp_path, **{name: value}))


def test_production_requires_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_settings(_env(tmp_path, TVM_ENV="production"))
    assert not (tmp_path / "jwt_secret").exists()


def test_pool_bounds_must_be_ordered(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TVM_DB_POOL_MIN"):
        load_settings(_env(tmp_path, TVM_DB_POOL_MIN="30", TVM_DB_POOL_MAX="20"))


def test_admin_needs_both_name_and_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TVM_ADMIN_PASSWORD"):
        load_settings(_env(tmp_path, TVM_ADMIN_USERNAME="root"))


def test_rate_limits_are_configurable(tmp_path: Path) -> None:
    settings = load_settings(_env(tmp_path, TVM_RATE_LOCATION="2/10"))
    assert settings.rate_limits["location"] == RateLimit(2.0, 10)


def test_operational_defaults_are_the_documented_ones(tmp_path: Path) -> None:
    """The figures README and .env.example promise (each default is written once, in
    ``hub.config.Settings``; the retention policy and the actors take them from there)."""
    from datetime import time, timedelta

    from actors.retention.job import RetentionPolicy

    settings = load_settings(_env(tmp_path))
    assert (settings.command_ack_timeout, settings.command_ttl) == (5.0, 600.0)
    assert (settings.ping_interval, settings.pong_timeout) == (30.0, 10.0)
    assert settings.alert_escalation_after == 300.0
    assert settings.body_timeout == 30.0
    assert settings.bulk_max_age == timedelta(days=30).total_seconds()
    policy = RetentionPolicy.from_settings(settings)
    assert policy.at == time(2, 0)
    assert (policy.locations_age, policy.status_age, policy.audit_age) == (
        timedelta(days=30),
        timedelta(days=90),
        timedelta(days=90),
    )
    assert policy.archive_dir == tmp_path.resolve() / "archive"
    assert RetentionPolicy(archive_dir=policy.archive_dir) == policy


def test_retention_settings_reach_the_policy(tmp_path: Path) -> None:
    from datetime import time, timedelta

    from actors.retention.job import RetentionPolicy

    settings = load_settings(
        _env(
            tmp_path,
            TVM_RETENTION_TIME_UTC="03:30",
            TVM_RETENTION_LOCATIONS_DAYS="7",
            TVM_RETENTION_STATUS_DAYS="14",
            TVM_RETENTION_AUDIT_DAYS="365",
        )
    )
    policy = RetentionPolicy.from_settings(settings)
    assert policy.at == time(3, 30)
    assert (policy.locations_age, policy.status_age, policy.audit_age) == (
        timedelta(days=7),
        timedelta(days=14),
        timedelta(days=365),
    )


def test_production_refuses_cheap_secret_hashes(tmp_path: Path) -> None:
    production = {
        "TVM_ENV": "production",
        "JWT_SECRET": "p" * 40,
        "TVM_TLS_TERMINATED_BY_PROXY": "true",
    }
    with pytest.raises(ConfigError, match="TVM_ARGON2"):
        load_settings(_env(tmp_path, **production, TVM_ARGON2_MEMORY_KIB="1024"))
    settings = load_settings(_env(tmp_path, **production))
    assert (settings.argon2_time_cost, settings.argon2_memory_kib) == (3, 65536)
    cheap = load_settings(_env(tmp_path, TVM_ARGON2_TIME_COST="1", TVM_ARGON2_MEMORY_KIB="1024"))
    assert (cheap.argon2_time_cost, cheap.argon2_memory_kib) == (1, 1024)


class _ReadNames(dict[str, str]):
    """An environment that remembers every variable asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)


def test_every_variable_of_the_example_file_is_one_the_hub_reads(tmp_path: Path) -> None:
    example = (Path(__file__).parents[2] / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    env = _ReadNames(_env(tmp_path))
    load_settings(env)
    assert "TVM_FAST_PATHS" in listed
    assert sorted(listed - env.asked) == []
