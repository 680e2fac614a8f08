"""The five live telemetry POSTs answered in front of Quart: same rules, a shorter way.

``POST /api/v1/vehicle/{id}/{location|status|battery|error|docking}`` is what every vehicle
sends every second, and Quart's per-request machinery (request and response objects, hooks,
context locals) was most of what it cost. :class:`TelemetryFastPath` is an ASGI app that
takes those requests itself and hands every other request to Quart. It gives the same
answers, in the same order of checks:

1. the token (401, with ``WWW-Authenticate``);
2. the path's owner (403, audited);
3. a registered vehicle (404);
4. ``Content-Type: application/json`` (415);
5. the body within 1 MiB (413) and within the body timeout (408);
6. the contract's model (400);
7. the vehicle's actor: rate limit, time window and transitions; then the commit.

It also gives the same bodies, ``X-Request-ID``, rate-limit and CORS headers, refusal logs
and request metrics. The routes stay registered in Quart too, so the OpenAPI document
describes them. A request body that a refusal did not need is still read (up to its limit,
for up to ``UNREAD_BODY_WAIT`` seconds), so the client sees the answer instead of a reset;
a body too large or too slow gets ``Connection: close``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio

from api.bodies.telemetry import quota_headers, report_body
from api.context import HubServices
from api.edge import cors_headers
from api.errors import (
    PayloadTooLargeError,
    RequestTimeoutError,
    UnsupportedMediaTypeError,
    answer_for,
    error_body,
    error_headers,
)
from api.refusal_log import log_failure, log_refusal
from api.request_body import MAX_BODY, MAX_BULK_BODY, UNREAD_BODY_WAIT
from api.request_ids import request_id_from
from api.responses import json_text
from hub import metrics
from hub.clock import now_timestamp
from hub.contract.telemetry import TELEMETRY_MODELS, TelemetryRecord
from hub.contract.text import unstorable_path
from hub.contract.validation import parse_model
from hub.errors import (
    ContractError,
    ForbiddenError,
    InternalError,
    InvalidInputError,
    NotAuthenticatedError,
)
from hub.logs import log_context
from hub.security import Principal

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PATH = re.compile(r"^/api/v1/vehicle/([^/]+)/(location|status|battery|error|docking)$")
_ROUTES: dict[str, str] = {
    kind: f"/api/v1/vehicle/<vehicle_id>/{kind}" for kind in TELEMETRY_MODELS
}
_MODELS: dict[str, type[TelemetryRecord]] = {
    kind: model for kind, model in TELEMETRY_MODELS.items()
}


class _ClientGone(Exception):
    """The client disconnected before its request was whole: nothing to answer."""


class _Body:
    """The request body, read on demand, bounded in size and time."""

    def __init__(self, receive: Receive, declared: int | None, chunked: bool) -> None:
        self._receive = receive
        self.declared = declared
        self.expected = chunked or (declared is not None and declared > 0)
        self.complete = not self.expected
        self._parts: list[bytes] = []
        self._size = 0

    async def read(self, *, limit: int, seconds: float) -> bytes:
        """The whole body; PayloadTooLargeError over ``limit``, RequestTimeoutError when it
        does not arrive within ``seconds``, _ClientGone if the client left."""
        if self.declared is not None and self.declared > limit:
            raise _too_large(limit)
        with trio.move_on_after(seconds):
            while not self.complete:
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    raise _ClientGone
                chunk = message.get("body", b"")
                self._size += len(chunk)
                if self._size > limit:
                    raise _too_large(limit)
                self._parts.append(chunk)
                self.complete = not message.get("more_body", False)
            return b"".join(self._parts)
        raise RequestTimeoutError()

    async def settle(self) -> bool:
        """Before a refusal: let the unread rest of the body arrive (True), or give up on it
        (False: too large, too slow or gone — the connection is then closed)."""
        if self.complete:
            return True
        try:
            await self.read(limit=MAX_BULK_BODY, seconds=UNREAD_BODY_WAIT)
        except (ContractError, _ClientGone):
            return False
        return True


class TelemetryFastPath:
    """ASGI app: the live telemetry POSTs here, everything else to ``app`` (Quart)."""

    def __init__(self, app: ASGIApp, services: HubServices) -> None:
        self._app = app
        self._services = services
        self._cors = frozenset(services.settings.cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            found = _PATH.match(scope["path"])
            if found is not None:
                await self._serve(scope, receive, send, found.group(1), found.group(2))
                return
        await self._app(scope, receive, send)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, vehicle_id: str, kind: str
    ) -> None:
        started = trio.current_time()
        headers = _headers(scope["headers"])
        request_id = request_id_from(headers.get("x-request-id"))
        route = _ROUTES[kind]
        body = _Body(
            receive,
            _content_length(headers.get("content-length")),
            "chunked" in headers.get("transfer-encoding", "").lower(),
        )
        principal: Principal | None = None
        with log_context(request_id=request_id):
            try:
                principal = self._authenticate(headers, vehicle_id, scope)
                _check_owner(principal, vehicle_id)
                status, payload, extra = await self._report(
                    body, headers, vehicle_id, kind, request_id
                )
            except _ClientGone:
                return
            except ContractError as error:
                status = answer_for(error).status
                await self._refused(error, status, scope, route, principal, request_id, vehicle_id)
                payload = error_body(error, timestamp=now_timestamp(), request_id=request_id)
                extra = error_headers(error)
                if isinstance(error, RequestTimeoutError) or not await body.settle():
                    extra["Connection"] = "close"  # the body is not coming (in time)
            except Exception:
                logger.exception("unhandled error", extra={"request_id": request_id})
                status = 500
                payload = error_body(
                    InternalError(), timestamp=now_timestamp(), request_id=request_id
                )
                extra = {"Connection": "close"} if not body.complete else {}
            extra.update(cors_headers(headers.get("origin"), "POST", self._cors))
            await _respond(send, status, payload, request_id, extra)
        label = str(status)
        metrics.request_count.labels("POST", route, label).inc()
        metrics.request_duration.labels(route, label).observe(trio.current_time() - started)

    def _authenticate(self, headers: dict[str, str], vehicle_id: str, scope: Scope) -> Principal:
        _refuse_unstorable(vehicle_id, scope)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticatedError("missing_token", "Authorization: Bearer <token> required")
        return self._services.codec.verify(token.strip())

    async def _report(
        self, body: _Body, headers: dict[str, str], vehicle_id: str, kind: str, request_id: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        services = self._services
        services.registry.require(vehicle_id)
        mimetype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if mimetype != "application/json":
            raise UnsupportedMediaTypeError(
                "unsupported_media_type",
                "Content-Type must be application/json",
                field="Content-Type",
                received_value=headers.get("content-type"),
            )
        raw = await body.read(limit=MAX_BODY, seconds=services.settings.body_timeout)
        record = parse_model(_MODELS[kind], raw)
        answer = await services.vehicles.report(vehicle_id, record, request_id=request_id)
        return 200, report_body(answer), quota_headers(answer.quota)

    async def _refused(
        self,
        error: ContractError,
        status: int,
        scope: Scope,
        route: str,
        principal: Principal | None,
        request_id: str,
        vehicle_id: str,
    ) -> None:
        if status >= 500:
            log_failure(
                status,
                error.error,
                method="POST",
                route=route,
                request_id=request_id,
                cause=error.__cause__ or error.__context__,
            )
            return
        name = None if principal is None else f"{principal.role}:{principal.subject}"
        log_refusal(
            status,
            error.error,
            method="POST",
            route=route,
            principal=name,
            request_id=request_id,
        )
        if isinstance(error, ForbiddenError) and principal is not None:
            client = scope.get("client")
            await self._services.accounts.security_event(
                "access_forbidden",
                actor=principal.subject,
                actor_role=principal.role,
                address=None if client is None else str(client[0]),
                details={
                    "method": "POST",
                    "path": scope["path"],
                    "route": route,
                    "message": error.message,
                },
                repeat_key=f"POST {route}",
            )


def _check_owner(principal: Principal, vehicle_id: str) -> None:
    """403 unless the caller is the vehicle whose path this is."""
    if not principal.is_vehicle:
        raise ForbiddenError("Only the vehicle itself may post its telemetry")
    if principal.vehicle_id != vehicle_id:
        raise ForbiddenError("This token belongs to another vehicle")


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers by lower-case name (the first of repeated ones)."""
    found: dict[str, str] = {}
    for name, value in raw:
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def _content_length(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _refuse_unstorable(vehicle_id: str, scope: Scope) -> None:
    if unstorable_path(vehicle_id) is not None:
        raise InvalidInputError(
            "validation_error",
            "vehicle_id must not contain U+0000 or an unpaired surrogate",
            field="vehicle_id",
        )
    query = bytes(scope.get("query_string", b""))
    if b"%00" in query or b"\x00" in query:
        raise InvalidInputError(
            "validation_error", "query parameters must not contain U+0000", field="query"
        )


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        "payload_too_large", f"Request body is larger than {limit // (1024 * 1024)} MiB"
    )


async def _respond(
    send: Send, status: int, payload: dict[str, Any], request_id: str, extra: dict[str, str]
) -> None:
    content = json_text(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        (b"x-request-id", request_id.encode()),
        *((name.lower().encode(), value.encode("latin-1")) for name, value in extra.items()),
    ]
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content, "more_body": False})
    except trio.BusyResourceError:
        pass  # the client hung up and Hypercorn is closing the socket (see api.app)
