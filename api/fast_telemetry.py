"""The five live telemetry POSTs, answered in front of Quart (:mod:`api.lean_http`).

``POST /api/v1/vehicle/{id}/{location|status|battery|error|docking}`` is what every vehicle
sends every second. :class:`TelemetryRoute` gives the answers of Quart's telemetry routes, in
the same order of checks:

1. a query or path parameter PostgreSQL cannot store (400);
2. the token (401, with ``WWW-Authenticate``);
3. the path's owner (403, audited);
4. a registered vehicle (404);
5. ``Content-Type: application/json`` (415);
6. the body within 1 MiB (413) and within the body timeout (408);
7. the contract's model (400);
8. the vehicle's actor: rate limit, time window and transitions; then the commit.
"""

from __future__ import annotations

import re

from api.bodies.telemetry import quota_headers, report_body
from api.context import HubServices
from api.guard import check_owner
from api.lean_http import Answer, LeanRequest, LeanRoute
from api.request_body import MAX_BODY
from hub.contract.telemetry import TELEMETRY_MODELS, TelemetryRecord
from hub.contract.validation import parse_model

_MODELS: dict[str, type[TelemetryRecord]] = {
    kind: model for kind, model in TELEMETRY_MODELS.items()
}
_RULES: dict[str, str] = {kind: f"/api/v1/vehicle/<vehicle_id>/{kind}" for kind in _MODELS}


class TelemetryRoute(LeanRoute):
    """``POST /api/v1/vehicle/{id}/{kind}`` for the five live telemetry kinds."""

    path = re.compile(
        r"^/api/v1/vehicle/(?P<vehicle_id>[^/]+)/(?:location|status|battery|error|docking)$"
    )

    def __init__(self, services: HubServices) -> None:
        self._services = services

    def rule(self, found: re.Match[str]) -> str:
        return _RULES[_kind(found)]

    async def answer(self, request: LeanRequest) -> Answer:
        services = self._services
        vehicle_id = request.found["vehicle_id"]
        request.refuse_unstorable_parameters()
        check_owner(request.authenticate(services), vehicle_id)
        services.registry.require(vehicle_id)
        raw = await request.json_body(limit=MAX_BODY, seconds=services.settings.body_timeout)
        record = parse_model(_MODELS[_kind(request.found)], raw)
        answer = await services.vehicles.report(vehicle_id, record, request_id=request.request_id)
        return 200, report_body(answer), quota_headers(answer.quota)


def _kind(found: re.Match[str]) -> str:
    return found.string[found.string.rindex("/") + 1 :]
