"""What every WebSocket endpoint does the same way: find the token, refuse with a close code,
and turn an unexpected failure into ``internal_error`` (1011)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

import trio

from actors.sockets.connection import NORMAL, PeerGoneError
from api.errors import ANSWERS, answer_for
from api.request_ids import request_id_from
from api.socket_port import SocketPort
from hub.contract import ws_events
from hub.errors import (
    ContractError,
    ForbiddenError,
    InternalError,
    NotAuthenticatedError,
    UnknownVehicleError,
)
from hub.logs import bind_log_context
from hub.security import Principal, TokenCodec

logger = logging.getLogger(__name__)

REFUSED = 1008  # policy violation: a refusal the table gives no close code of its own
AUTH_FAILED = ANSWERS[NotAuthenticatedError].close_code or REFUSED
FORBIDDEN = ANSWERS[ForbiddenError].close_code or REFUSED
UNKNOWN_VEHICLE = ANSWERS[UnknownVehicleError].close_code or REFUSED


def socket_token(port: SocketPort) -> str:
    """The token of ``?token=`` or of ``Authorization: Bearer …`` ('' if neither)."""
    token = port.query_value("token")
    if token:
        return token
    scheme, _, value = (port.header("authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def socket_request_id(port: SocketPort) -> str:
    """The id of the socket's opening request: the client's ``X-Request-ID`` if sane."""
    request_id = request_id_from(port.header("x-request-id"))
    bind_log_context(request_id=request_id)
    return request_id


_PEER_GONE = (
    trio.BusyResourceError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    ConnectionError,
)


async def close_socket(port: SocketPort, code: int, reason: str) -> None:
    """Close the socket with ``code``, unless the peer closed it first.

    When the client closes (say right after reading an ``error`` frame), Hypercorn answers
    its close frame itself; a close of ours sent then was a second sender on the same
    stream (``BusyResourceError``). Then there is nothing left to say, and nothing is sent.
    """
    with contextlib.suppress(*_PEER_GONE):
        await port.close(code, reason)


async def refuse(port: SocketPort, error: ContractError) -> None:
    """Send one ``error`` frame for ``error``, then close with its close code (CONTRACT §6.1).

    The socket must be accepted already. A peer that hangs up meanwhile is not an error.
    """
    with contextlib.suppress(*_PEER_GONE):
        await port.send(json.dumps(ws_events.contract_error_frame(error)))
        close_code = answer_for(error).close_code or REFUSED
        await close_socket(port, close_code, error.error)


async def authenticate_socket(port: SocketPort, codec: TokenCodec) -> Principal | None:
    """Accept the socket and verify its token; on failure refuse 4001 and return None."""
    await port.accept()
    try:
        return codec.verify(socket_token(port))
    except ContractError:
        await refuse(port, NotAuthenticatedError("auth_failed", "Invalid or expired token"))
        return None


SocketHandler = Callable[[SocketPort], Awaitable[None]]


async def serve_socket(port: SocketPort, handler: SocketHandler) -> None:
    """Run ``handler`` on ``port``, then close the socket if the handler left it open.

    A failure the handler did not expect is logged and answered as ``internal_error``: one
    ``error`` frame, then close 1011 (an unaccepted socket is accepted for that). Blocks for
    as long as the handler does; cancellation (server shutdown) passes through.
    """
    try:
        await handler(port)
    except PeerGoneError:
        return
    except Exception:
        logger.exception("unhandled error on a socket")
        with contextlib.suppress(PeerGoneError):
            await port.accept()
            await refuse(port, InternalError())
        return
    await close_socket(port, NORMAL, "")
