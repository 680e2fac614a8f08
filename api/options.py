"""``OPTIONS``: 204 with an ``Allow`` header naming exactly the methods the path serves.

Quart's automatic answer is an empty ``text/html`` 200 whose ``Allow`` comes from every rule
whose pattern matches the path. One rule, ``/api/v1/vehicle/<vehicle_id>/<kind>``, matches
more paths than it serves: its handler answers 404 unless ``kind`` is a history segment, so
``OPTIONS …/location`` would advertise a GET that does not exist. :data:`SERVED_VALUES`
lists what such rules really accept, and a method is allowed only when the rule it routes to
serves the path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from quart import Quart, Response, request
from quart.globals import request_ctx
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter, Rule

from actors.fleet_reads import HISTORY_PATHS

SERVED_VALUES: dict[str, dict[str, frozenset[str]]] = {
    "history": {"kind": frozenset(HISTORY_PATHS)},
}
"""Endpoint → path variable → the values its handler serves (others answer 404)."""

_ALWAYS = ("OPTIONS",)


def served(rule: Rule, values: Mapping[str, object]) -> bool:
    """Whether the rule's handler serves these path values (see :data:`SERVED_VALUES`)."""
    limits = SERVED_VALUES.get(str(rule.endpoint), {})
    return all(values.get(name) in accepted for name, accepted in limits.items())


def allowed_methods(adapter: MapAdapter, path: str, methods: Iterable[str]) -> list[str]:
    """The methods of ``methods`` that route ``path`` to a rule serving it, plus OPTIONS."""
    allowed = set(_ALWAYS)
    for method in methods:
        try:
            rule, values = adapter.match(path, method=method, return_rule=True)
        except HTTPException:
            continue
        if not getattr(rule, "websocket", False) and served(rule, values):
            allowed.add(method)
    if "GET" in allowed:
        allowed.add("HEAD")
    return sorted(allowed)


def options_response(app: Quart) -> Response:
    """The answer to ``OPTIONS`` on the current request's path: 204, ``Allow``, no body."""
    adapter = request_ctx.url_adapter
    assert adapter is not None  # set for every HTTP request that reached routing
    every_method = {method for rule in app.url_map.iter_rules() for method in rule.methods or ()}
    response = Response(b"", status=204)
    del response.headers["Content-Type"]
    response.headers["Allow"] = ", ".join(allowed_methods(adapter, request.path, every_method))
    return response
