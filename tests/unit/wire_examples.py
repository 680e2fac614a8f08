"""Helpers shared by the wire-model tests: contract examples, edited copies, refusals."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import BaseModel

from api.errors import answer_for
from hub.contract.validation import parse_model, validate_model
from hub.errors import ContractError, InvalidInputError

DELETE = object()
"""Passed as a value to :func:`set_path`: remove the key instead."""


def examples(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Deep copies of the model's OpenAPI examples (taken from the contract)."""
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    found = extra["examples"]
    assert isinstance(found, list)
    return copy.deepcopy(found)  # type: ignore[arg-type]


def example(model: type[BaseModel]) -> dict[str, Any]:
    """A deep copy of the model's first example."""
    return examples(model)[0]


def set_path(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``body`` with the dotted ``path`` set to ``value`` (or removed: DELETE)."""
    *parents, leaf = path.split(".")
    target = body
    for name in parents:
        target = target[name]
    if value is DELETE:
        del target[leaf]
    else:
        target[leaf] = value
    return body


def with_change(model: type[BaseModel], path: str, value: Any) -> dict[str, Any]:
    """The model's example with the dotted ``path`` set to ``value`` (or removed: DELETE)."""
    return set_path(example(model), path, value)


def assert_bad_request(error: ContractError) -> None:
    """The contract refused what the client sent: InvalidInputError, answered 400."""
    assert isinstance(error, InvalidInputError), repr(error)
    assert answer_for(error).status == 400


def encode(body: Any) -> bytes:
    """JSON bytes of a body, as a client sends it."""
    return json.dumps(body).encode()


def refused(model: type[BaseModel], body: Any) -> ContractError:
    """Parse ``body`` both ways (raw bytes and decoded data); both must refuse it alike."""
    with pytest.raises(ContractError) as raw_refusal:
        parse_model(model, encode(body))
    with pytest.raises(ContractError) as data_refusal:
        validate_model(model, body)
    raw_error, data_error = raw_refusal.value, data_refusal.value
    assert_bad_request(raw_error)
    assert_bad_request(data_error)
    assert (raw_error.error, raw_error.field, raw_error.message, raw_error.details) == (
        data_error.error,
        data_error.field,
        data_error.message,
        data_error.details,
    )
    if raw_error.has_received_value:
        assert raw_error.received_value == data_error.received_value
    return raw_error
