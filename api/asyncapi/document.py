"""The AsyncAPI 3.0 document of the hub's WebSockets, built from the frame models.

Three channels: the vehicle socket, its alias, and the fleet socket. Operations are seen
from the hub: ``send`` is a frame the hub sends, ``receive`` one it accepts. A vehicle path
opened with a person's token serves a frontend session, so the vehicle channels carry the
frontend operations too. Payloads are the pydantic models' JSON Schemas (draft 2020-12,
declared as such), shared under ``components.schemas`` with the names the OpenAPI document
uses. Nothing here does I/O; :func:`with_server` adds the host a client reached.
"""

from __future__ import annotations

import copy
from typing import Any

from actors.sockets.connection import SocketPolicy
from api.asyncapi.close_codes import CLOSE_CODES, close_code_table
from api.asyncapi.messages import (
    BOUND_FRONTEND_TO_HUB,
    FLEET_TO_HUB,
    HUB_TO_FRONTEND,
    HUB_TO_VEHICLE,
    VEHICLE_TO_HUB,
    Frame,
    every_frame,
)
from api.openapi.info import DOCS_PATH, OPENAPI_PATH
from api.openapi.schemas import REF_PREFIX, ComponentSet, model_schema
from hub.contract.base import VEHICLE_ID_PATTERN, ResponseModel

ASYNCAPI_VERSION = "3.0.0"
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
VEHICLE_PATH = "/ws/v1/vehicle/{vehicle_id}"
VEHICLE_ALIAS_PATH = "/ws/vehicle/{vehicle_id}"
FLEET_PATH = "/ws/v1/fleet"

_INFO_DESCRIPTION = f"""\
The hub's WebSockets: vehicles keep one open to receive commands (and may send telemetry
on it); frontends watch the fleet live and send commands. Every frame is one JSON object
with a `type`. The REST API is described at [{OPENAPI_PATH}]({OPENAPI_PATH}) and shown at
[{DOCS_PATH}]({DOCS_PATH}); log in there (`POST /api/v1/auth/token`) to get a token.

**Authentication**: pass the access token as `?token=<token>` (or as
`Authorization: Bearer <token>`). The hub accepts the socket first; a missing, invalid or
expired token gets one `error` frame with code `auth_failed` and the close code 4001.

**Close codes**

{close_code_table()}
"""


def _vehicle_description(policy: SocketPolicy) -> str:
    return f"""\
A vehicle's own socket (vehicle token for this `vehicle_id`; another vehicle's token closes
4005, an unknown or disabled vehicle 4004). The hub sends `welcome`, then every queued
command in order, then commands as operators send them; the vehicle answers each with
`command_ack` (no ack within 5 s: the same command is sent again, at most three times).
Telemetry may be sent here too, with the REST rules; each frame is answered by
`telemetry_ack` or `error`. A newer socket for the same vehicle replaces this one (4009).

Heartbeat: the hub sends `ping` every {policy.ping_interval:g} s and closes 4008 if nothing
arrives within {policy.pong_timeout:g} s of it, or for {policy.silence_limit:g} s at all;
any frame counts as a sign of life. Either side may ping; the other answers `pong`.
Frames that are not messages of this socket (not JSON, no or unknown `type`) get an `error`
frame (`invalid_json`, `invalid_message`); {policy.max_consecutive_invalid} in a row close
4002. A frame that is a message but fails validation gets the REST error code and never
counts towards closing.

With a person's token (viewer, operator, admin) the same path opens a frontend session
bound to this vehicle: it is subscribed to the vehicle at once and receives the fleet
socket's frames; operators' and admins' commands default to this vehicle."""


def _fleet_description(policy: SocketPolicy) -> str:
    return f"""\
For frontends watching many vehicles (a person's token; a vehicle token closes 4005).
Send `subscribe` with vehicle ids (`["*"]` for all; `type` is required); the hub answers
`subscribed` with the current state of each, then sends every event of those vehicles:
`location_update`, `status_update`, `battery_update`, `docking_update`, `error_report`,
`vehicle_connection`, `command_status`. Alerts go to every operator and admin whatever
their subscriptions. Every vehicle event carries `seq`, a per-vehicle counter; subscribe
with `since` to have the hub replay what it still holds after those `seq`s
(`replayed: false` where it cannot, so the client reloads). A slow reader gets telemetry
conflated to the latest per vehicle and kind; alerts and command statuses are never
dropped. Operators and admins may send commands here (with `vehicle_id`); each status
change comes back as `command_status`. Heartbeat and invalid frames as on the vehicle
socket (ping every {policy.ping_interval:g} s)."""


_TOKEN_BINDING = {
    "ws": {
        "method": "GET",
        "query": {
            "type": "object",
            "properties": {
                "token": {
                    "type": "string",
                    "description": "The access token (or send `Authorization: Bearer …`)",
                }
            },
        },
        "bindingVersion": "0.1.0",
    }
}
_VEHICLE_PARAMETER = {
    "vehicle_id": {
        "description": f"The vehicle's id, matching `{VEHICLE_ID_PATTERN}`",
        "examples": ["wheelchair_001"],
    }
}
_SECURITY_SCHEMES = {
    "queryToken": {
        "type": "httpApiKey",
        "name": "token",
        "in": "query",
        "description": "The access token of `POST /api/v1/auth/token` in `?token=`",
    },
    "bearerHeader": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The same token as `Authorization: Bearer <token>`",
    },
}


def _payload_schema(frame: Frame, components: ComponentSet) -> None:
    """Add the frame's payload schema (and the model's) to ``components``."""
    outbound = issubclass(frame.model, ResponseModel)
    schema, definitions = model_schema(frame.model, "serialization" if outbound else "validation")
    components.add({**definitions, frame.model.__name__: schema})
    base = {"$ref": f"{REF_PREFIX}{frame.model.__name__}"}
    if frame.shape == "to_vehicle":
        components.add(
            {
                frame.name: {
                    "description": "As delivered to the vehicle: `command_id` and `timestamp` "
                    "are always set (by the hub if the sender left them out), `vehicle_id` is "
                    "never sent.",
                    "allOf": [base],
                    "required": ["command_id", "timestamp"],
                    "not": {"required": ["vehicle_id"]},
                }
            }
        )
    elif frame.shape == "from_fleet":
        components.add(
            {
                frame.name: {
                    "description": "On the fleet socket a command must name its `vehicle_id`.",
                    "allOf": [base],
                    "required": ["vehicle_id"],
                }
            }
        )


def _message(frame: Frame) -> dict[str, Any]:
    return {
        "name": frame.name,
        "title": f"{frame.frame_type}",
        "summary": frame.summary,
        "contentType": "application/json",
        "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": {"$ref": f"{REF_PREFIX}{frame.name}"}},
        "examples": [
            {"name": f"{frame.name}{index}", "payload": body}
            for index, body in enumerate(frame.examples(), start=1)
        ],
    }


def _channel(
    address: str, title: str, description: str, frames: list[Frame], *, vehicle: bool
) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "address": address,
        "title": title,
        "description": description,
        "messages": {
            frame.name: {"$ref": f"#/components/messages/{frame.name}"} for frame in frames
        },
        "bindings": copy.deepcopy(_TOKEN_BINDING),
        "x-close-codes": [
            {"code": close.code, "reason": close.reason, "meaning": close.meaning}
            for close in CLOSE_CODES
        ],
    }
    if vehicle:
        channel["parameters"] = copy.deepcopy(_VEHICLE_PARAMETER)
    return channel


def _operation(
    channel: str, action: str, summary: str, frames: tuple[Frame, ...]
) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{frame.name}"} for frame in frames],
    }


def _unique(*groups: tuple[Frame, ...]) -> list[Frame]:
    seen: dict[str, Frame] = {}
    for group in groups:
        for frame in group:
            seen.setdefault(frame.name, frame)
    return list(seen.values())


def build_document(policy: SocketPolicy) -> dict[str, Any]:
    """The AsyncAPI document (without ``servers``: see :func:`with_server`)."""
    components = ComponentSet()
    for frame in every_frame():
        _payload_schema(frame, components)
    vehicle_frames = _unique(HUB_TO_VEHICLE, VEHICLE_TO_HUB, HUB_TO_FRONTEND, BOUND_FRONTEND_TO_HUB)
    channels = {
        "vehicleSocket": _channel(
            VEHICLE_PATH,
            "Vehicle socket",
            _vehicle_description(policy),
            vehicle_frames,
            vehicle=True,
        ),
        "vehicleSocketAlias": _channel(
            VEHICLE_ALIAS_PATH,
            "Vehicle socket (alias)",
            f"The same socket as `{VEHICLE_PATH}`, under the path the requirements use.",
            vehicle_frames,
            vehicle=True,
        ),
        "fleetSocket": _channel(
            FLEET_PATH,
            "Fleet socket",
            _fleet_description(policy),
            _unique(HUB_TO_FRONTEND, FLEET_TO_HUB),
            vehicle=False,
        ),
    }
    operations: dict[str, Any] = {}
    for channel in ("vehicleSocket", "vehicleSocketAlias"):
        operations[f"{channel}SendToVehicle"] = _operation(
            channel, "send", "Frames the hub sends to the vehicle", HUB_TO_VEHICLE
        )
        operations[f"{channel}ReceiveFromVehicle"] = _operation(
            channel, "receive", "Frames the vehicle sends", VEHICLE_TO_HUB
        )
        operations[f"{channel}SendToFrontend"] = _operation(
            channel, "send", "Frames the hub sends to a person's session", HUB_TO_FRONTEND
        )
        operations[f"{channel}ReceiveFromFrontend"] = _operation(
            channel,
            "receive",
            "Frames a person sends (commands default to this vehicle)",
            BOUND_FRONTEND_TO_HUB,
        )
    operations["fleetSocketSendToFrontend"] = _operation(
        "fleetSocket", "send", "Frames the hub sends to a person's session", HUB_TO_FRONTEND
    )
    operations["fleetSocketReceiveFromFrontend"] = _operation(
        "fleetSocket", "receive", "Frames a person sends", FLEET_TO_HUB
    )
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "TVM Hub WebSockets",
            "version": "1.0",
            "description": _INFO_DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "messages": {frame.name: _message(frame) for frame in every_frame()},
            "securitySchemes": copy.deepcopy(_SECURITY_SCHEMES),
        },
    }


def with_server(document: dict[str, Any], host: str, *, secure: bool) -> dict[str, Any]:
    """``document`` with the server a client reached (``host`` as in the request)."""
    served = dict(document)
    served["servers"] = {
        "hub": {
            "host": host,
            "protocol": "wss" if secure else "ws",
            "description": "This hub",
            "security": [
                {"$ref": "#/components/securitySchemes/queryToken"},
                {"$ref": "#/components/securitySchemes/bearerHeader"},
            ],
        }
    }
    return served
