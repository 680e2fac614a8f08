"""What every WebSocket endpoint does the same way: find the token, refuse with a close code."""

from __future__ import annotations

import json

from quart import websocket

from hub.contract import ws_events
from hub.errors import ContractError
from hub.security import Principal, TokenCodec

AUTH_FAILED = 4001
UNKNOWN_VEHICLE = 4004
FORBIDDEN = 4005


def socket_token() -> str:
    """The token of ``?token=`` or of ``Authorization: Bearer …`` ('' if neither)."""
    token = websocket.args.get("token", "")
    if token:
        return token
    scheme, _, value = websocket.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


async def refuse(code: int, error: str, message: str) -> None:
    """Send one ``error`` frame, then close with ``code`` (the socket is already accepted)."""
    await websocket.send(json.dumps(ws_events.error_frame(error, message)))
    await websocket.close(code, error)


async def authenticate_socket(codec: TokenCodec) -> Principal | None:
    """Accept the socket and verify its token; on failure refuse 4001 and return None."""
    await websocket.accept()
    try:
        return codec.verify(socket_token())
    except ContractError:
        await refuse(AUTH_FAILED, "auth_failed", "Invalid or expired token")
        return None
