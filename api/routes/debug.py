"""``/debug/actors`` (admin): every live actor and what it holds, and which worker answered."""

from __future__ import annotations

import os

from quart import Quart, Response
from quart_schema import document_response, tag

from api.context import HubServices
from api.guard import require_role
from api.responses import json_response
from hub.contract import responses
from hub.contract.roles import ADMINS


def register(app: Quart, services: HubServices) -> None:
    """Add the actor-state debug endpoint."""

    @tag(["operations"])
    @document_response(responses.ActorList, 200)
    async def debug_actors() -> Response:
        """Every live actor and what it holds (admin).

        Kind, id, mailbox and queue depth, connection state, last heartbeat, restarts,
        subscriptions of every live actor. ``worker`` says which process answered: under
        ``serve --workers N`` each worker holds only the actors of its own connections.
        """
        require_role(services, ADMINS)
        worker = {"id": services.settings.worker_id, "pid": os.getpid()}
        return json_response({"worker": worker, "actors": services.actors.snapshot()})

    app.add_url_rule("/debug/actors", view_func=debug_actors, methods=["GET"])
