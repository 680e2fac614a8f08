"""Health endpoints for load balancers and orchestrators (CONTRACT §9)."""

from __future__ import annotations

from quart import Quart, Response
from quart_schema import document_response, security_scheme, tag

from api.context import HubServices
from api.responses import json_response
from hub.contract import responses


def register(app: Quart, services: HubServices) -> None:
    """Add ``/health``, ``/health/live`` and ``/health/ready``."""

    @tag(["operations"])
    @security_scheme([])
    @document_response(responses.Health, 200)
    @document_response(responses.Health, 503)
    async def health() -> Response:
        """Component status: 200 ok, 503 down when the database is unreachable.

        `degraded` (still 200) when an optional part is away: the read replica
        (`DATABASE_READ_URL`; its reads are then served by the primary,
        `components.database_replica`) or Redis (`REDIS_URL`; critical alerts are then not
        published there, `components.redis`). No token needed.
        """
        status, body = await services.health.report()
        return json_response(body, status=status)

    @tag(["operations"])
    @security_scheme([])
    @document_response(responses.Liveness, 200)
    async def live() -> Response:
        """200 while the process serves requests at all.

        For an orchestrator's liveness probe: it checks nothing else. No token needed.
        """
        return json_response({"status": "ok"})

    @tag(["operations"])
    @security_scheme([])
    @document_response(responses.Readiness, 200)
    @document_response(responses.Readiness, 503)
    async def ready() -> Response:
        """200 when requests can be served (database reachable, not shutting down), else 503.

        For an orchestrator's readiness probe or a load balancer. No token needed.
        """
        database = await services.health.database_status()
        ready = database["status"] == "ok" and services.accepting
        return json_response(
            {"status": "ok" if ready else "down", "database": database["status"]},
            status=200 if ready else 503,
        )

    app.add_url_rule("/health", view_func=health, methods=["GET"])
    app.add_url_rule("/health/live", view_func=live, methods=["GET"])
    app.add_url_rule("/health/ready", view_func=ready, methods=["GET"])
