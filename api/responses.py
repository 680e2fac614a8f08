"""JSON answers: one serialisation, strict JSON, no content negotiation."""

from __future__ import annotations

import json
from typing import Any

from quart import Response


def json_text(body: Any) -> str:
    """``body`` as compact JSON text; raises ``ValueError`` on NaN or Infinity (never sent)."""
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with ``status`` and extra ``headers``."""
    response = Response(json_text(body), status=status, mimetype="application/json")
    if headers:
        for name, value in headers.items():
            response.headers[name] = value
    return response
