"""The hub's error family: a small flat set of refusals, each saying when it is raised.

Domain code (actors, storage-facing services, auth) raises these; it never speaks HTTP. The
edge (``api/errors.py``) maps each class to its HTTP status, headers, body and WebSocket
close code in one table. All of them are :class:`~hub.contract.errors.ContractError`, so they
carry the contract's error code, a message and, where one field is at fault, that field and
the value the client sent there.

In the style of trio's ``_core/_exceptions.py``, the class says *why* a request was refused;
the ``error`` code says which of the contract's names for it applies.
"""

from __future__ import annotations

from hub.contract.errors import NO_VALUE, ContractError, InvalidInputError

__all__ = [
    "NO_VALUE",
    "ConflictError",
    "ContractError",
    "CredentialsRefusedError",
    "ForbiddenError",
    "InternalError",
    "InvalidInputError",
    "NotAuthenticatedError",
    "NotFoundError",
    "RateLimitedError",
    "UnavailableError",
    "UnknownVehicleError",
]


class NotAuthenticatedError(ContractError):
    """Raised when a request carries no token (``missing_token``), or one that is forged,
    malformed, for another issuer or audience (``invalid_token``) or past its expiry
    (``token_expired``). Who is calling is not known."""


class CredentialsRefusedError(ContractError):
    """Raised by the token endpoint when a login or a refresh is refused: wrong or unknown
    client credentials or password (``invalid_client``, the same answer for both), or a
    refresh token that is unknown, expired or revoked (``invalid_grant``)."""


class ForbiddenError(ContractError):
    """Raised when the caller is known but may not do this: its role lacks the right, or a
    vehicle's token is used on another vehicle's path (``forbidden``)."""

    def __init__(self, message: str = "Forbidden") -> None:
        super().__init__("forbidden", message)


class UnknownVehicleError(ContractError):
    """Raised when a vehicle id is not registered, or the vehicle is disabled
    (``unknown_vehicle``)."""

    def __init__(self, vehicle_id: str) -> None:
        super().__init__(
            "unknown_vehicle",
            f"Vehicle {vehicle_id} is not registered",
            field="vehicle_id",
            received_value=vehicle_id,
        )
        self.vehicle_id = vehicle_id


class NotFoundError(ContractError):
    """Raised when a command, mission, reservation, alert or route named by the request does
    not exist (``not_found``)."""

    def __init__(self, message: str = "Not found") -> None:
        super().__init__("not_found", message)


class ConflictError(ContractError):
    """Raised when the request collides with what the hub holds: a command id already used
    (``duplicate_command``), a command the vehicle's state does not allow now
    (``invalid_command_state``), a vehicle or user that is already registered
    (``vehicle_exists``, ``user_exists``), or a record that kept changing (``conflict``)."""


class RateLimitedError(ContractError):
    """Raised when the caller has spent its tokens (``rate_limit_exceeded``).

    ``retry_after`` is the whole seconds until a token is back; ``limit``, ``remaining`` and
    ``reset_epoch`` describe the bucket (the ``X-RateLimit-*`` headers).
    """

    def __init__(self, retry_after: int, *, limit: int, remaining: int, reset_epoch: int) -> None:
        super().__init__(
            "rate_limit_exceeded", f"Too many requests. Please wait {retry_after} seconds."
        )
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining
        self.reset_epoch = reset_epoch


class UnavailableError(ContractError):
    """Raised when the hub cannot serve the request now but may soon (``service_unavailable``):
    the database stayed unreachable through the retries, or a vehicle's backlog is full.
    Nothing was stored; ``retry_after`` says when to try again."""

    def __init__(
        self, message: str = "Database unavailable, retry later", *, retry_after: int = 5
    ) -> None:
        super().__init__("service_unavailable", message)
        self.retry_after = retry_after


class InternalError(ContractError):
    """Raised when the hub failed through its own fault (``internal_error``): a bug, or a
    storage error that the data of a validated request should never have caused. The client
    learns nothing more; the log has the cause under the request id."""

    def __init__(self, message: str = "Internal error; quote the request id to support") -> None:
        super().__init__("internal_error", message)
