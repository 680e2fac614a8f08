"""What every WebSocket endpoint does the same way: find the token, refuse with a close code."""

from __future__ import annotations

import json
import re
import uuid

from quart import websocket

from api.errors import answer_for
from hub.contract import ws_events
from hub.errors import ContractError, NotAuthenticatedError
from hub.logs import bind_log_context
from hub.security import Principal, TokenCodec

REFUSED = 1008  # policy violation: a refusal the table gives no close code of its own
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def socket_token() -> str:
    """The token of ``?token=`` or of ``Authorization: Bearer …`` ('' if neither)."""
    token = websocket.args.get("token", "")
    if token:
        return token
    scheme, _, value = websocket.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def socket_request_id() -> str:
    """The id of the socket's opening request: the client's ``X-Request-ID`` if sane."""
    offered = websocket.headers.get("X-Request-ID", "")
    request_id = offered if _SANE_REQUEST_ID.match(offered) else uuid.uuid4().hex
    bind_log_context(request_id=request_id)
    return request_id


async def refuse(error: ContractError) -> None:
    """Send one ``error`` frame for ``error``, then close with its close code (CONTRACT §6.1).

    The socket must be accepted already.
    """
    await websocket.send(json.dumps(ws_events.contract_error_frame(error)))
    close_code = answer_for(error).close_code or REFUSED
    await websocket.close(close_code, error.error)


async def authenticate_socket(codec: TokenCodec) -> Principal | None:
    """Accept the socket and verify its token; on failure refuse 4001 and return None."""
    await websocket.accept()
    try:
        return codec.verify(socket_token())
    except ContractError:
        await refuse(NotAuthenticatedError("auth_failed", "Invalid or expired token"))
        return None
