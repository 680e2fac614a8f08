"""The hub's error family: one exception type that carries a contract error (CONTRACT §1.1).

Domain code (validators, transition rules, auth) raises :class:`ContractError`; the API
layer turns it into the flat JSON error body and the HTTP status. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

_UNSET: Any = object()


@dataclass(eq=False)
class ContractError(Exception):
    """A request the contract says to refuse, with the answer the client should get.

    ``status`` is the HTTP status, ``error`` the contract's code (``invalid_location``, …),
    ``field`` the dotted path of the field at fault when one is, ``received_value`` what the
    client sent there, ``details`` anything else the contract lists (allowed transitions, the
    failing bulk index, all field errors). ``headers`` are extra response headers.
    """

    status: int
    error: str
    message: str
    field: str | None = None
    received_value: Any = _UNSET
    details: dict[str, Any] | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.error}: {self.message}")

    @property
    def has_received_value(self) -> bool:
        """True when the client's value at ``field`` is known (it may itself be ``None``)."""
        return self.received_value is not _UNSET

    def body(self, *, timestamp: str, request_id: str | None) -> dict[str, Any]:
        """The flat error body of CONTRACT §1.1."""
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.has_received_value:
            body["received_value"] = self.received_value
        body["timestamp"] = timestamp
        if request_id is not None:
            body["request_id"] = request_id
        if self.details:
            body["details"] = self.details
        return body


def bad_request(
    error: str,
    message: str,
    *,
    field: str | None = None,
    received_value: Any = _UNSET,
    details: dict[str, Any] | None = None,
) -> ContractError:
    """A 400 with the given contract code."""
    return ContractError(400, error, message, field, received_value, details)


def not_found(error: str = "not_found", message: str = "Not found") -> ContractError:
    """A 404 (``unknown_vehicle`` or ``not_found``)."""
    return ContractError(404, error, message)


def forbidden(message: str = "Forbidden") -> ContractError:
    """A 403: the caller is known but lacks the right."""
    return ContractError(403, "forbidden", message)


def unauthorized(error: str, message: str) -> ContractError:
    """A 401 carrying the ``WWW-Authenticate`` challenge the contract requires."""
    return ContractError(
        401, error, message, headers={"WWW-Authenticate": f'Bearer error="{error}"'}
    )


def service_unavailable(message: str = "Database unavailable, retry later") -> ContractError:
    """A 503 with ``Retry-After``: the database could not commit the request."""
    return ContractError(503, "service_unavailable", message, headers={"Retry-After": "5"})


class OAuthError(ContractError):
    """A token-endpoint failure, answered in OAuth form: ``{"error", "error_description"}``."""

    def body(self, *, timestamp: str, request_id: str | None) -> dict[str, Any]:
        """The OAuth 2.0 error body the vehicle API specifies for ``/auth/*``."""
        return {"error": self.error, "error_description": self.message}


class RateLimitedError(ContractError):
    """A 429: the caller spent its tokens; the body tells it how long to wait."""

    def __init__(self, retry_after: int, headers: dict[str, str]) -> None:
        super().__init__(
            429,
            "rate_limit_exceeded",
            f"Too many requests. Please wait {retry_after} seconds.",
            headers={**headers, "Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after

    def body(self, *, timestamp: str, request_id: str | None) -> dict[str, Any]:
        """The contract's 429 body, with ``retry_after`` in seconds."""
        body = super().body(timestamp=timestamp, request_id=request_id)
        body["retry_after"] = self.retry_after
        return body
