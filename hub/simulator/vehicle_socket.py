"""A vehicle's WebSocket to the hub (CONTRACT §6.1): commands in, acks and pongs out.

:class:`VehicleSocket` holds ``/ws/v1/vehicle/{id}?token=…`` open with trio-websocket,
answers ``ping`` with ``pong``, hands each command to its handler and sends the ack, and
reconnects with jittered exponential backoff when the connection drops. Close codes 4001
(auth failed), 4004 (unknown vehicle) and 4005 (forbidden) end it with
:class:`~hub.simulator.hub_api.HubRefusedError`: retrying cannot help.
"""

from __future__ import annotations

import json
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from hub.clock import now_timestamp
from hub.contract.commands import COMMAND_MODELS
from hub.contract.ws import pong
from hub.simulator.hub_api import HubRefusedError
from hub.simulator.stats import SimStats

log = logging.getLogger(__name__)

STOP_CODES = {4001: "auth_failed", 4004: "unknown_vehicle", 4005: "forbidden"}
"""Close codes after which a vehicle does not reconnect."""
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_SECONDS = 30.0
"""A connection that lasted this long resets the backoff."""
CONNECT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0

CommandHandler = Callable[[dict[str, Any]], dict[str, Any] | None]
"""Takes a command frame, returns the ack frame to send (None: nothing to answer)."""


def socket_url(base_url: str, vehicle_id: str, token: str) -> str:
    """``ws(s)://host/ws/v1/vehicle/{id}?token=…`` for an ``http(s)://host`` hub URL."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + f"/ws/v1/vehicle/{quote(vehicle_id)}"
    return urlunsplit((scheme, parts.netloc, path, f"token={quote(token, safe='')}", ""))


class VehicleSocket:
    """The reconnecting socket; :meth:`run` blocks until :meth:`close` or a stop code."""

    def __init__(
        self,
        base_url: str,
        vehicle_id: str,
        *,
        token: Callable[[], Awaitable[str]],
        on_command: CommandHandler,
        stats: SimStats,
        rng: random.Random,
        backoff_first: float = BACKOFF_FIRST,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.connected = False
        self.last_close_code: int | None = None
        self._base_url = base_url
        self._token = token
        self._on_command = on_command
        self._stats = stats
        self._rng = rng
        self._backoff_first = backoff_first
        self._acks: deque[dict[str, Any]] = deque()
        self._acks_waiting = trio.Event()
        self._online = trio.Event()
        self._online.set()
        self._session_scope: trio.CancelScope | None = None
        self._connection: WebSocketConnection | None = None
        self._closing = False

    def queue_ack(self, frame: dict[str, Any]) -> None:
        """Send ``frame`` as soon as a connection is up (kept across reconnects, in order)."""
        self._acks.append(frame)
        self._acks_waiting.set()

    @property
    def pending_acks(self) -> int:
        """Acks not yet sent."""
        return len(self._acks)

    def go_offline(self) -> None:
        """Drop the connection as a lost link would (no close frame) and stay away."""
        self._online = trio.Event()
        if self._session_scope is not None:
            self._session_scope.cancel()

    def go_online(self) -> None:
        """Allow reconnecting."""
        self._online.set()

    async def close(self) -> None:
        """Close with 1000 (waits at most ``CLOSE_TIMEOUT``) and do not reconnect."""
        self._closing = True
        if self._connection is not None:
            with trio.move_on_after(CLOSE_TIMEOUT):
                await self._connection.aclose(1000, "simulation over")
        if self._session_scope is not None:
            self._session_scope.cancel()

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; returns after :meth:`close`."""
        backoff = self._backoff_first
        while not self._closing:
            await self._online.wait()
            started = trio.current_time()
            code: int | None = None
            with trio.CancelScope() as scope:
                self._session_scope = scope
                try:
                    code = await self._session()
                except (HandshakeError, OSError) as exc:
                    log.debug("%s: socket failed: %r", self.vehicle_id, exc)
            self._session_scope = None
            self.last_close_code = code
            if self._closing:
                return
            if code in STOP_CODES:
                raise HubRefusedError(f"socket closed {code} ({STOP_CODES[code]})")
            if scope.cancelled_caught:
                continue  # went offline on purpose; reconnect once back online
            if trio.current_time() - started >= STABLE_SECONDS:
                backoff = self._backoff_first
            await trio.sleep(backoff * self._rng.uniform(0.8, 1.2))
            backoff = min(backoff * 2.0, BACKOFF_MAX)

    async def _session(self) -> int | None:
        """One connection, until it closes; returns the close code."""
        url = socket_url(self._base_url, self.vehicle_id, await self._token())
        code: int | None = None
        async with open_websocket_url(
            url, connect_timeout=CONNECT_TIMEOUT, disconnect_timeout=CLOSE_TIMEOUT
        ) as connection:
            self._connection = connection
            self.connected = True
            self._stats.socket_connects += 1
            try:
                async with trio.open_nursery() as session:
                    session.start_soon(self._send_acks, connection)
                    code = await self._serve(connection)
                    session.cancel_scope.cancel()
            finally:
                self._connection = None
                self.connected = False
        return code

    async def _serve(self, connection: WebSocketConnection) -> int | None:
        """Answer frames until the connection closes; the close code."""
        try:
            while True:
                await self._on_message(connection, await connection.get_message())
        except ConnectionClosed as exc:
            return None if exc.reason is None else exc.reason.code

    async def _on_message(self, connection: WebSocketConnection, message: str | bytes) -> None:
        try:
            frame = json.loads(message)
        except ValueError:
            log.warning("%s: not JSON from the hub: %r", self.vehicle_id, message[:200])
            return
        if not isinstance(frame, dict):
            return
        kind = frame.get("type")
        if kind == "ping":
            await connection.send_message(json.dumps(pong(now_timestamp())))
        elif kind == "error":
            log.warning("%s: hub error %s: %s", self.vehicle_id, frame.get("code"), frame)
        elif kind in COMMAND_MODELS:
            self._stats.commands_received += 1
            ack = self._on_command(frame)
            if ack is not None:
                self.queue_ack(ack)
        # welcome, pong, telemetry_ack and anything newer need no answer.

    async def _send_acks(self, connection: WebSocketConnection) -> None:
        """Send queued acks in order; an ack leaves the queue only once sent."""
        try:
            while True:
                while self._acks:
                    await connection.send_message(json.dumps(self._acks[0]))
                    self._acks.popleft()
                    self._stats.commands_acked += 1
                self._acks_waiting = trio.Event()
                await self._acks_waiting.wait()
        except ConnectionClosed:
            return
