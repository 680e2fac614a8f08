"""Health endpoints for load balancers and orchestrators (CONTRACT §9)."""

from __future__ import annotations

from quart import Quart, Response
from quart_schema import document_response, tag

from api.context import HubServices
from api.responses import json_response
from hub.contract import responses


def register(app: Quart, services: HubServices) -> None:
    """Add ``/health``, ``/health/live`` and ``/health/ready``."""

    @tag(["operations"])
    @document_response(responses.Health, 200)
    @document_response(responses.Health, 503)
    async def health() -> Response:
        """Component status: 200 ok, 503 down when the database is unreachable."""
        status, body = await services.health.report()
        return json_response(body, status=status)

    @tag(["operations"])
    async def live() -> Response:
        """200 while the process serves requests at all."""
        return json_response({"status": "ok"})

    @tag(["operations"])
    async def ready() -> Response:
        """200 when requests can be served (database reachable, not shutting down), else 503."""
        database = await services.health.database_status()
        ready = database["status"] == "ok" and services.accepting
        return json_response(
            {"status": "ok" if ready else "down", "database": database["status"]},
            status=200 if ready else 503,
        )

    app.add_url_rule("/health", view_func=health, methods=["GET"])
    app.add_url_rule("/health/live", view_func=live, methods=["GET"])
    app.add_url_rule("/health/ready", view_func=ready, methods=["GET"])
