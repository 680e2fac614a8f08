"""The two shapes of a login body (CONTRACT §2), for the OpenAPI document.

:class:`~hub.contract.auth.TokenRequest` parses both grants with one model whose validators
enforce which fields go with which grant; as a JSON Schema that model says only "any of these
fields, each maybe null". :data:`LoginBody` says what the validators enforce: a vehicle's
client credentials (``grant_type`` optional) or a person's password, never a mix. A field of
the other grant may be sent as ``null`` (it is then ignored), never with a value.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from hub.contract.auth import TokenRequest
from hub.contract.base import WireModel


def _max_length(field: str) -> int:
    """The ``max_length`` :class:`TokenRequest` enforces on ``field``."""
    for constraint in TokenRequest.model_fields[field].metadata:
        limit = getattr(constraint, "max_length", None)
        if isinstance(limit, int):
            return limit
    raise LookupError(f"TokenRequest.{field} has no max_length")


NAME_MAX_LENGTH = _max_length("client_id")
SECRET_MAX_LENGTH = _max_length("client_secret")


def _client_example() -> ConfigDict:
    extra = TokenRequest.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    examples = extra["examples"]
    assert isinstance(examples, list)
    return ConfigDict(json_schema_extra={"examples": [examples[0]]})


class ClientCredentialsLogin(WireModel):
    """A vehicle logs in with the credentials it got at registration."""

    model_config = _client_example()

    grant_type: Literal["client_credentials"] | None = Field(
        default=None, description="May be left out: vehicles in the field omit it"
    )
    client_id: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    client_secret: str = Field(min_length=1, max_length=SECRET_MAX_LENGTH)
    username: None = Field(default=None, description="Not used by this grant")
    password: None = Field(default=None, description="Not used by this grant")


class PasswordLogin(WireModel):
    """A person logs in with a username and password."""

    # The person the example of POST /api/v1/admin/users creates, so "Try it out" works.
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"grant_type": "password", "username": "op.tanaka", "password": "a long passphrase"}
            ]
        }
    )

    grant_type: Literal["password"]
    username: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    password: str = Field(min_length=1, max_length=SECRET_MAX_LENGTH)
    client_id: None = Field(default=None, description="Not used by this grant")
    client_secret: None = Field(default=None, description="Not used by this grant")


LoginBody = ClientCredentialsLogin | PasswordLogin
"""``POST /api/v1/auth/token``: exactly one of the two grants."""
