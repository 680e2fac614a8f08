"""The WebSocket close codes the hub uses, and what each means to the peer (CONTRACT §6.1).

The numbers come from the modules that close sockets, so this table cannot drift from them;
1009 is Hypercorn's own close for a message over ``TVM_WEBSOCKET_MAX_MESSAGE_BYTES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.session.actor import INTERNAL_ERROR
from actors.sockets.connection import FLOODING, HEARTBEAT_TIMEOUT, INVALID_MESSAGE, NORMAL
from actors.sockets.outbound import OVERLOADED
from actors.vehicle.actor import GOING_AWAY
from api.ws_common import AUTH_FAILED, FORBIDDEN, UNKNOWN_VEHICLE

MESSAGE_TOO_BIG = 1009
REPLACED = 4009


@dataclass(frozen=True, slots=True)
class CloseCode:
    """One close code: its number, the reason text sent with it, and what the peer should do."""

    code: int
    reason: str
    meaning: str


CLOSE_CODES: tuple[CloseCode, ...] = (
    CloseCode(NORMAL, "normal", "Normal close (the peer closed, or the session ended)."),
    CloseCode(
        GOING_AWAY,
        "server going away",
        "The hub is shutting down or the vehicle's actor stopped; reconnect with backoff.",
    ),
    CloseCode(
        MESSAGE_TOO_BIG,
        "message too big",
        "A frame was larger than the hub accepts (1 MiB by default); not reconnect-worthy "
        "until the frame is smaller.",
    ),
    CloseCode(
        INTERNAL_ERROR,
        "internal_error",
        "The hub could not serve this session (its actor failed); reconnect.",
    ),
    CloseCode(
        OVERLOADED,
        "peer is not reading",
        "The peer stopped reading: too many frames were waiting for it (1 000 for a vehicle, "
        "10 000 undroppable ones for a frontend). Reconnect and read faster.",
    ),
    CloseCode(
        AUTH_FAILED,
        "auth_failed",
        "Missing, invalid or expired token (after an `error` frame `auth_failed`). Log in "
        "again, then reconnect.",
    ),
    CloseCode(
        INVALID_MESSAGE,
        "invalid_message",
        "Three consecutive frames that were not messages of this socket (not JSON, not an "
        "object, missing or unknown `type`); each got an `error` frame first.",
    ),
    CloseCode(
        FLOODING,
        "rate_limit",
        "More than 50 frames in each of 5 consecutive seconds.",
    ),
    CloseCode(
        UNKNOWN_VEHICLE,
        "unknown_vehicle",
        "The path's vehicle is not registered or is disabled (after an `error` frame).",
    ),
    CloseCode(
        FORBIDDEN,
        "forbidden",
        "The token belongs to another vehicle, or a vehicle token opened the fleet socket "
        "(after an `error` frame `forbidden`).",
    ),
    CloseCode(
        HEARTBEAT_TIMEOUT,
        "heartbeat_timeout",
        "Nothing arrived within 10 s of a hub `ping`, or for 60 s at all; reconnect.",
    ),
    CloseCode(
        REPLACED,
        "replaced",
        "A newer connection for the same vehicle took over; do not reconnect this one.",
    ),
)
"""Every close code, in numeric order."""


def close_code_table() -> str:
    """The close codes as a Markdown table."""
    rows = ["| code | reason | meaning |", "|---|---|---|"]
    rows += [f"| {close.code} | `{close.reason}` | {close.meaning} |" for close in CLOSE_CODES]
    return "\n".join(rows)
