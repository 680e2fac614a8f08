"""``TVM_WORKERS`` / ``TVM_WORKER_ID``, and what a worker asks of Hypercorn and of its parent:
one port shared with ``SO_REUSEPORT``, and the environment that makes it worker ``k``."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from api.serve import hypercorn_config
from api.worker_pool import describe_status
from api.workers import worker_environment
from hub.config import MAX_WORKERS, ConfigError, load_settings


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"TVM_DATA_DIR": str(tmp_path), **values}


def test_one_process_unless_told_otherwise(tmp_path: Path) -> None:
    settings = load_settings(_env(tmp_path))
    assert (settings.workers, settings.worker_id) == (1, None)


@pytest.mark.parametrize("value", ["1", "2", " 8 ", str(MAX_WORKERS)])
def test_a_worker_count_from_1_to_64(tmp_path: Path, value: str) -> None:
    assert load_settings(_env(tmp_path, TVM_WORKERS=value)).workers == int(value)


@pytest.mark.parametrize("value", ["0", "-1", str(MAX_WORKERS + 1), "two", "2.5"])
def test_a_bad_worker_count_names_tvm_workers(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="TVM_WORKERS") as raised:
        load_settings(_env(tmp_path, TVM_WORKERS=value))
    assert "\n" not in str(raised.value)


def test_a_worker_id_is_one_of_the_workers(tmp_path: Path) -> None:
    settings = load_settings(_env(tmp_path, TVM_WORKERS="3", TVM_WORKER_ID="2"))
    assert (settings.workers, settings.worker_id) == (3, 2)
    for bad in ("3", "-1", "x"):
        with pytest.raises(ConfigError, match="TVM_WORKER_ID"):
            load_settings(_env(tmp_path, TVM_WORKERS="3", TVM_WORKER_ID=bad))
    with pytest.raises(ConfigError, match="TVM_WORKER_ID"):
        load_settings(_env(tmp_path, TVM_WORKER_ID="1"))  # TVM_WORKERS defaults to 1


def _reuses_port(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))


def test_workers_bind_one_port_together_and_a_single_hub_alone(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    workers = [
        hypercorn_config(
            load_settings(_env(tmp_path, TVM_PORT=port, TVM_WORKERS="2", TVM_WORKER_ID=str(k)))
        )
        for k in range(2)
    ]
    sockets = [config.create_sockets().insecure_sockets for config in workers]
    try:
        [first], [second] = sockets
        assert first.getsockname() == second.getsockname() == ("127.0.0.1", int(port))
        assert _reuses_port(first) and _reuses_port(second)
    finally:
        for group in sockets:
            for sock in group:
                sock.close()

    single = hypercorn_config(load_settings(_env(tmp_path, TVM_PORT=port)))
    [alone] = single.create_sockets().insecure_sockets
    with alone:
        assert not _reuses_port(alone)
    assert single.backlog == workers[0].backlog


def test_a_worker_is_told_its_number_database_redis_and_port() -> None:
    environment = worker_environment(
        {"PATH": "/usr/bin", "TVM_PORT": "0", "TVM_LOG_LEVEL": "DEBUG"},
        worker_id=1,
        workers=4,
        dsn="postgresql://postgres:@/postgres?host=/var/tvm/postgres",
        redis_url="unix:///var/tvm/redis/redis.sock",
        port=43123,
        redirect_port=None,
    )
    assert environment == {
        "PATH": "/usr/bin",
        "TVM_LOG_LEVEL": "DEBUG",
        "DATABASE_URL": "postgresql://postgres:@/postgres?host=/var/tvm/postgres",
        "REDIS_URL": "unix:///var/tvm/redis/redis.sock",
        "TVM_PORT": "43123",
        "TVM_WORKERS": "4",
        "TVM_WORKER_ID": "1",
    }


def test_a_worker_exit_is_described_by_status_or_signal() -> None:
    assert describe_status(0) == "exited with status 0"
    assert describe_status(3) == "exited with status 3"
    assert describe_status(-signal.SIGKILL) == "was killed by SIGKILL"
