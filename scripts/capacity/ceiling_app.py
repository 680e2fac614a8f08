"""The stack ceiling: a no-op Quart-Trio app on Hypercorn's trio worker.

One route, ``POST /api/v1/vehicle/<vehicle_id>/location``, does what the hub does before its
own work: verify the HS256 JWT (issuer and audience checked, :class:`hub.security.TokenCodec`),
check it belongs to the path's vehicle, and validate the body with the same pydantic model
(:class:`hub.contract.telemetry.LocationUpdate`); then it answers ``{"status": "ok"}``. Stepping
it with the same generator shows how much of the hub's latency the stack alone costs.

    BENCH_CEILING_JWT_SECRET=… python -m scripts.capacity.ceiling_app --port 8001

Runs until killed (SIGTERM). Only listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import logging
import os

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from pydantic import ValidationError
from quart import Response, request
from quart_trio import QuartTrio

from hub.contract.telemetry import LocationUpdate
from hub.errors import ContractError
from hub.security import TokenCodec

SECRET_ENV = "BENCH_CEILING_JWT_SECRET"
ISSUER = "tvm-hub"
AUDIENCE = "tvm"
TOKEN_TTL_SECONDS = 24 * 3600.0


def codec_from(secret: str) -> TokenCodec:
    """The codec the ceiling verifies with (and the benchmark issues tokens with)."""
    return TokenCodec(secret, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=TOKEN_TTL_SECONDS)


def _json(body: str, status: int) -> Response:
    return Response(body, status=status, mimetype="application/json")


def create_app(codec: TokenCodec) -> QuartTrio:
    """The ceiling app."""
    app = QuartTrio(__name__)

    @app.post("/api/v1/vehicle/<vehicle_id>/location")
    async def location(vehicle_id: str) -> Response:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return _json('{"error":"missing_token"}', 401)
        try:
            principal = codec.verify(header.removeprefix("Bearer "))
        except ContractError:
            return _json('{"error":"invalid_token"}', 401)
        if principal.vehicle_id != vehicle_id:
            return _json('{"error":"forbidden"}', 403)
        try:
            LocationUpdate.model_validate_json(await request.get_data())
        except ValidationError:
            return _json('{"error":"validation_error"}', 400)
        return _json('{"status":"ok"}', 200)

    @app.get("/health")
    async def health() -> Response:
        return _json('{"status":"ok"}', 200)

    return app


def main() -> None:
    """Serve the ceiling app on 127.0.0.1:``--port`` until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args()
    secret = os.environ.get(SECRET_ENV, "")
    if len(secret) < 32:
        raise SystemExit(f"{SECRET_ENV} must hold a secret of at least 32 characters")
    config = Config()
    config.bind = [f"127.0.0.1:{arguments.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    logging.basicConfig(level=logging.WARNING)
    trio.run(serve, create_app(codec_from(secret)), config)


if __name__ == "__main__":
    main()
