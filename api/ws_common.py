"""What every WebSocket endpoint does the same way: find the token, refuse with a close code."""

from __future__ import annotations

import contextlib
import json

import trio
from quart import websocket

from api.errors import ANSWERS, answer_for
from api.request_ids import request_id_from
from hub.contract import ws_events
from hub.errors import ContractError, ForbiddenError, NotAuthenticatedError, UnknownVehicleError
from hub.logs import bind_log_context
from hub.security import Principal, TokenCodec

REFUSED = 1008  # policy violation: a refusal the table gives no close code of its own
AUTH_FAILED = ANSWERS[NotAuthenticatedError].close_code or REFUSED
FORBIDDEN = ANSWERS[ForbiddenError].close_code or REFUSED
UNKNOWN_VEHICLE = ANSWERS[UnknownVehicleError].close_code or REFUSED


def socket_token() -> str:
    """The token of ``?token=`` or of ``Authorization: Bearer …`` ('' if neither)."""
    token = websocket.args.get("token", "")
    if token:
        return token
    scheme, _, value = websocket.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def socket_request_id() -> str:
    """The id of the socket's opening request: the client's ``X-Request-ID`` if sane."""
    request_id = request_id_from(websocket.headers.get("X-Request-ID"))
    bind_log_context(request_id=request_id)
    return request_id


_PEER_GONE = (
    trio.BusyResourceError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    ConnectionError,
)


async def close_socket(code: int, reason: str) -> None:
    """Close the socket with ``code``, unless the peer closed it first.

    When the client closes (say right after reading an ``error`` frame), Hypercorn answers
    its close frame itself; a close of ours sent then was a second sender on the same
    stream (``BusyResourceError``). Then there is nothing left to say, and nothing is sent.
    """
    with contextlib.suppress(*_PEER_GONE):
        await websocket.close(code, reason)


async def refuse(error: ContractError) -> None:
    """Send one ``error`` frame for ``error``, then close with its close code (CONTRACT §6.1).

    The socket must be accepted already. A peer that hangs up meanwhile is not an error.
    """
    with contextlib.suppress(*_PEER_GONE):
        await websocket.send(json.dumps(ws_events.contract_error_frame(error)))
        close_code = answer_for(error).close_code or REFUSED
        await close_socket(close_code, error.error)


async def authenticate_socket(codec: TokenCodec) -> Principal | None:
    """Accept the socket and verify its token; on failure refuse 4001 and return None."""
    await websocket.accept()
    try:
        return codec.verify(socket_token())
    except ContractError:
        await refuse(NotAuthenticatedError("auth_failed", "Invalid or expired token"))
        return None
