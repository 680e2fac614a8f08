"""Per-operation details the route decorators cannot say: notes, headers, media types, paths.

- :data:`NOTES` adds a paragraph to an operation's description (limits, rules, who may call).
- :func:`document_success_headers` lists the headers a success answer carries.
- :func:`expand_history` replaces the one route ``GET /api/v1/vehicle/{id}/{kind}`` by the
  five paths it really serves, each with its own page schema: a templated ``{kind}`` beside
  the concrete ``…/battery`` and ``…/status`` POST paths would, by OpenAPI's matching rules,
  hide the GETs of those paths, and would promise GETs (``…/location``) that answer 404.
- :func:`document_metrics` says ``/metrics`` answers Prometheus text, not JSON.
"""

from __future__ import annotations

import copy
from typing import Any

from actors.fleet_reads import HISTORY_PATHS
from api.openapi.errors import RATE_LIMIT_HEADERS, REQUEST_ID_HEADER, header_ref
from api.openapi.schemas import ComponentSet, model_schema
from hub.contract.commands import COMMAND_MODELS
from hub.contract.records import HISTORY_PAGES
from hub.contract.telemetry import DockingUpdate

_TELEMETRY_LIMITS: dict[str, str] = {
    "location": "1 per second, burst 5",
    "status": "1 per second, burst 5",
    "battery": "1 per 5 seconds, burst 2",
    "error": "10 per second, burst 20 (safety reports are never limited to 1 Hz)",
    "docking": "2 per second, burst 10",
    "bulk": "1 per 5 seconds, burst 3",
}

_TELEMETRY_RULES: dict[str, str] = {
    "location": "latitude [-90, 90], longitude [-180, 180], heading [0, 360], speed [0, 2.0] "
    "m/s, accuracy [0, 1.0] m; altitude optional.",
    "status": "The new state must be allowed from the vehicle's last accepted state (400 "
    "`invalid_state_transition` with `details.from`, `to`, `allowed`); a vehicle with no "
    "state known for 5 minutes may report any. Entering `error` or `emergency_stop` raises "
    "an alert.",
    "battery": "Below 30 % and not charging, the answer adds `warning: low_battery` and "
    "`recommended_action`; crossing 20 % and 10 % raises an alert.",
    "error": "An unknown but well-formed `error_code` is stored and alerted like any other, "
    "and the answer adds `warning: unknown_error_code`. Severity `error` or `critical` "
    "alerts staff.",
    "docking": "Phases only move forward (`approaching` → … → `success`), or to `failed`; "
    "`approaching` starts over (400 `invalid_phase_transition` otherwise).",
}

_LIVE_WINDOW = (
    "The record's `timestamp` must be within the live window: at most 300 s old and at most "
    "5 s ahead of the hub's clock (400 `invalid_timestamp`). The answer comes after the "
    "record is committed; resending an already stored record answers 200 with "
    '`"duplicate": true`.'
)


def _telemetry_note(kind: str) -> str:
    return (
        f"Vehicle token of this vehicle only. {_LIVE_WINDOW} {_TELEMETRY_RULES[kind]} "
        f"Rate limit: {_TELEMETRY_LIMITS[kind]}."
    )


NOTES: dict[str, str] = {
    **{f"post_{kind}": _telemetry_note(kind) for kind in _TELEMETRY_RULES},
    "post_bulk": "Vehicle token of this vehicle only. Timestamps may be up to 30 days old. "
    "All messages are stored in one transaction or none is (400 with `details.index` of "
    "the first bad one). Duplicates (same kind and timestamp) are skipped and counted. "
    f"Rate limit: {_TELEMETRY_LIMITS['bulk']}.",
    "issue_token": "No token needed. Ten failed logins per minute for one client id or one "
    "address answer 429.",
    "refresh_token": "No token needed. Reusing a refresh token that was already traded "
    "revokes its whole family (401 `invalid_grant`).",
    "post_command": "Operator or admin. The five command types are told apart by `type`. "
    "Emergency stops are never queued behind anything and never refused for their text.",
    "fleet_emergency_stop": "Operator or admin. An unknown id is reported as that vehicle's "
    "`failed` outcome and never keeps the stop from the others.",
}
"""A paragraph added to the description of each operation named (by handler name)."""

_NO_STORE = {
    "description": "`no-store`: the answer holds secrets",
    "schema": {"type": "string", "const": "no-store"},
    "required": True,
}


def document_success_headers(operation: dict[str, Any], handler: str) -> None:
    """Add the headers of every answer (request id) and of this operation's successes."""
    for response in operation.get("responses", {}).values():
        if "$ref" not in response:
            response.setdefault("headers", {})["X-Request-ID"] = header_ref(REQUEST_ID_HEADER)
    for status, response in operation.get("responses", {}).items():
        if not status.startswith("2"):
            continue
        headers = response["headers"]
        if handler.startswith("post_") and handler.removeprefix("post_") in _TELEMETRY_LIMITS:
            headers.update({name: header_ref(ref) for name, ref in RATE_LIMIT_HEADERS.items()})
        if handler in ("issue_token", "refresh_token", "create_vehicle", "rotate_secret"):
            headers["Cache-Control"] = _NO_STORE
        if handler == "create_reservation":
            headers["Location"] = {
                "description": "The new reservation's path",
                "required": True,
                "schema": {"type": "string", "pattern": r"^/api/v1/reservations/resv_[0-9a-f]+$"},
            }


def add_note(operation: dict[str, Any], handler: str) -> None:
    """Append :data:`NOTES` for ``handler`` to the operation's description."""
    note = NOTES.get(handler)
    if note:
        described = operation.get("description", "").strip()
        operation["description"] = f"{described}\n\n{note}".strip()


def document_union_examples(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Name the examples of each alternative of a body that is a union of models.

    Swagger UI shows media-type examples in a drop-down; the alternatives' own examples sit
    in their component schemas, where "Try it out" would not offer them.
    """
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not content or "examples" in content:
        return
    options = content["schema"].get("oneOf") or content["schema"].get("anyOf") or []
    examples: dict[str, Any] = {}
    for option in options:
        name = str(option.get("$ref", "")).rsplit("/", 1)[-1]
        for index, body in enumerate(schemas.get(name, {}).get("examples", []), start=1):
            examples[f"{name}{index}"] = {"summary": name, "value": copy.deepcopy(body)}
    if examples:
        content["examples"] = examples


def document_command_examples(operation: dict[str, Any]) -> None:
    """One named request example per command type, without ``command_id``.

    The hub assigns a fresh id when none is sent, so "Try it out" can send an example again
    and again; a reused id answers 409 ``duplicate_command``.
    """
    examples: dict[str, Any] = {}
    for kind, model in COMMAND_MODELS.items():
        extra = model.model_config.get("json_schema_extra")
        assert isinstance(extra, dict)
        body = copy.deepcopy(extra["examples"][0])  # type: ignore[index]
        assert isinstance(body, dict)
        body.pop("command_id", None)
        examples[kind] = {"summary": kind, "value": body}
    content = operation["requestBody"]["content"]["application/json"]
    content["examples"] = examples


def document_docking_examples(operation: dict[str, Any]) -> None:
    """A first docking report starts at ``approaching``; the contract's example is a later one.

    Phases only move forward, so the contract's ``visual_servoing`` example is refused as a
    vehicle's first docking report; the examples go in an order the hub accepts.
    """
    extra = DockingUpdate.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    later = copy.deepcopy(extra["examples"][0])  # type: ignore[index]
    assert isinstance(later, dict)
    first = {
        **later,
        "phase": "approaching",
        "marker_id": None,
        "distance_to_marker_meters": 3.2,
        "alignment_error_degrees": None,
        "details": {"marker_visible": False},
    }
    first = {key: value for key, value in first.items() if value is not None}
    content = operation["requestBody"]["content"]["application/json"]
    content["examples"] = {
        "approaching": {"summary": "first report of a docking", "value": first},
        str(later["phase"]): {"summary": "a later phase", "value": later},
    }


def expand_history(paths: dict[str, Any], components: ComponentSet) -> None:
    """Replace ``/api/v1/vehicle/{vehicle_id}/{kind}`` by one GET path per history kind."""
    template = paths.pop("/api/v1/vehicle/{vehicle_id}/{kind}", None)
    if template is None:
        return
    generic = template["get"]
    for segment, kind in HISTORY_PATHS.items():
        operation = copy.deepcopy(generic)
        operation["operationId"] = f"get_{segment}_history"
        operation["summary"] = f"{_TITLES[kind]} history of a vehicle, newest first"
        operation["parameters"] = [
            parameter for parameter in operation["parameters"] if parameter["name"] != "kind"
        ]
        schema, definitions = model_schema(HISTORY_PAGES[segment], "serialization")
        components.add(definitions)
        ok = operation["responses"]["200"]
        ok["description"] = HISTORY_PAGES[segment].__doc__ or ""
        ok["content"] = {"application/json": {"schema": schema}}
        paths.setdefault(f"/api/v1/vehicle/{{vehicle_id}}/{segment}", {})["get"] = operation


_TITLES: dict[str, str] = {
    "location": "Location",
    "status": "Status",
    "battery": "Battery",
    "error": "Error report",
    "docking": "Docking",
}


def document_metrics(operation: dict[str, Any]) -> None:
    """``/metrics`` answers the Prometheus text exposition format."""
    operation["responses"]["200"] = {
        "description": "Prometheus text exposition format (version 0.0.4)",
        "content": {
            "text/plain": {
                "schema": {"type": "string"},
                "example": '# TYPE request_count counter\nrequest_count_total{method="GET",'
                'route="/health",status="200"} 3.0\n',
            }
        },
    }
