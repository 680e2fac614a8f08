"""Routes answered in front of Quart: the same rules, a shorter way to them.

Quart's per-request machinery (request and response objects, hooks, context locals, two
tasks per request and a wait for the body) is most of what a small POST costs, and every
task it adds is one more turn of the scheduler before the request is handled — under load,
each turn waits for every other runnable task. :class:`LeanPaths` is an ASGI app that
answers a few hot routes itself (:class:`LeanRoute`: the live telemetry POSTs, the command
POST) and hands every other request to Quart. Each lean route keeps the answers of its
Quart route: the same checks in the same order, the same bodies, ``X-Request-ID``, CORS
headers, refusal logs, audit of refused access (403) and request metrics. The routes stay
registered in Quart too, so the OpenAPI document describes them, and ``TVM_FAST_PATHS=false``
sends everything through Quart.

A request body that a refusal did not need is still read (up to its limit, for up to
``UNREAD_BODY_WAIT`` seconds), so the client sees the answer instead of a reset; a body too
large or too slow gets ``Connection: close``. A client that leaves before its body is whole
gets no answer; a route that waits long once the body is in (a command's outcome) stops
waiting when the client leaves (:meth:`LeanRequest.unless_client_leaves`).
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property
from typing import Any, TypeVar

import trio

from api.asgi_scope import ASGIApp, Receive, Scope, Send, header_map, query_pairs
from api.context import HubServices
from api.edge import cors_headers
from api.errors import (
    RequestTimeoutError,
    answer_for,
    error_body,
    error_headers,
)
from api.guard import caller_of
from api.refusal_log import log_failure, log_refusal
from api.request_body import MAX_BULK_BODY, UNREAD_BODY_WAIT, require_json, too_large
from api.request_ids import request_id_from
from api.responses import json_text
from hub import metrics
from hub.clock import now_timestamp
from hub.contract.text import refuse_unstorable_parameters
from hub.errors import (
    ContractError,
    ForbiddenError,
    InternalError,
)
from hub.logs import log_context
from hub.security import Principal

logger = logging.getLogger(__name__)

T = TypeVar("T")
Answer = tuple[int, dict[str, Any], dict[str, str]]
"""A lean route's answer: status, JSON body and extra headers."""


class ClientGone(Exception):
    """The client disconnected before its request was whole: nothing to answer."""


class RequestBody:
    """The request body, read on demand, bounded in size and time."""

    def __init__(self, receive: Receive, declared: int | None, chunked: bool) -> None:
        self._receive = receive
        self.declared = declared
        self.expected = chunked or (declared is not None and declared > 0)
        self.complete = not self.expected
        self._parts: list[bytes] = []
        self._size = 0

    async def read(self, *, limit: int, seconds: float) -> bytes:
        """The whole body; blocks until it has arrived. PayloadTooLargeError over ``limit``,
        RequestTimeoutError when it does not arrive within ``seconds``, ClientGone if the
        client left."""
        if self.declared is not None and self.declared > limit:
            raise too_large(limit)
        with trio.move_on_after(seconds):
            while not self.complete:
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                self._size += len(chunk)
                if self._size > limit:
                    raise too_large(limit)
                self._parts.append(chunk)
                self.complete = not message.get("more_body", False)
            return b"".join(self._parts)
        raise RequestTimeoutError()

    async def settle(self) -> bool:
        """Before a refusal: let the unread rest of the body arrive (True), or give up on it
        (False: too large, too slow or gone — the connection is then closed). Blocks up to
        ``UNREAD_BODY_WAIT`` seconds."""
        if self.complete:
            return True
        try:
            await self.read(limit=MAX_BULK_BODY, seconds=UNREAD_BODY_WAIT)
        except (ContractError, ClientGone):
            return False
        return True


class LeanRequest:
    """One request to a lean route: its path match, headers, query and body."""

    def __init__(self, scope: Scope, receive: Receive, found: re.Match[str]) -> None:
        self.scope = scope
        self.found = found
        self.headers = header_map(scope["headers"])
        self.request_id = request_id_from(self.headers.get("x-request-id"))
        self.body = RequestBody(
            receive,
            _content_length(self.headers.get("content-length")),
            "chunked" in self.headers.get("transfer-encoding", "").lower(),
        )
        self.principal: Principal | None = None
        self._receive = receive

    @cached_property
    def query(self) -> list[tuple[str, str]]:
        """The query parameters, decoded as Quart (Werkzeug) decodes them (parsed once)."""
        return query_pairs(self.scope)

    def query_value(self, name: str) -> str | None:
        """The first value of the query parameter ``name`` (None when absent)."""
        return next((value for key, value in self.query if key == name), None)

    def refuse_unstorable_parameters(self) -> None:
        """400 ``validation_error`` for a query or path parameter PostgreSQL cannot store,
        checked as Quart's ``before_request`` hook checks it (the query's first)."""
        refuse_unstorable_parameters([*self.query, *self.found.groupdict().items()])

    def authenticate(self, services: HubServices) -> Principal:
        """The caller of ``Authorization: Bearer …`` (401 on any fault), remembered for the
        refusal log and bound to the log context."""
        principal = caller_of(services, self.headers.get("authorization", ""))
        self.principal = principal
        return principal

    async def json_body(self, *, limit: int, seconds: float) -> bytes:
        """The raw JSON body: 415 unless ``Content-Type: application/json``, 413 over
        ``limit``, 408 when it has not arrived within ``seconds``. Blocks while it arrives."""
        content_type = self.headers.get("content-type")
        require_json((content_type or "").split(";", 1)[0].strip().lower(), content_type)
        return await self.body.read(limit=limit, seconds=seconds)

    async def unless_client_leaves(self, work: Callable[[], Awaitable[T]]) -> T:
        """``work``'s result, once the body has been read; if the client disconnects first,
        ``work`` is cancelled and ClientGone raised. Blocks while ``work`` does."""
        done: list[T] = []
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                while (await self._receive())["type"] != "http.disconnect":
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            done.append(await work())
            nursery.cancel_scope.cancel()
        if not done:
            raise ClientGone
        return done[0]


class LeanRoute(ABC):
    """One POST route answered in front of Quart."""

    path: re.Pattern[str]
    """What ``scope["path"]`` must match."""

    @abstractmethod
    def rule(self, found: re.Match[str]) -> str:
        """The Quart rule of the matched path (the route label of logs and metrics)."""

    @abstractmethod
    async def answer(self, request: LeanRequest) -> Answer:
        """The 2xx answer; raises ContractError for a refusal, ClientGone if the client
        left. Blocks for as long as the route's work does."""


class LeanPaths:
    """ASGI app: the POSTs of ``routes`` here, everything else to ``app`` (Quart)."""

    def __init__(self, app: ASGIApp, services: HubServices, routes: Sequence[LeanRoute]) -> None:
        self._app = app
        self._services = services
        self._routes = tuple(routes)
        self._cors = frozenset(services.settings.cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self._routes:
                found = route.path.match(scope["path"])
                if found is not None:
                    await self._serve(route, LeanRequest(scope, receive, found), send)
                    return
        await self._app(scope, receive, send)

    async def _serve(self, route: LeanRoute, request: LeanRequest, send: Send) -> None:
        started = trio.current_time()
        rule = route.rule(request.found)
        request_id = request.request_id
        with log_context(request_id=request_id):
            try:
                status, payload, extra = await route.answer(request)
            except ClientGone:
                return
            except ContractError as error:
                status = answer_for(error).status
                await self._refused(error, status, request, rule)
                payload = error_body(error, timestamp=now_timestamp(), request_id=request_id)
                extra = error_headers(error)
                if isinstance(error, RequestTimeoutError) or not await request.body.settle():
                    extra["Connection"] = "close"  # the body is not coming (in time)
            except Exception:
                logger.exception("unhandled error", extra={"request_id": request_id})
                status = 500
                payload = error_body(
                    InternalError(), timestamp=now_timestamp(), request_id=request_id
                )
                extra = {"Connection": "close"} if not request.body.complete else {}
            extra.update(cors_headers(request.headers.get("origin"), "POST", self._cors))
            await _respond(send, status, payload, request_id, extra)
        label = str(status)
        metrics.request_count.labels("POST", rule, label).inc()
        metrics.request_duration.labels(rule, label).observe(trio.current_time() - started)

    async def _refused(
        self, error: ContractError, status: int, request: LeanRequest, rule: str
    ) -> None:
        if status >= 500:
            log_failure(
                status,
                error.error,
                method="POST",
                route=rule,
                request_id=request.request_id,
                cause=error.__cause__ or error.__context__,
            )
            return
        principal = request.principal
        name = None if principal is None else f"{principal.role}:{principal.subject}"
        log_refusal(
            status,
            error.error,
            method="POST",
            route=rule,
            principal=name,
            request_id=request.request_id,
        )
        if isinstance(error, ForbiddenError) and principal is not None:
            client = request.scope.get("client")
            await self._services.accounts.security_event(
                "access_forbidden",
                actor=principal.subject,
                actor_role=principal.role,
                address=None if client is None else str(client[0]),
                details={
                    "method": "POST",
                    "path": request.scope["path"],
                    "route": rule,
                    "message": error.message,
                },
                repeat_key=f"POST {rule}",
            )


def _content_length(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


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
