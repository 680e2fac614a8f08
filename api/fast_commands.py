"""The command POST, answered in front of Quart (:mod:`api.lean_http`).

``POST /api/v1/vehicle/{id}/commands`` carries the emergency stop, and every scheduler turn
between its arrival and the vehicle's socket is a wait behind every other runnable task.
:class:`CommandRoute` gives the answers of Quart's route (:mod:`api.routes.commands`), in
the same order of checks:

1. a query or path parameter PostgreSQL cannot store (400);
2. the token (401, with ``WWW-Authenticate``) and a staff role (403, audited);
3. ``wait`` true or false (400);
4. ``Content-Type: application/json`` (415), the body within 1 MiB (413) and within the
   body timeout (408);
5. the command (400) and a body ``vehicle_id`` equal to the path's (400);
6. the vehicle's actor: a registered vehicle (404), a new command id (409), the rules of
   ``resume`` (409); then the stop goes out at once, or the command waits for its row.

Unlike Quart's route, a client that hangs up once its body has arrived never keeps its
command from the vehicle: only the wait for the outcome (``?wait=true``) ends with it.
"""

from __future__ import annotations

import re
from functools import partial

from api.context import HubServices
from api.filters import flag
from api.guard import check_role
from api.lean_http import Answer, LeanRequest, LeanRoute
from api.request_body import MAX_BODY
from api.routes.commands import command_reply, sent_command, settled
from hub.contract.roles import STAFF

_RULE = "/api/v1/vehicle/<vehicle_id>/commands"


class CommandRoute(LeanRoute):
    """``POST /api/v1/vehicle/{id}/commands``."""

    path = re.compile(r"^/api/v1/vehicle/(?P<vehicle_id>[^/]+)/commands$")

    def __init__(self, services: HubServices) -> None:
        self._services = services

    def rule(self, found: re.Match[str]) -> str:
        return _RULE

    async def answer(self, request: LeanRequest) -> Answer:
        services = self._services
        request.refuse_unstorable_parameters()
        principal = check_role(request.authenticate(services), STAFF)
        wait = flag("wait", request.query_value("wait")) is not False  # before any send
        raw = await request.json_body(limit=MAX_BODY, seconds=services.settings.body_timeout)
        status = await sent_command(
            services, request.found["vehicle_id"], raw, principal, request.request_id
        )
        if wait:  # the command is out; a client that leaves is not waited for
            status = await request.unless_client_leaves(partial(settled, services, status))
        code, body = command_reply(status)
        return code, body, {}
