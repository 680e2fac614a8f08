"""The vehicle and fleet sockets served in front of Quart.

Quart's socket machinery costs every connection two more tasks, a message channel between
them, a request and app context and a copy of the headers, and every inbound frame one more
task switch: at 10,000 held vehicle sockets that was about a tenth of the hub's memory
(docs/performance.md). :class:`LeanSockets` is an ASGI app that serves
``/ws/v1/vehicle/{vehicle_id}``, its alias ``/ws/vehicle/{vehicle_id}`` and ``/ws/v1/fleet``
itself, with the same handlers Quart's routes run (:func:`api.ws_vehicle.vehicle_socket`,
:func:`api.ws_fleet.fleet_socket`) on an :class:`~api.socket_port.AsgiSocket`; any other path
goes to Quart, which answers it as before. The routes stay registered in Quart, so
``TVM_FAST_PATHS=false`` serves them there.
"""

from __future__ import annotations

import re
from functools import partial

from api.asgi_scope import ASGIApp, Receive, Scope, Send
from api.context import HubServices
from api.socket_port import AsgiSocket
from api.ws_common import SocketHandler, serve_socket
from api.ws_fleet import FLEET_PATH, fleet_socket
from api.ws_vehicle import vehicle_socket

VEHICLE_PATH = re.compile(r"/ws(?:/v1)?/vehicle/(?P<vehicle_id>[^/]+)")
"""The vehicle socket and its alias, as Quart's ``<vehicle_id>`` matches them."""


class LeanSockets:
    """ASGI app: the hub's sockets here, every other request to ``app`` (Quart)."""

    def __init__(self, app: ASGIApp, services: HubServices) -> None:
        self._app = app
        self._services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._handler(scope) if scope["type"] == "websocket" else None
        if handler is None:
            await self._app(scope, receive, send)
            return
        await serve_socket(AsgiSocket(scope, receive, send), handler)

    def _handler(self, scope: Scope) -> SocketHandler | None:
        path: str = scope["path"]
        if path == FLEET_PATH:
            return partial(fleet_socket, self._services)
        found = VEHICLE_PATH.fullmatch(path)
        if found is None:
            return None
        return partial(vehicle_socket, self._services, vehicle_id=found["vehicle_id"])
