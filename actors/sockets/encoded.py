"""A frame already in its wire form: encoded once, sent to every session as it is."""

from __future__ import annotations

import json
from typing import Any


class EncodedEvent:
    """A numbered vehicle event in its wire form, as it goes to every session.

    Answers ``get("type")`` and ``get("vehicle_id")`` like the frame dict it was made from,
    which is all a session's queue looks at (conflation by vehicle and type).
    """

    __slots__ = ("seq", "text", "type", "vehicle_id")

    def __init__(self, text: str, *, type: str, vehicle_id: str, seq: int) -> None:
        self.text = text
        self.type = type
        self.vehicle_id = vehicle_id
        self.seq = seq

    def __repr__(self) -> str:
        return f"<EncodedEvent {self.type} {self.vehicle_id} #{self.seq}>"

    def get(self, key: str, default: Any = None) -> Any:
        """``type``, ``vehicle_id`` or ``seq``; anything else is ``default``."""
        if key == "type":
            return self.type
        if key == "vehicle_id":
            return self.vehicle_id
        if key == "seq":
            return self.seq
        return default

    def decoded(self) -> dict[str, Any]:
        """The event as a dict (tests, debugging; never on the hot path)."""
        value: dict[str, Any] = json.loads(self.text)
        return value


Frame = dict[str, Any] | EncodedEvent
"""What a socket's outbound queue holds: a frame to encode, or one encoded already."""


def frame_text(frame: Frame) -> str:
    """The JSON text of ``frame`` (strict JSON: a NaN would be a bug, and raises)."""
    if isinstance(frame, EncodedEvent):
        return frame.text
    return json.dumps(frame, separators=(",", ":"), allow_nan=False)


def frame_dict(frame: Frame) -> dict[str, Any]:
    """``frame`` as a dict, decoding it if it is encoded already (tests, debug views)."""
    if isinstance(frame, EncodedEvent):
        return frame.decoded()
    return frame
