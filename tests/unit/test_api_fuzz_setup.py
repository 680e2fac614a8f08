"""The API fuzz run's configuration stays true to the document, and its hooks stay narrow."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

from api.app import create_app
from scripts import api_fuzz, api_fuzz_hooks


def operation_ids() -> set[str]:
    app = create_app(MagicMock())  # the provider holds the app weakly: keep it alive
    document = app.extensions["QUART_SCHEMA"].openapi_provider.schema()
    return {
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    }


def test_the_configuration_is_filled_in_and_names_real_operations(tmp_path: Path) -> None:
    path = api_fuzz.write_config(
        tmp_path, {"TVM_FUZZ_TOKEN": "t0k", "TVM_FUZZ_VEHICLE": "fuzz_1", "TVM_FUZZ_HOOKS": "h.py"}
    )
    text = path.read_text()
    assert "${TVM" not in text
    config = tomllib.loads(text)
    assert config["headers"]["Authorization"] == "Bearer t0k"
    assert config["dictionaries"]["vehicles"]["values"] == ["fuzz_1"]
    assert config["hooks"] == "h.py"
    known = operation_ids()
    assert known >= api_fuzz_hooks.LIVE | api_fuzz_hooks.SCHEDULED | api_fuzz_hooks.SAME_VEHICLE
    command = api_fuzz.schemathesis_command(path, "http://hub", 7, 12, [])
    assert command[command.index("--checks") + 1] == "all"
    assert command[command.index("--seed") + 1] == "7"
    assert command[command.index("--max-examples") + 1] == "12"


def case(operation_id: str, body: Any, *, positive: bool = True) -> Any:
    mode = SimpleNamespace(is_positive=positive)
    return SimpleNamespace(
        meta=SimpleNamespace(generation=SimpleNamespace(mode=mode)),
        operation=SimpleNamespace(definition=SimpleNamespace(raw={"operationId": operation_id})),
        body=body,
        query={"cursor": "made-up", "limit": 3},
        path_parameters={"vehicle_id": "fuzz_1"},
    )


def test_only_positive_cases_are_moved_into_the_hubs_time_windows() -> None:
    old = "1999-01-01T00:00:00.000Z"
    positive = case("post_location", {"timestamp": old})
    api_fuzz_hooks.before_call(None, positive, {})
    assert positive.body["timestamp"] != old
    assert positive.query == {"limit": 3}
    negative = case("post_location", {"timestamp": old}, positive=False)
    api_fuzz_hooks.before_call(None, negative, {})
    assert negative.body == {"timestamp": old}
    assert negative.query["cursor"] == "made-up"
    command = case("post_command", {"type": "resume", "vehicle_id": "other"})
    api_fuzz_hooks.before_call(None, command, {})
    assert command.body["vehicle_id"] == "fuzz_1"


class RejectedPositiveData:
    """Stands in for Schemathesis' failure class (matched by name)."""


class UseAfterFree:
    """Likewise."""

    def __init__(self, free: str) -> None:
        self.free = free


class EnsureResourceAvailability:
    """Likewise."""


def answer(code: int, **body: Any) -> Any:
    return SimpleNamespace(status_code=code, content=json.dumps(body).encode())


def test_only_the_three_documented_failures_are_forgiven() -> None:
    keep = api_fuzz_hooks.filter_failure
    transition = answer(400, error="invalid_state_transition")
    assert keep(None, RejectedPositiveData(), None, transition) is False
    assert keep(None, RejectedPositiveData(), None, answer(400, error="validation_error"))
    assert keep(None, object(), None, transition) is True
    cancelled = answer(200, status="cancelled")
    assert keep(None, UseAfterFree("DELETE /api/v1/reservations/resv_1"), None, cancelled) is False
    assert keep(None, UseAfterFree("DELETE /api/v1/reservations/resv_1"), None, answer(200))
    assert keep(None, UseAfterFree("DELETE /api/v1/admin/vehicles/v1"), None, cancelled)
    vehicle_404 = answer(404, error="unknown_vehicle")
    assert keep(None, EnsureResourceAvailability(), None, vehicle_404) is False
    assert keep(None, EnsureResourceAvailability(), None, answer(404, error="not_found"))
