"""Every failure answers in the contract's JSON error shape (CONTRACT §1.1), never HTML.

Handlers raise :class:`~hub.errors.ContractError`; Werkzeug's HTTP errors (unknown route,
wrong method, body too large) and anything unexpected are mapped here. A 500 logs the
traceback under the request id and shows the client neither.
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart, Response, current_app, g, json, request
from werkzeug.exceptions import HTTPException

from hub.clock import now_timestamp
from hub.errors import ContractError

logger = logging.getLogger(__name__)

_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("validation_error", "Bad request"),
    401: ("missing_token", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "No such resource"),
    405: ("method_not_allowed", "Method not allowed on this resource"),
    408: ("request_timeout", "The request body did not arrive in time"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Content-Type must be application/json"),
    429: ("rate_limit_exceeded", "Too many requests"),
    503: ("service_unavailable", "Service unavailable"),
}


def request_id() -> str | None:
    """The current request's id, if the request-id hook ran."""
    request_id: str | None = g.get("request_id")
    return request_id


def error_response(error: ContractError) -> Response:
    """The JSON response for a contract error, with its headers."""
    body = error.body(timestamp=now_timestamp(), request_id=request_id())
    response = Response(json.dumps(body), status=error.status, mimetype="application/json")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


async def _contract_error(error: ContractError) -> Response:
    if error.status == 403:
        await _audit_forbidden(error)
    return error_response(error)


async def _audit_forbidden(error: ContractError) -> None:
    """A refused access is a security event: it goes to the audit log (never raises)."""
    services = current_app.extensions.get("tvm_services")
    if services is None or services.accounts is None:
        return
    principal = g.get("principal")
    await services.accounts.security_event(
        "access_forbidden",
        actor=None if principal is None else principal.subject,
        actor_role=None if principal is None else principal.role,
        address=request.remote_addr,
        details={"method": request.method, "path": request.path, "message": error.message},
    )


async def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code, message = _HTTP_ERRORS.get(status, ("http_error", error.name))
    contract = ContractError(status, code, message)
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        contract.headers["Allow"] = ", ".join(sorted(error.valid_methods))  # type: ignore[attr-defined]
    return error_response(contract)


async def _unexpected(error: Exception) -> Response:
    if isinstance(error, ContractError):
        return error_response(error)
    if isinstance(error, HTTPException):
        return await _http_error(error)
    logger.error("unhandled error", exc_info=error, extra={"request_id": request_id()})
    return error_response(
        ContractError(500, "internal_error", "Internal error; quote the request id to support")
    )


def install_error_handlers(app: Quart) -> None:
    """Register the JSON error mapping on the app."""
    app.register_error_handler(ContractError, _contract_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response (one serialisation, no content negotiation)."""
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    if headers:
        for name, value in headers.items():
            response.headers[name] = value
    return response
