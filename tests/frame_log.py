"""Frames a client received from a real hub, checked against the AsyncAPI document.

:class:`FrameLog` remembers each frame with the socket path it came on; :meth:`problems`
validates each against the messages the hub may *send* on that path's channel (a frame is
checked against the messages whose ``type`` it carries). Used by the integration tests'
recorder (``tests/integration/conftest.py``) and by the AsyncAPI frame tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from tests.published_schemas import resolve

_CHANNELS = (
    (re.compile(r"^/ws/v1/fleet$"), "fleetSocket"),
    (re.compile(r"^/ws/v1/vehicle/[^/]+$"), "vehicleSocket"),
    (re.compile(r"^/ws/vehicle/[^/]+$"), "vehicleSocketAlias"),
)


def channel_of(path: str) -> str | None:
    """The AsyncAPI channel of a socket path (query string ignored), or None."""
    bare = path.split("?", 1)[0]
    for pattern, channel in _CHANNELS:
        if pattern.match(bare):
            return channel
    return None


@dataclass
class FrameLog:
    """Every frame received, by socket path, and the validators to check them with."""

    document: dict[str, Any]
    frames: list[tuple[str, str | bytes]] = field(default_factory=list)
    _validators: dict[tuple[str, str], list[tuple[str, Any]]] = field(default_factory=dict)

    def record(self, path: str, message: str | bytes) -> None:
        """Remember one frame as received on ``path``."""
        self.frames.append((path, message))

    def types(self) -> set[str]:
        """The ``type`` of every JSON frame received."""
        found = set()
        for _, message in self.frames:
            try:
                found.add(str(json.loads(message).get("type")))
            except (ValueError, AttributeError):
                continue
        return found

    def problems(self) -> list[str]:
        """Why frames do not match what the document says the hub sends; empty if all do."""
        found = []
        for path, message in self.frames:
            channel = channel_of(path)
            if channel is None:
                continue
            problem = self._check(channel, message)
            if problem:
                found.append(f"{path}: {problem}")
        return found

    def _check(self, channel: str, message: str | bytes) -> str | None:
        try:
            frame = json.loads(message)
        except ValueError:
            return f"not JSON: {message!r:.200}"
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return f"not a typed JSON object: {frame!r:.200}"
        candidates = self._candidates(channel, frame["type"])
        if not candidates:
            return f"the hub may not send type {frame['type']!r} here: {frame!r:.300}"
        errors: list[str] = []
        for name, validator in candidates:
            wrong = [error.message for error in validator.iter_errors(frame)]
            if not wrong:
                return None
            errors.append(f"{name}: {'; '.join(wrong)[:300]}")
        return f"{frame!r:.300} matches no message: {' | '.join(errors)}"

    def _candidates(self, channel: str, frame_type: str) -> list[tuple[str, Any]]:
        key = (channel, frame_type)
        if key not in self._validators:
            self._validators[key] = [
                (message["name"], self._validator(message))
                for message in sent_by_hub(self.document, channel)
                if message["title"] == frame_type
            ]
        return self._validators[key]

    def _validator(self, message: dict[str, Any]) -> Any:
        root = {**message["payload"]["schema"], "components": self.document["components"]}
        return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


def sent_by_hub(document: dict[str, Any], channel: str) -> list[dict[str, Any]]:
    """The messages of every ``send`` operation of ``channel`` (each once)."""
    found: dict[str, dict[str, Any]] = {}
    for operation in document["operations"].values():
        if operation["action"] != "send":
            continue
        if operation["channel"]["$ref"] != f"#/channels/{channel}":
            continue
        for reference in operation["messages"]:
            message = resolve(document, resolve(document, reference))
            found[message["name"]] = message
    return list(found.values())
