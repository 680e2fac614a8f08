"""Every frame a real hub sends in an integration test must match ``/asyncapi.json``.

The recorder wraps trio-websocket's ``get_message`` for the length of each test: whatever
the test (or a simulator it runs) receives on a hub socket is kept with the socket's path,
and at the end of the test each frame is validated against the messages the AsyncAPI
document lets the hub send on that channel. A frame the document does not describe fails
the test that received it, naming the frame and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from trio_websocket import WebSocketConnection

from actors.sockets.connection import SocketPolicy
from api.asyncapi import build_document
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
