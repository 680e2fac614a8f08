"""The Quart-Trio application: routes, request ids, JSON errors and offline API docs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import swagger_ui_bundle
import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from quart import Quart, Response, g, request, send_from_directory
from quart.asgi import ASGIHTTPConnection
from quart.typing import ResponseTypes
from quart.wrappers import Request
from quart_schema import QuartSchema, hide
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection

from api import asyncapi, openapi, ws_fleet, ws_vehicle
from api.context import HubServices
from api.edge import install_cors
from api.errors import install_error_handlers
from api.options import options_response
from api.request_body import MAX_BULK_BODY, settle_unread_body
from api.request_ids import request_id_from
from api.routes import (
    admin,
    alerts,
    auth,
    commands,
    debug,
    health,
    metrics_route,
    operations_reads,
    reads,
    telemetry,
)
from hub import metrics
from hub.contract.text import refuse_unstorable_parameters
from hub.logs import bind_log_context

_SWAGGER_ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
_DOC_ASSETS = "/docs/assets"


class _HTTPConnection(TrioASGIHTTPConnection):
    """Quart-Trio's HTTP connection, without two races at the end of an answer.

    Hypercorn reports ``http.disconnect`` to the app while the app is still sending the last
    part of its answer (that is how it recycles a keep-alive connection); Quart-Trio then
    cancelled the request, and that cancellation kept Hypercorn from arming the connection's
    keep-alive timer. Idle connections then never closed, and SIGTERM waited the whole
    graceful timeout for every idle client. A disconnect once the answer is being sent no
    longer cancels it; before that, it still cancels the handler as it should.

    After a disconnect the answer stops being sent: once the client has gone, Hypercorn
    closes the socket (``send_eof`` in its TCP server, outside the lock its own sends take),
    and a part of the answer sent then was a second sender on the same stream — trio's
    ``BusyResourceError`` in the log of every client that hung up after the headers (a slow
    body's 408 read, then closed). The one sender left is Hypercorn's close.
    """

    _answering = False
    _peer_gone = False

    async def handle_messages(  # type: ignore[override]
        self, nursery: trio.Nursery, request: Request, receive: ASGIReceiveCallable
    ) -> None:
        await ASGIHTTPConnection.handle_messages(self, request, receive)
        self._peer_gone = True
        if not self._answering:
            nursery.cancel_scope.cancel()

    async def _send_response(self, send: ASGISendCallable, response: ResponseTypes) -> None:
        self._answering = True

        async def send_while_connected(message: Any) -> None:
            if self._peer_gone:
                return
            try:
                await send(message)
            except trio.BusyResourceError:
                # The client hung up while this part was on its way: Hypercorn is closing
                # the socket, and nothing more of this answer can reach anyone.
                self._peer_gone = True

        await super()._send_response(send_while_connected, response)


class _HubApp(QuartTrio):
    """QuartTrio with the connection class above and exact ``OPTIONS`` answers."""

    asgi_http_class = _HTTPConnection

    async def make_default_options_response(self) -> Response:
        """204 with the path's real methods in ``Allow`` (:mod:`api.options`)."""
        return options_response(self)


def create_app(services: HubServices) -> Quart:
    """Build the app around the hub's services (no I/O happens here)."""
    app = _HubApp("tvm_hub")
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BULK_BODY,
        BODY_TIMEOUT=services.settings.body_timeout,
        PROVIDE_AUTOMATIC_OPTIONS=True,
        QUART_SCHEMA_SWAGGER_JS_URL=f"{_DOC_ASSETS}/swagger-ui-bundle.js",
        QUART_SCHEMA_SWAGGER_CSS_URL=f"{_DOC_ASSETS}/swagger-ui.css",
    )
    QuartSchema(
        app,
        info={
            "title": openapi.TITLE,
            "version": openapi.VERSION,
            "description": openapi.DESCRIPTION,
        },
        tags=openapi.TAGS,
        openapi_path=openapi.OPENAPI_PATH,
        swagger_ui_path=openapi.DOCS_PATH,
        redoc_ui_path=None,
        scalar_ui_path=None,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer", "bearer_format": "JWT"}},
        security=[{"bearer": []}],
        openapi_provider_class=openapi.HubOpenAPIProvider,
    )
    app.before_request(_assign_request_id)
    app.before_request(_refuse_unstorable_parameters)
    app.after_request(_send_request_id)
    app.after_request(settle_unread_body)
    install_error_handlers(app)
    install_cors(app, services.settings.cors_origins)
    for area in (
        auth,
        telemetry,
        reads,
        operations_reads,
        commands,
        alerts,
        admin,
        health,
        debug,
        metrics_route,
        ws_vehicle,
        ws_fleet,
        asyncapi,
    ):
        area.register(app, services)

    @hide
    async def doc_asset(filename: str) -> Response:
        return await send_from_directory(_SWAGGER_ASSETS, filename)

    app.add_url_rule(f"{_DOC_ASSETS}/<path:filename>", view_func=doc_asset, methods=["GET"])
    app.extensions["tvm_services"] = services
    return app


async def _assign_request_id() -> None:
    g.request_id = request_id_from(request.headers.get("X-Request-ID"))
    g.started_at = trio.current_time()
    bind_log_context(request_id=g.request_id)


async def _refuse_unstorable_parameters() -> None:
    """A query or path parameter with text PostgreSQL cannot store (U+0000, a lone surrogate)
    is refused with 400 ``validation_error`` naming it, before any handler runs."""
    refuse_unstorable_parameters(
        [*request.args.items(multi=True), *(request.view_args or {}).items()]
    )


async def _send_request_id(response: Response) -> Response:
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    rule = request.url_rule
    route = rule.rule if rule is not None else "unmatched"
    status = str(response.status_code)
    metrics.request_count.labels(request.method, route, status).inc()
    started = g.get("started_at")
    if started is not None:
        metrics.request_duration.labels(route, status).observe(trio.current_time() - started)
    return response
