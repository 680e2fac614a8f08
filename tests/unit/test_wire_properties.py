"""Property tests: every numeric bound of the telemetry schemas, and the timestamp parser."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from hub.clock import TIMESTAMP_PATTERN, format_timestamp, parse_timestamp
from hub.contract import (
    BatteryUpdate,
    DockingUpdate,
    ErrorReport,
    LocationUpdate,
    StatusUpdate,
    parse_model,
    wire_text,
)
from hub.contract.text import unstorable_path
from hub.contract.timestamps import parse_exact
from hub.errors import ContractError
from tests.unit.wire_examples import assert_bad_request


@dataclass(frozen=True)
class Bound:
    """A numeric field, its accepted range and the code a value outside it earns."""

    model: type[BaseModel]
    path: str
    low: float
    high: float | None
    code: str
    low_open: bool = False
    integer: bool = False

    @property
    def id(self) -> str:
        return f"{self.model.__name__}.{self.path}"


BOUNDS = [
    Bound(LocationUpdate, "location.latitude", -90, 90, "invalid_location"),
    Bound(LocationUpdate, "location.longitude", -180, 180, "invalid_location"),
    Bound(LocationUpdate, "location.heading", 0, 360, "invalid_heading"),
    Bound(LocationUpdate, "location.speed", 0, 2.0, "invalid_speed"),
    Bound(LocationUpdate, "location.accuracy", 0, 1.0, "invalid_accuracy"),
    Bound(ErrorReport, "location.latitude", -90, 90, "invalid_location"),
    Bound(ErrorReport, "location.longitude", -180, 180, "invalid_location"),
    Bound(BatteryUpdate, "battery.soc_percent", 0, 100, "invalid_battery"),
    Bound(BatteryUpdate, "battery.voltage", 0, 100, "invalid_battery", low_open=True),
    Bound(BatteryUpdate, "battery.current", -100, 100, "invalid_battery"),
    Bound(BatteryUpdate, "battery.temperature", -20, 80, "invalid_battery"),
    Bound(BatteryUpdate, "battery.health_percent", 0, 100, "invalid_battery"),
    Bound(
        BatteryUpdate,
        "battery.estimated_runtime_minutes",
        0,
        2_147_483_647,
        "invalid_battery",
        integer=True,
    ),
    Bound(StatusUpdate, "details.progress_percent", 0, 100, "validation_error"),
    Bound(StatusUpdate, "details.distance_remaining_meters", 0, None, "validation_error"),
    Bound(StatusUpdate, "details.eta_seconds", 0, 2_147_483_647, "validation_error", integer=True),
    Bound(DockingUpdate, "marker_id", 0, 999, "validation_error", integer=True),
    Bound(DockingUpdate, "attempts", 0, 2_147_483_647, "validation_error", integer=True),
    Bound(DockingUpdate, "distance_to_marker_meters", 0, 10, "validation_error"),
    Bound(DockingUpdate, "alignment_error_degrees", 0, 180, "validation_error"),
    Bound(DockingUpdate, "details.confidence", 0, 1, "validation_error"),
]
IDS = [bound.id for bound in BOUNDS]


def body_with(bound: Bound, value: Any) -> bytes:
    """The model's contract example with the bound's field set to ``value``, as JSON."""
    extra = bound.model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    examples = extra["examples"]
    assert isinstance(examples, list)
    body: Any = copy.deepcopy(examples[0])
    *parents, leaf = bound.path.split(".")
    target = body
    for name in parents:
        target = target[name]
    target[leaf] = value
    return json.dumps(body).encode()


def read_back(record: BaseModel, path: str) -> Any:
    value: Any = record
    for name in path.split("."):
        value = getattr(value, name)
    return value


def assert_accepted(bound: Bound, value: float) -> None:
    record = parse_model(bound.model, body_with(bound, value))
    assert read_back(record, bound.path) == value


def assert_refused(bound: Bound, value: float) -> None:
    with pytest.raises(ContractError) as refusal:
        parse_model(bound.model, body_with(bound, value))
    error = refusal.value
    assert_bad_request(error)
    assert (error.error, error.field) == (bound.code, bound.path)
    assert error.received_value == value


def inside(bound: Bound) -> st.SearchStrategy[Any]:
    if bound.integer:
        return st.integers(min_value=int(bound.low), max_value=int(bound.high or 2**31))
    return st.floats(
        min_value=bound.low,
        max_value=bound.high,
        exclude_min=bound.low_open,
        allow_nan=False,
        allow_infinity=False,
    )


def outside(bound: Bound) -> st.SearchStrategy[Any]:
    below: st.SearchStrategy[Any]
    above: st.SearchStrategy[Any]
    if bound.integer:
        below = st.integers(max_value=int(bound.low) - 1)
        above = st.integers(min_value=int(bound.high or 0) + 1)
    else:
        below = st.floats(max_value=bound.low, exclude_max=not bound.low_open, allow_infinity=False)
        above = st.floats(min_value=bound.high or 0, exclude_min=True, allow_infinity=False)
    below = below.filter(lambda value: not (isinstance(value, float) and math.isnan(value)))
    return below if bound.high is None else st.one_of(below, above)


@pytest.mark.parametrize("bound", BOUNDS, ids=IDS)
@settings(max_examples=60)
@given(data=st.data())
def test_values_inside_a_bound_are_accepted(bound: Bound, data: st.DataObject) -> None:
    assert_accepted(bound, data.draw(inside(bound)))


@pytest.mark.parametrize("bound", BOUNDS, ids=IDS)
@settings(max_examples=60)
@given(data=st.data())
def test_values_outside_a_bound_are_refused_with_its_code(
    bound: Bound, data: st.DataObject
) -> None:
    assert_refused(bound, data.draw(outside(bound)))


@pytest.mark.parametrize("bound", BOUNDS, ids=IDS)
def test_exact_edges(bound: Bound) -> None:
    """At each edge: the edge itself (unless open), one step in, one step out."""
    if bound.integer:
        assert_accepted(bound, int(bound.low))
        assert_refused(bound, int(bound.low) - 1)
        if bound.high is not None:
            assert_accepted(bound, int(bound.high))
            assert_refused(bound, int(bound.high) + 1)
        return
    low = float(bound.low)
    assert_accepted(bound, math.nextafter(low, math.inf))
    if bound.low_open:
        assert_refused(bound, low)
    else:
        assert_accepted(bound, low)
        assert_refused(bound, math.nextafter(low, -math.inf))
    if bound.high is not None:
        high = float(bound.high)
        assert_accepted(bound, high)
        assert_accepted(bound, math.nextafter(high, -math.inf))
        assert_refused(bound, math.nextafter(high, math.inf))


@pytest.mark.parametrize(
    "bound",
    [bound for bound in BOUNDS if not bound.integer],
    ids=[bound.id for bound in BOUNDS if not bound.integer],
)
def test_a_json_integer_at_the_edge_is_a_number(bound: Bound) -> None:
    if bound.low == int(bound.low) and not bound.low_open:
        assert_accepted(bound, int(bound.low))


# --- timestamps ------------------------------------------------------------------------------

ASCII_FORM = st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z", fullmatch=True
)


def clock_parse(text: str) -> datetime | None:
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


def wire_parse(text: str) -> datetime | None:
    body = json.dumps({"timestamp": text, "phase": "approaching"}).encode()
    try:
        return parse_model(DockingUpdate, body).timestamp
    except ContractError as error:
        if unstorable_path(text) is not None:
            # Text PostgreSQL cannot store is refused before the field's own rule, unechoed.
            assert (error.error, error.field, error.has_received_value) == (
                "validation_error",
                "timestamp",
                False,
            )
            return None
        assert (error.error, error.field, error.received_value) == (
            "invalid_timestamp",
            "timestamp",
            text,
        )
        return None


@given(ASCII_FORM)
@example("2024-02-29T00:00:00.000Z")
@example("2025-02-29T00:00:00.000Z")
@example("2025-12-31T23:59:60.000Z")
@example("2025-12-16T24:00:00.000Z")
@example("0000-01-01T00:00:00.000Z")
def test_wire_timestamps_agree_with_hub_clock(text: str) -> None:
    assert TIMESTAMP_PATTERN.match(text)
    expected = clock_parse(text)
    if expected is None:
        with pytest.raises(ValueError):
            parse_exact(text)
    else:
        assert parse_exact(text) == expected
    assert wire_parse(text) == clock_parse(text)


@given(st.text(max_size=30))
def test_any_other_text_is_refused_like_hub_clock_does(text: str) -> None:
    if text.isascii():
        assert wire_parse(text) == clock_parse(text)
    else:
        assert wire_parse(text) is None


@given(
    st.datetimes(
        min_value=datetime(1000, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.just(UTC),
    )
)
def test_the_wire_string_round_trips(moment: datetime) -> None:
    text = format_timestamp(moment)
    parsed = wire_parse(text)
    assert parsed is not None
    assert wire_text(parsed) == text
    assert parsed == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
