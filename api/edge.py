"""What the hub does at its edge before a request reaches a route: plain-HTTP redirect when
TLS is on (TVM-SEC-001/002) and CORS for the configured origins only (TVM-SEC-005).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlunsplit

from quart import Quart, Response, request

from api.asgi_scope import Scope

ASGIApp = Callable[
    [Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]
]

CORS_METHODS = "GET, POST, PATCH, OPTIONS, DELETE"
CORS_HEADERS = "Authorization, Content-Type, X-Request-ID"
CORS_MAX_AGE = "600"


class RedirectInsecure:
    """ASGI wrapper: plain HTTP answers 308 to the HTTPS port; plain ``ws://`` is refused.

    Hypercorn serves the TLS listener and the plain listener with the same app; the scope's
    scheme tells them apart.
    """

    def __init__(self, app: ASGIApp, *, https_port: int) -> None:
        self._app = app
        self._https_port = https_port

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[..., Awaitable[Any]],
        send: Callable[..., Awaitable[Any]],
    ) -> None:
        if scope["type"] == "http" and scope.get("scheme") == "http":
            await send(
                {
                    "type": "http.response.start",
                    "status": 308,
                    "headers": [
                        (b"location", self._https_url(scope).encode()),
                        (b"content-length", b"0"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] == "websocket" and scope.get("scheme") == "ws":
            await send({"type": "websocket.close", "code": 1008})
            return
        await self._app(scope, receive, send)

    def _https_url(self, scope: Scope) -> str:
        host = ""
        for name, value in scope.get("headers", []):
            if name == b"host":
                host = value.decode("latin-1")
        hostname = host.rsplit(":", 1)[0] if host and not host.endswith("]") else host
        if not hostname:
            hostname = str(scope.get("server", ("localhost", 0))[0])
        netloc = hostname if self._https_port == 443 else f"{hostname}:{self._https_port}"
        path = str(scope.get("root_path", "")) + bytes(scope.get("raw_path", b"/")).decode(
            "latin-1"
        )
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        return str(urlunsplit(("https", netloc, path, query, "")))


CORS_EXPOSED = (
    "X-Request-ID, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)


def cors_headers(origin: str | None, method: str, allowed: frozenset[str]) -> dict[str, str]:
    """The CORS headers for a request from ``origin`` (none for an origin not allowed)."""
    if origin is None or origin not in allowed:
        return {}
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    if method == "OPTIONS":
        headers["Access-Control-Allow-Methods"] = CORS_METHODS
        headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    else:
        headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
    return headers


def install_cors(app: Quart, origins: Iterable[str]) -> None:
    """Answer CORS only for ``origins``; other origins get no CORS headers (browsers block)."""
    allowed = frozenset(origins)
    if not allowed:
        return

    async def add_cors_headers(response: Response) -> Response:
        for name, value in cors_headers(
            request.headers.get("Origin"), request.method, allowed
        ).items():
            response.headers[name] = value
        return response

    app.after_request(add_cors_headers)
