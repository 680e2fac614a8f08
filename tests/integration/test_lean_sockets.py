"""The sockets served in front of Quart (api.lean_sockets) behave exactly as Quart's routes.

The same conversations go to a hub that serves its sockets itself and to one that leaves them
to Quart (``TVM_FAST_PATHS=false``): every frame (but for its timestamps and ids), every close
code and reason, every refused handshake must agree. A failure nobody expected closes the
socket with ``internal_error`` (1011) on either path.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from api import ws_vehicle
from tests.integration.harness import RunningHub, Timeline, location_body, running_hub
from tests.integration.test_vehicle_socket import socket_url

VOLATILE = {"timestamp", "server_time", "session_id", "request_id", "received_at", "last_seen"}
FRAME_WAIT = 10.0


def comparable(frame: Any) -> Any:
    if isinstance(frame, dict):
        return {key: comparable(value) for key, value in frame.items() if key not in VOLATILE}
    if isinstance(frame, list):
        return [comparable(item) for item in frame]
    return frame


async def conversation(
    hub: RunningHub,
    path: str,
    sent: list[str | bytes],
    *,
    token: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    replies: int = 0,
    greeting: bool = True,
) -> list[Any]:
    """Open ``path``, read the first frame (unless ``greeting`` is False: the fleet socket
    says nothing first), send ``sent`` one at a time (reading ``replies`` frames after each),
    then read until the server closes or goes quiet: what the client saw."""
    seen: list[Any] = []
    try:
        async with open_websocket_url(
            socket_url(hub.base_url, path, token), extra_headers=headers
        ) as ws:
            with trio.fail_after(FRAME_WAIT):
                if greeting:
                    seen.append(comparable(json.loads(await ws.get_message())))
                for message in sent:
                    await ws.send_message(message)
                    for _ in range(replies):
                        seen.append(comparable(json.loads(await ws.get_message())))
            with trio.move_on_after(0.5):  # a socket left open says nothing more
                while True:
                    seen.append(comparable(json.loads(await ws.get_message())))
            seen.append(("open", ws.closed))
    except ConnectionClosed as closed:
        seen.append(("closed", closed.reason.code, closed.reason.reason))
    except ConnectionRejected as rejected:
        seen.append(("rejected", rejected.status_code))
    return seen


async def socket_conversations(hub: RunningHub, other_token: str, now: Timeline) -> list[Any]:
    vehicle = await hub.register_vehicle("wheelchair_001")
    await hub.register_vehicle("wheelchair_002")
    ping = json.dumps({"type": "ping", "timestamp": now()})
    location = json.dumps({"type": "location", **location_body(now())})
    bearer = [("Authorization", f"Bearer {vehicle.token}")]
    own = "/ws/v1/vehicle/wheelchair_001"
    return [
        await conversation(hub, own, [ping, location, location], token=vehicle.token, replies=1),
        await conversation(hub, own, ["{no", b"\x00", "[]"], token=vehicle.token, replies=1),
        await conversation(hub, own, [json.dumps({"type": "warp"})], headers=bearer, replies=1),
        await conversation(hub, "/ws/vehicle/wheelchair_001", [ping], headers=bearer, replies=1),
        await conversation(hub, own, [], token="forged"),
        await conversation(hub, own, []),
        await conversation(hub, own, [], token=other_token),
        await conversation(hub, "/ws/v1/vehicle/wheelchair_404", [], token=vehicle.token),
        await conversation(hub, "/ws/v1/vehicle/wheelchair_002", [], token=vehicle.token),
        await conversation(hub, own, [ping], token=hub.admin_token, replies=1),
        await conversation(
            hub, "/ws/v1/fleet", [ping], token=hub.admin_token, replies=1, greeting=False
        ),
        await conversation(hub, "/ws/v1/fleet", [], token=vehicle.token),
        await conversation(hub, "/ws/v1/fleet", [], token="forged"),
        await conversation(hub, "/ws/v1/fleet/", [], token=hub.admin_token),
        await conversation(hub, "/ws/v1/vehicle/", [], token=vehicle.token),
        await conversation(hub, "/ws/v1/nothing", [], token=hub.admin_token),
    ]


async def transcripts(database_url: str, *, fast: bool) -> list[Any]:
    async with running_hub(database_url, fast_paths=fast) as hub:
        other = await hub.register_vehicle("wheelchair_999")
        return await socket_conversations(hub, other.token, Timeline())


async def test_the_lean_sockets_behave_like_the_quart_routes(
    database_url: str, second_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(120), caplog.at_level(logging.WARNING):
        lean = await transcripts(database_url, fast=True)
        quart = await transcripts(second_database_url, fast=False)
    # A socket path with no route was a RuntimeError in the JSON error handler (500), logged.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert len(lean) == len(quart)
    for index, (ours, reference) in enumerate(zip(lean, quart, strict=True)):
        assert ours == reference, index
    welcome, *_, last = lean[0]
    assert welcome["type"] == "welcome", lean[0]
    assert [frame["type"] for frame in lean[0][1:4]] == ["pong", "telemetry_ack", "telemetry_ack"]
    assert last == ("open", None), lean[0]
    assert lean[1][-1] == ("closed", 4002, "invalid_message"), lean[1]
    assert lean[4] == [
        {"type": "error", "code": "auth_failed", "message": "Invalid or expired token"},
        ("closed", 4001, "auth_failed"),
    ]
    assert lean[-3:] == [[("rejected", 404)]] * 3, lean[-3:]  # no socket route: Quart's 404


@pytest.mark.parametrize("fast", [True, False], ids=["lean", "quart"])
async def test_an_unexpected_failure_closes_the_socket_with_internal_error(
    database_url: str,
    fast: bool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug in the socket handler")

    with trio.fail_after(60):
        async with running_hub(database_url, fast_paths=fast) as hub:
            vehicle = await hub.register_vehicle("wheelchair_001")
            monkeypatch.setattr(ws_vehicle, "serve_vehicle", broken)
            with caplog.at_level(logging.ERROR):
                seen = await conversation(
                    hub, "/ws/v1/vehicle/wheelchair_001", [], token=vehicle.token
                )
    assert seen == [
        {
            "type": "error",
            "code": "internal_error",
            "message": "Internal error; quote the request id to support",
        },
        ("closed", 1011, "internal_error"),
    ]
    assert any("unhandled error on a socket" in record.message for record in caplog.records)
