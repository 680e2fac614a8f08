"""The frame recorder of the integration tests catches a frame the document does not describe."""

from __future__ import annotations

import json

from actors.sockets.connection import SocketPolicy
from api.asyncapi import build_document
from hub.contract import ws_events
from tests.frame_log import FrameLog, channel_of

NOW = "2025-12-16T10:30:45.123Z"


def test_documented_frames_pass_and_anything_else_is_named() -> None:
    log = FrameLog(build_document(SocketPolicy()))
    log.record("/ws/v1/vehicle/wheelchair_001?token=x", json.dumps(ws_events.pong(NOW)))
    log.record("/ws/v1/fleet", json.dumps(ws_events.vehicle_connection("v1", True, NOW, 3)))
    assert log.problems() == []
    log.record("/ws/v1/fleet", json.dumps(ws_events.welcome("v1", NOW, 30)))  # vehicles only
    log.record("/ws/v1/fleet", json.dumps({**ws_events.pong(NOW), "timestamp": "yesterday"}))
    log.record("/ws/vehicle/v1", "not json")
    problems = log.problems()
    assert len(problems) == 3
    assert "'welcome'" in problems[0]
    assert "PongFrame" in problems[1]
    assert "not JSON" in problems[2]
    assert log.types() == {"pong", "vehicle_connection", "welcome"}


def test_socket_paths_map_to_their_channels() -> None:
    assert channel_of("/ws/v1/vehicle/wheelchair_001?token=abc") == "vehicleSocket"
    assert channel_of("/ws/vehicle/wheelchair_001") == "vehicleSocketAlias"
    assert channel_of("/ws/v1/fleet?token=abc") == "fleetSocket"
    assert channel_of("/api/v1/vehicles") is None
