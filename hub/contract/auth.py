"""Token endpoint bodies (CONTRACT §2): login, refresh, the token answer, OAuth errors."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from hub.contract.base import ResponseModel, WireModel
from hub.contract.roles import Role

GrantType = Literal["client_credentials", "password"]

# Which credential fields each grant uses; the others must be absent.
GRANT_FIELDS: dict[GrantType, tuple[str, str]] = {
    "client_credentials": ("client_id", "client_secret"),
    "password": ("username", "password"),
}

_SECRET_MAX = 256


class TokenRequest(WireModel):
    """``POST /api/v1/auth/token``: a vehicle's client credentials or a person's password.

    ``grant_type`` may be omitted and then means ``client_credentials`` (vehicles in the
    field omit it). The fields of the other grant must not be sent.
    """

    model_config = ConfigDict(
        hide_input_in_errors=True,
        json_schema_extra={
            "examples": [
                {
                    "grant_type": "client_credentials",
                    "client_id": "veh_wheelchair_001",
                    "client_secret": "s3cr3t-from-registration",
                },
                {"grant_type": "password", "username": "op.tanaka", "password": "correct horse"},
            ]
        },
    )

    grant_type: GrantType | None = None
    client_id: str | None = Field(default=None, min_length=1, max_length=200, validate_default=True)
    client_secret: str | None = Field(
        default=None, min_length=1, max_length=_SECRET_MAX, validate_default=True
    )
    username: str | None = Field(default=None, min_length=1, max_length=200, validate_default=True)
    password: str | None = Field(
        default=None, min_length=1, max_length=_SECRET_MAX, validate_default=True
    )

    @field_validator("client_id", "client_secret", "username", "password")
    @classmethod
    def _fits_grant(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Each grant needs its own two fields and none of the other grant's."""
        if "grant_type" not in info.data:  # grant_type itself was invalid; already reported
            return value
        grant: GrantType = info.data["grant_type"] or "client_credentials"
        needed = info.field_name in GRANT_FIELDS[grant]
        if needed and value is None:
            raise PydanticCustomError("missing", "is required")
        if not needed and value is not None:
            raise PydanticCustomError(
                "validation_error", "is not used with grant_type {grant}", {"grant": grant}
            )
        return value

    @property
    def grant(self) -> GrantType:
        """The grant in effect (``client_credentials`` when ``grant_type`` was omitted)."""
        return self.grant_type or "client_credentials"


class RefreshRequest(WireModel):
    """``POST /api/v1/auth/refresh``: trade a refresh token for a new pair."""

    model_config = ConfigDict(
        hide_input_in_errors=True,
        json_schema_extra={"examples": [{"refresh_token": "rt_9f2c4e1b7a..."}]},
    )

    refresh_token: str = Field(min_length=1, max_length=512)


class TokenResponse(ResponseModel):
    """The 200 of both token endpoints; ``vehicle_id`` for vehicles, ``username``/``role`` else."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
                    "token_type": "Bearer",
                    "expires_in": 86400,
                    "refresh_token": "rt_9f2c4e1b7a...",
                    "refresh_expires_in": 2592000,
                    "vehicle_id": "wheelchair_001",
                }
            ]
        }
    )

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    vehicle_id: str | None = Field(default=None, exclude_if=lambda value: value is None)
    username: str | None = Field(default=None, exclude_if=lambda value: value is None)
    role: Role | None = Field(default=None, exclude_if=lambda value: value is None)


class OAuthErrorBody(ResponseModel):
    """The OAuth-style error the token endpoints answer with (not the flat error body)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": "invalid_client", "error_description": "Invalid client credentials"}
            ]
        }
    )

    error: str = Field(
        description="invalid_request, invalid_client, invalid_grant or unsupported_grant_type"
    )
    error_description: str
