"""The error answers of every operation: which statuses, which codes, which body, which headers.

Every refusal is the flat error body of CONTRACT §1.1 (``ErrorBody``), except the token
endpoints' 401, which is OAuth's ``{"error", "error_description"}``, and 429, which adds
``retry_after``. Each status is one shared response under ``components.responses``; its
schema pins ``error`` to the codes the hub sends with that status (:data:`ERROR_CODES`).
:data:`OPERATION_ERRORS` says which statuses each operation can answer; it is checked
against real answers by the tests and by the API fuzz run (``scripts/api_fuzz.py``).
"""

from __future__ import annotations

from typing import Any

from api.openapi.schemas import REF_PREFIX, ComponentSet, JsonSchema, model_schema
from hub.contract.auth import OAuthErrorBody
from hub.contract.responses import ErrorBody, RateLimitedBody

ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: (
        "invalid_json",
        "validation_error",
        "invalid_location",
        "invalid_heading",
        "invalid_speed",
        "invalid_accuracy",
        "invalid_timestamp",
        "invalid_battery",
        "invalid_enum",
        "invalid_error_code",
        "invalid_state_transition",
        "invalid_phase_transition",
        "bulk_too_large",
        "vehicle_id_mismatch",
        "invalid_command",
    ),
    401: ("missing_token", "invalid_token", "token_expired"),
    403: ("forbidden",),
    404: ("unknown_vehicle", "not_found"),
    408: ("request_timeout",),
    409: (
        "duplicate_command",
        "invalid_command_state",
        "vehicle_exists",
        "user_exists",
        "conflict",
    ),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    429: ("rate_limit_exceeded",),
    500: ("internal_error",),
    503: ("service_unavailable",),
}
"""The ``error`` codes the hub answers with, by HTTP status."""

OAUTH_CODES: tuple[str, ...] = ("invalid_client", "invalid_grant")
"""The ``error`` of a token endpoint's 401 (OAuth form)."""

_MEANING: dict[int, str] = {
    400: "The request is malformed or breaks a rule: `field` names the first field at fault "
    "and `details.errors` lists every one.",
    401: "No token, a bad one, or an expired one. Log in again (`POST /api/v1/auth/token`).",
    403: "The token is valid but its role may not do this, or it belongs to another vehicle.",
    404: "No such vehicle (`unknown_vehicle`: not registered, or disabled) or resource.",
    408: "The request body did not arrive in time.",
    409: "The request conflicts with the current state: a command id used before, a resume "
    "without an emergency stop, an id or name already taken, or a concurrent change.",
    413: "The body is over 1 MiB (bulk uploads: 4 MiB).",
    415: "The body is not `application/json`.",
    429: "Too many requests: wait `retry_after` seconds (also in `Retry-After`).",
    500: "An unexpected fault; nothing about it is in the body, the log has it under the "
    "request id.",
    503: "The database is unreachable; retry after `Retry-After` seconds.",
}

RESPONSE_NAMES: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    408: "RequestTimeout",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    429: "RateLimited",
    500: "InternalError",
    503: "ServiceUnavailable",
}
OAUTH_RESPONSE_NAME = "OAuthUnauthorized"

# Statuses by the kind of operation; OPERATION_ERRORS composes them.
_BODY = (400, 408, 413, 415)  # reads a JSON body
_TOKEN = (401, 403)  # needs a bearer token with some role
_STORE = (503,)  # reads or writes the database
_ALWAYS = (500,)

OPERATION_ERRORS: dict[str, tuple[int, ...]] = {
    "issue_token": (*_BODY, 401, 429, *_STORE),
    "refresh_token": (*_BODY, 401, *_STORE),
    **{
        f"post_{kind}": (*_BODY, *_TOKEN, 404, 429, *_STORE)
        for kind in ("location", "status", "battery", "error", "docking", "bulk")
    },
    "list_vehicles": (*_TOKEN, *_STORE),
    "get_vehicle": (*_TOKEN, 404, *_STORE),
    "history": (400, *_TOKEN, 404, *_STORE),
    "battery_health": (*_TOKEN, 404, *_STORE),
    "post_command": (*_BODY, *_TOKEN, 404, 409, *_STORE),
    "list_commands": (400, *_TOKEN, 404, *_STORE),
    "get_command": (*_TOKEN, 404, *_STORE),
    "fleet_emergency_stop": (*_BODY, *_TOKEN),
    "list_alerts": (400, *_TOKEN, *_STORE),
    "acknowledge_alert": (*_TOKEN, 404, *_STORE),
    "list_missions": (400, *_TOKEN, *_STORE),
    "get_mission": (*_TOKEN, 404, *_STORE),
    "create_reservation": (*_BODY, *_TOKEN, 404, *_STORE),
    "list_reservations": (400, *_TOKEN, *_STORE),
    "get_reservation": (*_TOKEN, 404, *_STORE),
    "update_reservation": (*_BODY, *_TOKEN, 404, 409, *_STORE),
    "cancel_reservation": (400, *_TOKEN, 404, 409, *_STORE),
    "create_vehicle": (*_BODY, *_TOKEN, 409, *_STORE),
    "rotate_secret": (*_TOKEN, 404, *_STORE),
    "disable_vehicle": (*_TOKEN, 404, *_STORE),
    "enable_vehicle": (*_TOKEN, 404, *_STORE),
    "create_user": (*_BODY, *_TOKEN, 409, *_STORE),
    "audit_log": (400, *_TOKEN, *_STORE),
    "debug_actors": _TOKEN,
    "health": (),
    "live": (),
    "ready": (),
    "prometheus_metrics": (),
}
"""Error statuses of each operation (by handler name), besides 500 which any may answer."""

OAUTH_OPERATIONS = frozenset({"issue_token", "refresh_token"})
"""Operations whose 401 is in OAuth form."""

_EXAMPLE_TIME = "2025-12-16T10:30:45.234Z"
_EXAMPLE_REQUEST = "3f1c2a9e8d7b4c6a9e210b5d4f7a8c31"


def _example(error: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "message": message, **extra}
    body["timestamp"] = _EXAMPLE_TIME
    body["request_id"] = _EXAMPLE_REQUEST
    return {"summary": error, "value": body}


_EXAMPLES: dict[int, list[dict[str, Any]]] = {
    400: [
        _example(
            "invalid_location",
            "latitude must be between -90 and 90",
            field="location.latitude",
            received_value=95.123,
        ),
        _example(
            "invalid_timestamp",
            "timestamp is more than 300 s in the past",
            field="timestamp",
            received_value="2025-12-16T10:20:45.123Z",
        ),
        _example("invalid_json", "Body is not valid JSON"),
    ],
    401: [
        _example("missing_token", "Authorization: Bearer <token> required"),
        _example("token_expired", "Token has expired"),
    ],
    403: [_example("forbidden", "Role viewer may not do this")],
    404: [
        _example(
            "unknown_vehicle",
            "Vehicle wheelchair_404 is not registered",
            field="vehicle_id",
            received_value="wheelchair_404",
        ),
        _example("not_found", "No such resource"),
    ],
    408: [_example("request_timeout", "The request body did not arrive in time")],
    409: [
        _example("duplicate_command", "command_id cmd_12345 was used before"),
        _example("invalid_command_state", "resume needs an emergency stop first"),
    ],
    413: [_example("payload_too_large", "Request body is larger than 1 MiB")],
    415: [
        _example(
            "unsupported_media_type",
            "Content-Type must be application/json",
            field="Content-Type",
            received_value="text/plain",
        )
    ],
    429: [
        _example("rate_limit_exceeded", "Too many requests. Please wait 1 seconds.", retry_after=1)
    ],
    500: [_example("internal_error", "Internal error; quote the request id to support")],
    503: [_example("service_unavailable", "Database unavailable, retry later")],
}

REQUEST_ID_HEADER = "RequestId"
_HEADERS: dict[str, dict[str, Any]] = {
    REQUEST_ID_HEADER: {
        "description": "The request's id: the client's `X-Request-ID` if sane, else a new one",
        "required": True,
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,128}$"},
    },
    "RetryAfter": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "string", "pattern": r"^[0-9]+$"},
    },
    "WwwAuthenticate": {
        "description": 'The bearer challenge, e.g. `Bearer error="token_expired"`',
        "required": True,
        "schema": {"type": "string", "pattern": r"^Bearer"},
    },
    "RateLimitLimit": {
        "description": "The bucket's size (burst)",
        "schema": {"type": "string", "pattern": r"^[0-9]+$"},
    },
    "RateLimitRemaining": {
        "description": "Requests left in the bucket",
        "schema": {"type": "string", "pattern": r"^[0-9]+$"},
    },
    "RateLimitReset": {
        "description": "When the bucket is full again (Unix epoch seconds)",
        "schema": {"type": "string", "pattern": r"^[0-9]+$"},
    },
}
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "RateLimitLimit",
    "X-RateLimit-Remaining": "RateLimitRemaining",
    "X-RateLimit-Reset": "RateLimitReset",
}


def header_ref(name: str) -> dict[str, str]:
    """A reference to a shared header."""
    return {"$ref": f"#/components/headers/{name}"}


def _error_schema(body: str, codes: tuple[str, ...]) -> JsonSchema:
    return {
        "allOf": [
            {"$ref": f"{REF_PREFIX}{body}"},
            {"properties": {"error": {"type": "string", "enum": list(codes)}}},
        ]
    }


def _response(status: int) -> dict[str, Any]:
    codes = ERROR_CODES[status]
    body = "RateLimitedBody" if status == 429 else "ErrorBody"
    headers: dict[str, Any] = {"X-Request-ID": header_ref(REQUEST_ID_HEADER)}
    if status == 401:
        headers["WWW-Authenticate"] = header_ref("WwwAuthenticate")
    if status in (429, 503):
        headers["Retry-After"] = header_ref("RetryAfter")
    if status == 429:
        headers.update({name: header_ref(ref) for name, ref in RATE_LIMIT_HEADERS.items()})
    listed = ", ".join(f"`{code}`" for code in codes)
    return {
        "description": f"{_MEANING[status]} Codes: {listed}.",
        "headers": headers,
        "content": {
            "application/json": {
                "schema": _error_schema(body, codes),
                "examples": {example["summary"]: example for example in _EXAMPLES[status]},
            }
        },
    }


def _oauth_response() -> dict[str, Any]:
    listed = ", ".join(f"`{code}`" for code in OAUTH_CODES)
    return {
        "description": "Wrong credentials (the same answer for an unknown client id and a wrong "
        f"secret) or a refresh token that is expired, revoked or reused. Codes: {listed}.",
        "headers": {"X-Request-ID": header_ref(REQUEST_ID_HEADER)},
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [
                        {"$ref": f"{REF_PREFIX}OAuthErrorBody"},
                        {"properties": {"error": {"type": "string", "enum": list(OAUTH_CODES)}}},
                    ]
                },
                "examples": {
                    "invalid_client": {
                        "summary": "invalid_client",
                        "value": {
                            "error": "invalid_client",
                            "error_description": "Invalid client credentials",
                        },
                    }
                },
            }
        },
    }


def add_error_components(document: dict[str, Any], components: ComponentSet) -> None:
    """Put the shared error bodies, responses and headers into ``document['components']``."""
    for model in (ErrorBody, RateLimitedBody, OAuthErrorBody):
        schema, definitions = model_schema(model, "serialization")
        components.add({**definitions, model.__name__: schema})
    shared = document["components"]
    shared.setdefault("headers", {}).update(_HEADERS)
    responses = shared.setdefault("responses", {})
    for status, name in RESPONSE_NAMES.items():
        responses[name] = _response(status)
    responses[OAUTH_RESPONSE_NAME] = _oauth_response()


def document_errors(operation: dict[str, Any], handler: str) -> None:
    """Give ``operation`` the error responses of :data:`OPERATION_ERRORS` (KeyError if absent)."""
    responses = operation.setdefault("responses", {})
    for status in (*OPERATION_ERRORS[handler], *_ALWAYS):
        name = RESPONSE_NAMES[status]
        if status == 401 and handler in OAUTH_OPERATIONS:
            name = OAUTH_RESPONSE_NAME
        responses[str(status)] = {"$ref": f"#/components/responses/{name}"}
