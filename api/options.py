"""``OPTIONS``: 204 with an ``Allow`` header naming exactly the methods the path serves.

Quart's automatic answer is an empty ``text/html`` 200. This one asks the URL map which
methods route the path to an HTTP rule (the history rule only matches its five kinds, so
``OPTIONS …/location`` does not advertise a GET that does not exist).
"""

from __future__ import annotations

from collections.abc import Iterable

from quart import Quart, Response, request
from quart.globals import request_ctx
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter

_ALWAYS = ("OPTIONS",)


def allowed_methods(adapter: MapAdapter, path: str, methods: Iterable[str]) -> list[str]:
    """The methods of ``methods`` that route ``path`` to a rule serving it, plus OPTIONS."""
    allowed = set(_ALWAYS)
    for method in methods:
        try:
            rule, _ = adapter.match(path, method=method, return_rule=True)
        except HTTPException:
            continue
        if not getattr(rule, "websocket", False):
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
