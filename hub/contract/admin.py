"""Admin bodies (CONTRACT §8): registering vehicles and users."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from hub.contract.base import VEHICLE_ID_PATTERN, ResponseModel, WireModel
from hub.contract.roles import PersonRole

UserRole = PersonRole

USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{3,64}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 256


class VehicleCreate(WireModel):
    """``POST /api/v1/admin/vehicles``: register a vehicle."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"vehicle_id": "wheelchair_001", "name": "Ward 3 chair"}]}
    )

    vehicle_id: str = Field(pattern=VEHICLE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)


class VehicleCredentials(ResponseModel):
    """A vehicle's client credentials; the secret is shown this once and never again."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "vehicle_id": "wheelchair_001",
                    "client_id": "veh_wheelchair_001",
                    "client_secret": "4q8Zk1vN0pX7-example-only",
                }
            ]
        }
    )

    vehicle_id: str
    client_id: str
    client_secret: str


class UserCreate(WireModel):
    """``POST /api/v1/admin/users``: add a person who can log in with a password."""

    model_config = ConfigDict(
        hide_input_in_errors=True,
        json_schema_extra={
            "examples": [
                {
                    "username": "op.tanaka",
                    "password": "a long passphrase",
                    "role": "operator",
                    "email": "tanaka@example.org",
                }
            ]
        },
    )

    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
    role: UserRole
    email: str | None = Field(default=None, pattern=EMAIL_PATTERN, max_length=254)


class UserCreated(ResponseModel):
    """The 201 of user creation (never the password)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"username": "op.tanaka", "role": "operator", "email": "tanaka@example.org"}
            ]
        }
    )

    username: str
    role: UserRole
    email: str | None = None
