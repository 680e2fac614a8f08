"""Base classes for wire models: strict request models and lenient response models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


class WireModel(BaseModel):
    """A request body (or part of one): unknown fields refused, no type coercion.

    Strict mode means a JSON string is never a number and ``true`` is never ``1``; JSON
    integers are still accepted where the contract asks for a number. Infinities and NaN are
    refused. Instances are immutable so they can travel between actors as messages.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        frozen=True,
    )


class ResponseModel(BaseModel):
    """A body the hub sends: built by our own code, so only unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


VEHICLE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""A vehicle id: 1 to 64 letters, digits, ``_`` or ``-``, e.g. ``wheelchair_001``."""


def _integral(value: Any) -> Any:
    """``916.0`` → ``916``: JSON (and JSON Schema) count a number without a fraction as an
    integer however it is written; ``916.5`` stays a float and is refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


INTEGRAL = BeforeValidator(_integral)
"""Put after an integer's bounds, ``Annotated[int, Field(ge=0, le=9), INTEGRAL]``: the bounds
then stay JSON Schema ``minimum``/``maximum`` in the published documents."""
