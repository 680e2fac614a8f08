"""Admin endpoints: register and disable vehicles, rotate secrets, add users, read the audit log."""

from __future__ import annotations

from quart import Quart, Response, request
from quart_schema import document_querystring, document_request, document_response, tag

from actors.accounts import VehicleCredentials
from api.bodies.reads import audit_item
from api.context import HubServices
from api.guard import require_role
from api.paging import optional_cursor, page_body, parse_limit
from api.request_body import json_body
from api.responses import json_response
from hub.contract import admin as admin_models
from hub.contract import responses
from hub.contract.queries import AuditQuery
from hub.contract.records import AuditPage
from hub.contract.roles import ADMINS
from hub.contract.validation import parse_model


def _credentials_response(credentials: VehicleCredentials, *, status: int) -> Response:
    """A vehicle's credentials, shown once: never cached anywhere on the way."""
    return json_response(
        {
            "vehicle_id": credentials.vehicle_id,
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
        },
        status=status,
        headers={"Cache-Control": "no-store"},
    )


def register(app: Quart, services: HubServices) -> None:
    """Add the ``/api/v1/admin`` endpoints."""

    @tag(["admin"])
    @document_request(admin_models.VehicleCreate)
    @document_response(admin_models.VehicleCredentials, 201)
    @document_response(responses.ErrorBody, 409)
    async def create_vehicle() -> Response:
        """Register a vehicle; the answer shows its client secret once.

        The vehicle logs in with `client_id` and `client_secret`; the hub keeps only a
        hash of the secret. 409 `vehicle_exists` if the id is taken.
        """
        require_role(services, ADMINS)
        body = parse_model(admin_models.VehicleCreate, await json_body())
        credentials = await services.accounts.register_vehicle(body.vehicle_id, body.name)
        return _credentials_response(credentials, status=201)

    @tag(["admin"])
    @document_response(admin_models.VehicleCredentials, 200)
    @document_response(responses.ErrorBody, 404)
    async def rotate_secret(vehicle_id: str) -> Response:
        """New credentials for a vehicle; the old secret and its refresh tokens stop working.

        The new secret is shown this once.
        """
        require_role(services, ADMINS)
        credentials = await services.accounts.rotate_vehicle_secret(vehicle_id)
        return _credentials_response(credentials, status=200)

    @tag(["admin"])
    @document_response(responses.VehicleDisabled, 200)
    @document_response(responses.ErrorBody, 404)
    async def disable_vehicle(vehicle_id: str) -> Response:
        """Disable a vehicle: its logins and reports are refused; its history is kept.

        Nothing is deleted: from now on the vehicle is unknown (404 `unknown_vehicle`) to
        every endpoint, and its id cannot be registered again.
        """
        require_role(services, ADMINS)
        await services.accounts.disable_vehicle(vehicle_id)
        return json_response({"vehicle_id": vehicle_id, "enabled": False})

    @tag(["admin"])
    @document_response(responses.VehicleEnabled, 200)
    @document_response(responses.ErrorBody, 404)
    async def enable_vehicle(vehicle_id: str) -> Response:
        """Enable a disabled vehicle again: it may log in and report.

        Its client secret is the one it had; rotate it if it may have leaked. Enabling an
        enabled vehicle changes nothing.
        """
        require_role(services, ADMINS)
        await services.accounts.enable_vehicle(vehicle_id)
        return json_response({"vehicle_id": vehicle_id, "enabled": True})

    @tag(["admin"])
    @document_request(admin_models.UserCreate)
    @document_response(admin_models.UserCreated, 201)
    @document_response(responses.ErrorBody, 409)
    async def create_user() -> Response:
        """Add a person with a role (admin, operator or viewer).

        Passwords are at least 12 characters and stored hashed. 409 `user_exists` if the
        name or e-mail is taken.
        """
        require_role(services, ADMINS)
        body = parse_model(admin_models.UserCreate, await json_body())
        await services.accounts.create_user(body.username, body.password, body.role, body.email)
        return json_response(
            {"username": body.username, "role": body.role, "email": body.email}, status=201
        )

    @tag(["admin"])
    @document_querystring(AuditQuery)
    @document_response(AuditPage, 200)
    async def audit_log() -> Response:
        """The audit log, newest first (``limit``, ``cursor``).

        Logins that failed, refused accesses, emergency stops, registrations, reservation
        changes: who, when, from where, on which vehicle, and how it went.
        """
        require_role(services, ADMINS)
        limit = parse_limit(request.args.get("limit"))
        before = optional_cursor(request.args.get("cursor"), (int,))
        rows = await services.reads.audit(
            limit=limit + 1, before_id=None if before is None else before[0]
        )
        page = page_body(rows, limit, render=audit_item, key=lambda row: (row["audit_id"],))
        return json_response(page)

    app.add_url_rule("/api/v1/admin/vehicles", view_func=create_vehicle, methods=["POST"])
    app.add_url_rule(
        "/api/v1/admin/vehicles/<vehicle_id>/rotate-secret",
        view_func=rotate_secret,
        methods=["POST"],
    )
    app.add_url_rule(
        "/api/v1/admin/vehicles/<vehicle_id>", view_func=disable_vehicle, methods=["DELETE"]
    )
    app.add_url_rule(
        "/api/v1/admin/vehicles/<vehicle_id>/enable", view_func=enable_vehicle, methods=["POST"]
    )
    app.add_url_rule("/api/v1/admin/users", view_func=create_user, methods=["POST"])
    app.add_url_rule("/api/v1/admin/audit", view_func=audit_log, methods=["GET"])
