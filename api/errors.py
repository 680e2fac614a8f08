"""Every refusal answers in the contract's JSON error shape (CONTRACT §1.1), never HTML.

The domain raises the typed family of :mod:`hub.errors`; this module is the one place that
says what each class means at the edge — HTTP status, headers, body and WebSocket close code
(:data:`ANSWERS`). Werkzeug's HTTP errors (unknown route, wrong method, body too large) and
anything unexpected are mapped here too. A 500 logs the traceback under the request id and
shows the client neither; every other refusal is logged once, briefly (:mod:`api.refusal_log`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from quart import Quart, Response, current_app, g, has_request_context, request, websocket
from quart.wrappers import BaseRequestWebsocket
from werkzeug.exceptions import HTTPException

from api.refusal_log import log_failure, log_refusal
from api.responses import json_text
from hub.clock import now_timestamp
from hub.errors import (
    ConflictError,
    ContractError,
    CredentialsRefusedError,
    ForbiddenError,
    InternalError,
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    UnknownVehicleError,
)

logger = logging.getLogger(__name__)


class MethodNotAllowedError(ContractError):
    """Raised when a route exists but not for this HTTP method (``method_not_allowed``)."""

    def __init__(self, allowed: list[str]) -> None:
        super().__init__("method_not_allowed", "Method not allowed on this resource")
        self.allowed = sorted(allowed)


class RequestTimeoutError(ContractError):
    """Raised when a request body did not arrive within the body timeout (``request_timeout``)."""

    def __init__(self) -> None:
        super().__init__("request_timeout", "The request body did not arrive in time")


class PayloadTooLargeError(ContractError):
    """Raised when a body is over its limit: 1 MiB, 4 MiB for bulk (``payload_too_large``)."""


class UnsupportedMediaTypeError(ContractError):
    """Raised when a body is not ``application/json`` (``unsupported_media_type``)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """How the edge answers one class of refusal: HTTP status, and the close code of a socket
    that the refusal ends (``None``: a socket gets an ``error`` frame and stays open)."""

    status: int
    close_code: int | None = None


ANSWERS: dict[type[ContractError], Answer] = {
    InvalidInputError: Answer(400),
    NotAuthenticatedError: Answer(401, close_code=4001),
    CredentialsRefusedError: Answer(401, close_code=4001),
    ForbiddenError: Answer(403, close_code=4005),
    UnknownVehicleError: Answer(404, close_code=4004),
    NotFoundError: Answer(404),
    MethodNotAllowedError: Answer(405),
    RequestTimeoutError: Answer(408),
    ConflictError: Answer(409),
    PayloadTooLargeError: Answer(413, close_code=1009),
    UnsupportedMediaTypeError: Answer(415),
    RateLimitedError: Answer(429),
    InternalError: Answer(500, close_code=1011),
    UnavailableError: Answer(503, close_code=1013),
}
"""The one table from the error family to status and close code (first match along the MRO)."""

_WERKZEUG: dict[int, ContractError] = {
    400: InvalidInputError("validation_error", "Bad request"),
    404: NotFoundError("No such resource"),
    408: RequestTimeoutError(),
    413: PayloadTooLargeError("payload_too_large", "Request body too large"),
    415: UnsupportedMediaTypeError(
        "unsupported_media_type", "Content-Type must be application/json"
    ),
}


def answer_for(error: ContractError) -> Answer:
    """The :class:`Answer` for ``error``'s class (500 for a class the table does not know)."""
    for cls in type(error).__mro__:
        answer = ANSWERS.get(cls)
        if answer is not None:
            return answer
    return ANSWERS[InternalError]


def error_body(error: ContractError, *, timestamp: str, request_id: str | None) -> dict[str, Any]:
    """The flat error body of CONTRACT §1.1, or the OAuth form for the token endpoint."""
    if isinstance(error, CredentialsRefusedError):
        return {"error": error.error, "error_description": error.message}
    body = error.fields()
    body["timestamp"] = timestamp
    if request_id is not None:
        body["request_id"] = request_id
    if isinstance(error, RateLimitedError):
        body["retry_after"] = error.retry_after
    return body


def rate_limit_headers(limit: int, remaining: int, reset_epoch: int) -> dict[str, str]:
    """The ``X-RateLimit-*`` headers of CONTRACT §5."""
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset_epoch),
    }


def error_headers(error: ContractError) -> dict[str, str]:
    """The headers the contract asks for with ``error`` (challenge, retry, limits, Allow)."""
    match error:
        case NotAuthenticatedError():
            return {"WWW-Authenticate": f'Bearer error="{error.error}"'}
        case RateLimitedError():
            headers = rate_limit_headers(error.limit, error.remaining, error.reset_epoch)
            headers["Retry-After"] = str(error.retry_after)
            return headers
        case UnavailableError():
            return {"Retry-After": str(error.retry_after)}
        case MethodNotAllowedError():
            return {"Allow": ", ".join(error.allowed)}
    return {}


def request_id() -> str | None:
    """The current request's id, if the request-id hook ran."""
    current: str | None = g.get("request_id")
    return current


def error_response(error: ContractError) -> Response:
    """The JSON response for a refusal, with its headers (does not log)."""
    body = error_body(error, timestamp=now_timestamp(), request_id=request_id())
    response = Response(
        json_text(body), status=answer_for(error).status, mimetype="application/json"
    )
    for name, value in error_headers(error).items():
        response.headers[name] = value
    return response


def _current() -> BaseRequestWebsocket:
    """The request being refused: an HTTP request, or a WebSocket handshake (a socket path
    Quart has no route for is refused here too)."""
    current: BaseRequestWebsocket = request if has_request_context() else websocket
    return current


def _route() -> str:
    rule = _current().url_rule
    return rule.rule if rule is not None else "unmatched"


def _principal() -> str | None:
    principal = g.get("principal")
    return None if principal is None else f"{principal.role}:{principal.subject}"


async def _refused(error: ContractError) -> Response:
    status = answer_for(error).status
    if status >= 500:
        log_failure(
            status,
            error.error,
            method=_current().method,
            route=_route(),
            request_id=request_id(),
            cause=error.__cause__ or error.__context__,
        )
    else:
        log_refusal(
            status,
            error.error,
            method=_current().method,
            route=_route(),
            principal=_principal(),
            request_id=request_id(),
        )
    if isinstance(error, ForbiddenError):
        await _audit_forbidden(error)
    return error_response(error)


async def _audit_forbidden(error: ForbiddenError) -> None:
    """A refused access is a security event: it goes to the audit log (never raises)."""
    services = current_app.extensions.get("tvm_services")
    if services is None or services.accounts is None:
        return
    principal = g.get("principal")
    current = _current()
    await services.accounts.security_event(
        "access_forbidden",
        actor=None if principal is None else principal.subject,
        actor_role=None if principal is None else principal.role,
        address=current.remote_addr,
        details={
            "method": current.method,
            "path": current.path,
            "route": _route(),
            "message": error.message,
        },
        repeat_key=f"{current.method} {_route()}",
    )


async def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status == 405:
        allowed = list(getattr(error, "valid_methods", None) or [])
        return await _refused(MethodNotAllowedError(allowed))
    known = _WERKZEUG.get(status)
    if known is None:
        return await _refused(InternalError())
    return await _refused(known)


async def _unexpected(error: Exception) -> Response:
    if isinstance(error, ContractError):
        return await _refused(error)
    if isinstance(error, HTTPException):
        return await _http_error(error)
    logger.error("unhandled error", exc_info=error, extra={"request_id": request_id()})
    return error_response(InternalError())


def install_error_handlers(app: Quart) -> None:
    """Register the JSON error mapping on the app."""
    app.register_error_handler(ContractError, _refused)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
