"""The OpenAPI document says what an integrator needs (TVM-INT-002), checked without a hub.

The app is built around a mock of the services (registering routes does no I/O), and its
``/openapi.json`` document is read from the provider, as a request would get it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import MagicMock

import pytest

from api.app import create_app
from api.openapi.errors import ERROR_CODES, OPERATION_ERRORS
from hub.clock import TIMESTAMP_PATTERN, parse_timestamp
from hub.contract.commands import COMMAND_MODELS
from tests.published_schemas import resolve, schema_errors

PUBLIC = {
    ("get", "/health"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("post", "/api/v1/auth/token"),
    ("post", "/api/v1/auth/refresh"),
}
BODY_METHODS = ("post", "patch", "put")
HISTORY = ("locations", "status", "battery", "errors", "docking")

QUERY_PARAMETERS: dict[str, set[str]] = {
    **{f"get_{segment}_history": {"from", "to", "limit", "cursor"} for segment in HISTORY},
    "list_alerts": {"open", "severity", "vehicle_id", "limit", "cursor"},
    "list_missions": {"vehicle_id", "status", "limit", "cursor"},
    "list_reservations": {"status", "vehicle_id", "from", "to", "limit", "cursor"},
    "audit_log": {"limit", "cursor"},
    "list_commands": {"limit"},
    "post_command": {"wait"},
}
"""What each handler reads from ``request.args`` (read from the handlers themselves)."""

PATH_PATTERNS = {
    "vehicle_id": r"^[A-Za-z0-9_-]{1,64}$",
    "command_id": r"^cmd_[a-zA-Z0-9_]+$",
    "alert_id": r"^alert_[0-9a-f]{16}$",
    "mission_id": r"^mission_[a-zA-Z0-9]+$",
    "reservation_id": r"^resv_[0-9a-f]{16}$",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(MagicMock())
    built: dict[str, Any] = app.extensions["QUART_SCHEMA"].openapi_provider.schema()
    return built


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_operation_has_a_summary_a_description_and_its_own_id(
    document: dict[str, Any],
) -> None:
    seen: dict[str, str] = {}
    for method, path, operation in operations(document):
        assert operation["summary"].strip(), (method, path)
        assert operation["description"].strip(), (method, path)
        assert "\n" not in operation["summary"], (method, path)
        assert operation["operationId"] not in seen, (operation["operationId"], path)
        seen[operation["operationId"]] = path
    assert len(seen) >= 39


def test_only_probes_metrics_and_logins_need_no_token(document: dict[str, Any]) -> None:
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for method, path, operation in operations(document):
        if (method, path) in PUBLIC:
            assert operation["security"] == [], (method, path)
        else:
            assert operation.get("security", document["security"]) == [{"bearer": []}]


def test_path_parameters_carry_their_patterns(document: dict[str, Any]) -> None:
    named = set()
    for _, path, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "path":
                continue
            assert parameter["required"] is True
            assert parameter["schema"]["pattern"] == PATH_PATTERNS[parameter["name"]], path
            assert "{" + parameter["name"] + "}" in path
            named.add(parameter["name"])
    assert named == set(PATH_PATTERNS)


def test_every_query_parameter_a_handler_reads_is_documented_with_its_type(
    document: dict[str, Any],
) -> None:
    found: dict[str, set[str]] = {}
    for _, _, operation in operations(document):
        query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
        if query:
            found[operation["operationId"]] = {p["name"] for p in query}
        for parameter in query:
            assert parameter["description"], (operation["operationId"], parameter["name"])
            assert parameter["schema"].get("type") in ("string", "integer"), parameter
            assert {"type": "null"} not in parameter["schema"].get("anyOf", [])
    assert found == QUERY_PARAMETERS
    limit = next(
        p for p in document["paths"]["/api/v1/alerts"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 10_000)
    timestamps = [
        p
        for p in document["paths"]["/api/v1/vehicle/{vehicle_id}/locations"]["get"]["parameters"]
        if p["name"] in ("from", "to")
    ]
    assert [p["schema"]["pattern"] for p in timestamps] == [TIMESTAMP_PATTERN.pattern] * 2


def test_the_command_body_is_a_union_of_the_five_commands_told_apart_by_type(
    document: dict[str, Any],
) -> None:
    body = document["paths"]["/api/v1/vehicle/{vehicle_id}/commands"]["post"]["requestBody"]
    media = body["content"]["application/json"]
    schema = media["schema"]
    assert schema["discriminator"]["propertyName"] == "type"
    assert set(schema["discriminator"]["mapping"]) == set(COMMAND_MODELS)
    assert len(schema["oneOf"]) == 5
    for kind, reference in schema["discriminator"]["mapping"].items():
        target = resolve(document, {"$ref": reference})
        assert target["properties"]["type"]["const"] == kind
        assert "type" in target["required"]
    assert set(media["examples"]) == set(COMMAND_MODELS)
    for example in media["examples"].values():
        assert "command_id" not in example["value"]  # "Try it out" twice must not be 409
        assert schema_errors(document, schema, example["value"]) == []
    # A configure key may be left out but never sent as null.
    config = document["components"]["schemas"]["ConfigUpdates"]
    assert config["minProperties"] == 1
    assert schema_errors(document, config, {"max_speed": None}) != []


def test_the_fleet_wide_stop_documents_its_body_and_answer(document: dict[str, Any]) -> None:
    stop = document["paths"]["/api/v1/fleet/emergency_stop"]["post"]
    schema = stop["requestBody"]["content"]["application/json"]["schema"]
    assert set(resolve(document, schema)["properties"]) == {"reason", "message", "vehicle_ids"}
    assert resolve(document, schema)["properties"]["vehicle_ids"]["type"] == "array"
    answer = stop["responses"]["200"]["content"]["application/json"]["schema"]
    assert "results" in answer["properties"]


def test_body_endpoints_document_400_413_415_and_authenticated_ones_401_403(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        statuses = set(operation["responses"])
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= statuses, (method, path)
        if any(p["in"] == "query" for p in operation.get("parameters", [])):
            assert "400" in statuses, (method, path)
        if (method, path) not in PUBLIC:
            assert {"401", "403"} <= statuses, (method, path)
        assert "500" in statuses
        assert any(status.startswith("2") for status in statuses), (method, path)


def test_error_answers_have_the_flat_body_oauth_on_logins_and_retry_after_on_429(
    document: dict[str, Any],
) -> None:
    flat = document["components"]["schemas"]["ErrorBody"]
    assert {"error", "message", "timestamp"} <= set(flat["required"])
    assert {"field", "received_value", "details", "request_id"} <= set(flat["properties"])
    token = document["paths"]["/api/v1/auth/token"]["post"]["responses"]
    oauth = resolve(document, token["401"])["content"]["application/json"]["schema"]
    assert oauth["allOf"][0]["$ref"].endswith("/OAuthErrorBody")
    limited = resolve(document, token["429"])
    assert limited["content"]["application/json"]["schema"]["allOf"][0]["$ref"].endswith(
        "/RateLimitedBody"
    )
    assert "retry_after" in document["components"]["schemas"]["RateLimitedBody"]["required"]
    assert {"Retry-After", "X-RateLimit-Remaining"} <= set(limited["headers"])
    unauthorized = document["components"]["responses"]["Unauthorized"]
    assert "WWW-Authenticate" in unauthorized["headers"]
    for status, codes in ERROR_CODES.items():
        for example in resolve(document, {"$ref": _response_ref(status)})["content"][
            "application/json"
        ]["examples"].values():
            assert example["value"]["error"] in codes


def _response_ref(status: int) -> str:
    from api.openapi.errors import RESPONSE_NAMES

    return f"#/components/responses/{RESPONSE_NAMES[status]}"


def test_the_error_table_names_every_operation(document: dict[str, Any]) -> None:
    handlers = {operation["operationId"] for _, _, operation in operations(document)}
    history = {f"get_{segment}_history" for segment in HISTORY}
    assert handlers - history | {"history"} == set(OPERATION_ERRORS)


def test_answers_match_what_the_hub_builds(document: dict[str, Any]) -> None:
    summary = document["components"]["schemas"]["VehicleSummary"]
    assert "docking_phase" in summary["properties"]
    mission = document["components"]["schemas"]["Mission"]
    assert {"vehicle_id", "status", "priority", "start_time", "end_time", "created_at"} <= set(
        mission["properties"]
    )
    dispatched = document["components"]["schemas"]["DispatchMission"]
    assert set(dispatched["properties"]) == {
        "mission_id",
        "pickup",
        "destination",
        "scheduled_time",
    }
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


def test_example_timestamps_are_set_to_the_time_of_the_request(document: dict[str, Any]) -> None:
    """Swagger's "Try it out" sends the examples; the live window is five minutes."""
    location = document["paths"]["/api/v1/vehicle/{vehicle_id}/location"]["post"]
    [example] = location["requestBody"]["content"]["application/json"]["schema"]["examples"]
    sent = parse_timestamp(example["timestamp"])
    assert abs(sent - datetime.now(UTC)) < timedelta(minutes=1)
    assert example["location"]["latitude"] == 35.681236
    reservation = document["paths"]["/api/v1/reservations"]["post"]
    [booking] = reservation["requestBody"]["content"]["application/json"]["schema"]["examples"]
    scheduled = parse_timestamp(booking["scheduled_time"])
    assert abs(scheduled - datetime.now(UTC)) < timedelta(minutes=1)


def test_the_front_page_links_the_websocket_document(document: dict[str, Any]) -> None:
    description = document["info"]["description"]
    assert "(/asyncapi.json)" in description
    assert "/ws/v1/fleet" in description and "?token=" in description


def schemas_in(value: Any) -> list[dict[str, Any]]:
    """Every JSON Schema object inside ``value`` (anything with a ``type``, walked deep)."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if isinstance(value.get("type"), str):
            found.append(value)
        for item in value.values():
            found.extend(schemas_in(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(schemas_in(item))
    return found


def test_number_bounds_are_json_schema_keywords_a_client_can_read(
    document: dict[str, Any],
) -> None:
    numbers = [s for s in schemas_in(document) if s["type"] in ("integer", "number")]
    assert numbers
    for schema in numbers:
        assert not {"ge", "le", "gt", "lt"} & schema.keys(), schema
    docking_body = document["paths"]["/api/v1/vehicle/{vehicle_id}/docking"]["post"]["requestBody"]
    schema = resolve(document, docking_body["content"]["application/json"]["schema"])
    docking = schema["properties"]["marker_id"]
    assert {"type": "integer", "minimum": 0, "maximum": 999} in docking["anyOf"]


def test_the_emergency_stops_say_a_null_or_long_reason_is_taken(document: dict[str, Any]) -> None:
    fleet = document["paths"]["/api/v1/fleet/emergency_stop"]["post"]["requestBody"]
    body = resolve(document, fleet["content"]["application/json"]["schema"])
    reason = body["properties"]["reason"]
    assert {"type": "null"} in reason["anyOf"]
    assert "maxLength" not in json.dumps(reason)
    assert body["properties"]["vehicle_ids"]["items"]["pattern"]
