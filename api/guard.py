"""Who is calling, and may they: bearer tokens, roles and vehicle ownership (CONTRACT §2)."""

from __future__ import annotations

from quart import g, request

from api.context import HubServices
from hub.errors import ForbiddenError, NotAuthenticatedError
from hub.logs import bind_log_context
from hub.security import Principal


def authenticate(services: HubServices) -> Principal:
    """Verify the request's token (401 on any fault) and remember the caller in ``g``."""
    principal = caller_of(services, request.headers.get("Authorization", ""))
    g.principal = principal
    return principal


def caller_of(services: HubServices, authorization: str) -> Principal:
    """The caller an ``Authorization: Bearer …`` header names, bound to the log context;
    401 ``missing_token`` without a bearer token, 401 for any fault of the token."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticatedError("missing_token", "Authorization: Bearer <token> required")
    principal = services.codec.verify(token.strip())
    if principal.is_vehicle:
        bind_log_context(vehicle_id=principal.vehicle_id)
    else:
        bind_log_context(user_id=principal.subject)
    return principal


def require_role(services: HubServices, roles: tuple[str, ...]) -> Principal:
    """A person whose role is one of ``roles``; 403 for anyone else (vehicles included)."""
    return check_role(authenticate(services), roles)


def require_vehicle(services: HubServices, vehicle_id: str) -> Principal:
    """The vehicle that owns ``vehicle_id``'s path; 403 for another vehicle or a person."""
    return check_owner(authenticate(services), vehicle_id)


def check_role(principal: Principal, roles: tuple[str, ...]) -> Principal:
    """``principal`` if its role is one of ``roles``; 403 otherwise."""
    if principal.role not in roles:
        raise ForbiddenError(f"Role {principal.role} may not do this")
    return principal


def check_owner(principal: Principal, vehicle_id: str) -> Principal:
    """``principal`` if it is the vehicle ``vehicle_id``; 403 for another vehicle or a person."""
    if not principal.is_vehicle:
        raise ForbiddenError("Only the vehicle itself may post its telemetry")
    if principal.vehicle_id != vehicle_id:
        raise ForbiddenError("This token belongs to another vehicle")
    return principal
