"""Every WebSocket frame, as an AsyncAPI message built from its pydantic model.

Each :class:`Frame` names the model that documents it: the models the hub parses inbound
frames with, and those that document its outbound frames (:mod:`hub.contract.ws_frames`).
Commands travel in three shapes: as an operator sends them on a vehicle-bound frontend
socket (the models themselves), on the fleet socket (``vehicle_id`` required), and as the hub
delivers them to a vehicle (``command_id`` and ``timestamp`` always set, ``vehicle_id`` never).
A message is named after its payload's schema.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from hub.contract.command_acks import CommandAck
from hub.contract.commands import COMMAND_MODELS
from hub.contract.ws import SubscribeFrame, UnsubscribeFrame
from hub.contract.ws_frames import FRAME_MODELS, PingFrame, PongFrame
from hub.contract.ws_inbound import TELEMETRY_FRAME_MODELS

Shape = Literal["model", "to_vehicle", "from_fleet"]
EXAMPLE_VEHICLE = "wheelchair_001"


@dataclass(frozen=True, slots=True)
class Frame:
    """One message of the AsyncAPI document: a frame ``type`` and the model describing it."""

    frame_type: str
    model: type[BaseModel]
    summary: str
    shape: Shape = "model"

    @property
    def name(self) -> str:
        """The message's name, which is also its payload schema's."""
        prefix = {"model": "", "to_vehicle": "Vehicle", "from_fleet": "Fleet"}[self.shape]
        return prefix + self.model.__name__

    def examples(self) -> list[dict[str, Any]]:
        """The model's examples, in this frame's shape."""
        extra = self.model.model_config.get("json_schema_extra")
        found = extra.get("examples", []) if isinstance(extra, dict) else []
        bodies: list[dict[str, Any]] = [
            copy.deepcopy(body)
            for body in found  # type: ignore[union-attr]
            if isinstance(body, dict)
        ]
        for body in bodies:
            if self.shape == "to_vehicle":
                body.pop("vehicle_id", None)
            elif self.shape == "from_fleet":
                body["vehicle_id"] = EXAMPLE_VEHICLE
        return bodies


_COMMAND_SUMMARIES = {
    "dispatch": "Send the vehicle on a mission",
    "cancel": "Abort a mission",
    "emergency_stop": "Stop now (never queued behind anything)",
    "resume": "Leave emergency_stop",
    "configure": "Change vehicle settings",
}
_EVENTS = {
    "location_update": "A stored location report",
    "status_update": "A stored status report",
    "battery_update": "A stored battery report",
    "docking_update": "A stored docking report",
    "error_report": "A stored error report",
}

PING = Frame("ping", PingFrame, "Heartbeat; the other side answers pong")
PONG = Frame("pong", PongFrame, "The answer to a ping")
WELCOME = Frame("welcome", FRAME_MODELS["welcome"], "First frame of a vehicle socket")
ERROR = Frame("error", FRAME_MODELS["error"], "A refused frame, or why the socket closes")
TELEMETRY_ACK = Frame(
    "telemetry_ack", FRAME_MODELS["telemetry_ack"], "A telemetry frame was stored (or was already)"
)
FRONTEND_EVENTS: tuple[Frame, ...] = (
    Frame("subscribed", FRAME_MODELS["subscribed"], "The answer to subscribe: a snapshot"),
    *(Frame(event, FRAME_MODELS[event], summary) for event, summary in _EVENTS.items()),
    Frame("alert", FRAME_MODELS["alert"], "An alert, to every operator and admin"),
    Frame("vehicle_connection", FRAME_MODELS["vehicle_connection"], "A vehicle came or went"),
    Frame("command_status", FRAME_MODELS["command_status"], "A command changed status"),
)
SUBSCRIPTIONS: tuple[Frame, ...] = (
    Frame("subscribe", SubscribeFrame, 'Watch vehicles (`["*"]`: all)'),
    Frame("unsubscribe", UnsubscribeFrame, "Stop watching vehicles"),
)
VEHICLE_REPORTS: tuple[Frame, ...] = (
    Frame("command_ack", CommandAck, "The vehicle's answer to a command"),
    *(
        Frame(kind, model, f"A {kind} report: the REST body plus `type`")
        for kind, model in TELEMETRY_FRAME_MODELS.items()
    ),
)


def _commands(shape: Shape) -> tuple[Frame, ...]:
    return tuple(
        Frame(kind, model, _COMMAND_SUMMARIES[kind], shape)
        for kind, model in COMMAND_MODELS.items()
    )


HUB_TO_VEHICLE: tuple[Frame, ...] = (
    WELCOME,
    PING,
    PONG,
    ERROR,
    TELEMETRY_ACK,
    *_commands("to_vehicle"),
)
"""What the hub sends on a vehicle's own socket."""
VEHICLE_TO_HUB: tuple[Frame, ...] = (PING, PONG, *VEHICLE_REPORTS)
"""What a vehicle sends on its socket."""
HUB_TO_FRONTEND: tuple[Frame, ...] = (PING, PONG, ERROR, *FRONTEND_EVENTS)
"""What the hub sends to a person's socket (fleet socket, or vehicle path with a user token)."""
FLEET_TO_HUB: tuple[Frame, ...] = (PING, PONG, *SUBSCRIPTIONS, *_commands("from_fleet"))
"""What a person sends on the fleet socket."""
BOUND_FRONTEND_TO_HUB: tuple[Frame, ...] = (PING, PONG, *SUBSCRIPTIONS, *_commands("model"))
"""What a person sends on a vehicle path (commands default to that vehicle)."""

DIRECTIONS: tuple[tuple[Frame, ...], ...] = (
    HUB_TO_VEHICLE,
    VEHICLE_TO_HUB,
    HUB_TO_FRONTEND,
    FLEET_TO_HUB,
    BOUND_FRONTEND_TO_HUB,
)


def every_frame() -> list[Frame]:
    """Every message of the document, each once, in order of first appearance."""
    frames: dict[str, Frame] = {}
    for direction in DIRECTIONS:
        for frame in direction:
            frames.setdefault(frame.name, frame)
    return list(frames.values())
