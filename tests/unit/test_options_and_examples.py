"""OPTIONS names exactly the methods a path serves; examples are moved to the present."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest.mock import MagicMock

import pytest

from api.app import create_app
from api.openapi.examples import with_live_examples
from api.openapi.schemas import ComponentConflictError, ComponentSet
from hub.clock import format_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/v1/vehicles", "GET, HEAD, OPTIONS"),
        # The history route matches …/location too, but serves only its five segments.
        ("/api/v1/vehicle/wheelchair_001/location", "OPTIONS, POST"),
        ("/api/v1/vehicle/wheelchair_001/battery", "GET, HEAD, OPTIONS, POST"),
        ("/api/v1/vehicle/wheelchair_001/locations", "GET, HEAD, OPTIONS"),
        ("/api/v1/reservations/resv_0123456789abcdef", "DELETE, GET, HEAD, OPTIONS, PATCH"),
        ("/api/v1/auth/token", "OPTIONS, POST"),
    ],
)
async def test_options_answers_204_with_only_the_methods_the_path_serves(
    path: str, allow: str
) -> None:
    app = create_app(MagicMock())
    answer = await app.test_client().options(path)
    assert answer.status_code == 204
    assert answer.headers["Allow"] == allow
    assert await answer.get_data() == b""  # (no Content-Type over HTTP: test_openapi_answers)


async def test_options_on_an_unknown_path_is_a_json_404() -> None:
    answer = await create_app(MagicMock()).test_client().options("/api/v1/nothing")
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/json"


def test_examples_move_together_so_the_anchor_is_now() -> None:
    document = {
        "schema": {"pattern": "^x$", "examples": [{"timestamp": "2025-12-16T10:30:45.123Z"}]},
        "media": {
            "examples": {"later": {"value": {"scheduled_time": "2025-12-16T11:00:45.123Z", "n": 3}}}
        },
        "default": "2025-12-16T10:30:45.123Z",
    }
    now = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    live = with_live_examples(document, now)
    assert live["schema"]["examples"] == [{"timestamp": format_timestamp(now)}]
    later = live["media"]["examples"]["later"]["value"]
    assert parse_timestamp(later["scheduled_time"]) - now == timedelta(minutes=30)
    assert later["n"] == 3
    assert live["default"] == "2025-12-16T10:30:45.123Z"  # only examples move
    assert document["schema"]["examples"][0]["timestamp"] == "2025-12-16T10:30:45.123Z"


def test_two_different_schemas_under_one_name_refuse_to_build() -> None:
    components = ComponentSet()
    components.add({"Mission": {"type": "object", "properties": {"a": {}}}})
    components.add({"Mission": {"type": "object", "properties": {"a": {}}}})
    with pytest.raises(ComponentConflictError, match="Mission"):
        components.add({"Mission": {"type": "object", "properties": {"b": {}}}})
