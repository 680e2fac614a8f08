"""Base classes for wire models: strict request models and lenient response models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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
"""A vehicle id (CONTRACT §1), e.g. ``wheelchair_001``."""
