"""``GET /asyncapi.json``: the WebSocket protocol, for people and code generators (no token)."""

from __future__ import annotations

from typing import Any

from quart import Quart, Response, request
from quart_schema import hide

from api.asyncapi.document import build_document, with_server
from api.context import HubServices
from api.openapi.examples import with_live_examples
from api.openapi.info import ASYNCAPI_PATH
from api.responses import json_response
from hub.clock import utc_now


def register(app: Quart, services: HubServices) -> None:
    """Serve the AsyncAPI document, built on first request from the socket policy in force."""
    built: list[dict[str, Any]] = []

    @hide
    async def asyncapi_document() -> Response:
        if not built:
            built.append(build_document(services.socket_policy))
        served = with_server(built[0], request.host, secure=request.scheme == "https")
        return json_response(with_live_examples(served, utc_now()))

    app.add_url_rule(ASYNCAPI_PATH, view_func=asyncapi_document, methods=["GET"])
