"""The document's front page: what Swagger UI shows above the operations, and the tags."""

from __future__ import annotations

from typing import Any

from quart_schema import Tag

ASYNCAPI_PATH = "/asyncapi.json"
OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"

TITLE = "TVM Hub"
VERSION = "1.0"

DESCRIPTION = f"""\
Vehicle telemetry, fleet state and commands for the TVM fleet of autonomous wheelchairs.

**Authentication.** Log in with `POST /api/v1/auth/token` — a vehicle with its
`client_id`/`client_secret`, a person with `grant_type: password` — and send the
`access_token` as `Authorization: Bearer <token>` (the *Authorize* button above). Tokens last
24 h; trade the `refresh_token` at `POST /api/v1/auth/refresh`. Only the health probes,
`/metrics` and the two token endpoints need no token. Vehicles may post only their own
telemetry; viewers read; operators also send commands and handle alerts and reservations;
admins also register vehicles and users.

**Errors** are JSON: `{{"error", "message", "timestamp", "request_id"}}`, plus `field` and
`received_value` when one field is at fault and `details` when there is more to say; the
token endpoints' 401 is OAuth's `{{"error", "error_description"}}`; 429 adds
`retry_after`. Every answer carries `X-Request-ID`.

**Text** may hold any Unicode character but U+0000 and unpaired surrogates (`\\ud800`
alone), which cannot be stored: a body, query or path holding one is refused with 400
`validation_error` naming the field. The emergency stops alone never refuse it: their
`reason` and `message` keep the rest of the text, with U+FFFD in its place.

**Timestamps** are UTC with milliseconds, like `2025-12-16T10:30:45.123Z`. Live telemetry
must be at most 300 s old; the examples here are set to the moment this page was loaded, so
reload the page if "Try it out" answers `invalid_timestamp`.

**WebSockets.** The vehicle socket `/ws/v1/vehicle/{{vehicle_id}}` and the fleet socket
`/ws/v1/fleet` are described in AsyncAPI at [{ASYNCAPI_PATH}]({ASYNCAPI_PATH}); pass the
token as `?token=`. This document is at [{OPENAPI_PATH}]({OPENAPI_PATH}).
"""

TAGS: list[Tag | dict[Any, Any]] = [
    {"name": "auth", "description": "Logging in and refreshing tokens"},
    {"name": "telemetry", "description": "Reports from vehicles (vehicle tokens)"},
    {"name": "fleet", "description": "Fleet state and history (viewers and up)"},
    {"name": "commands", "description": "Commands to vehicles (operators and up to send)"},
    {"name": "alerts", "description": "Alerts raised by vehicle reports"},
    {"name": "missions", "description": "Missions created by dispatch commands"},
    {"name": "reservations", "description": "Booked transports (operators and up to change)"},
    {"name": "admin", "description": "Vehicles, users and the audit log (admins)"},
    {"name": "operations", "description": "Health probes, metrics and actor state"},
]
