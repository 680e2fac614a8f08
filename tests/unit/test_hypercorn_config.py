"""What the hub asks of Hypercorn: its address, limits, and room for a reconnecting fleet."""

from __future__ import annotations

from pathlib import Path

from api.serve import hypercorn_config
from hub.config import load_settings


def test_a_whole_fleet_reconnecting_at_once_finds_room_in_the_listen_queue(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        {"TVM_DATA_DIR": str(tmp_path), "TVM_PORT": "8123", "TVM_WS_MAX_MESSAGE_BYTES": "4096"}
    )
    config = hypercorn_config(settings)

    assert config.backlog >= 2000  # Hypercorn's default of 100 dropped a 2,000-vehicle storm
    assert config.bind == ["127.0.0.1:8123"]
    assert config.websocket_max_message_size == 4096
