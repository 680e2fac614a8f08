"""An in-memory hub for testing the simulator's I/O without a server.

:class:`FakeHub` answers the REST endpoints a vehicle uses through :class:`httpx.MockTransport`,
checking every body with the same wire models and window rules as the real hub;
:class:`FakeSockets` replaces ``trio_websocket.open_websocket_url`` with connections a test
drives frame by frame. Both read time through trio, so tests run on ``MockClock``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import trio
from trio_websocket import CloseReason, ConnectionClosed, HandshakeError

from hub.clock import format_timestamp
from hub.contract.bulk import parse_bulk
from hub.contract.errors import InvalidInputError
from hub.contract.telemetry import TELEMETRY_MODELS
from hub.contract.validation import check_live_timestamp, validate_model
from hub.contract.ws import error_frame, welcome


@dataclass(frozen=True, slots=True)
class Received:
    """One request the fake hub answered with 200: when (trio time), where, what."""

    at: float
    vehicle_id: str
    kind: str
    body: dict[str, Any]


class FakeHub:
    """The REST side; ``forced`` responses (e.g. a 429) are answered first, in order."""

    def __init__(self, clock: Callable[[], datetime], *, token_ttl: int = 86400) -> None:
        self.clock = clock
        self.token_ttl = token_ttl
        self.registered: set[str] = set()
        self.valid_tokens: dict[str, str] = {}
        """access token → vehicle id (``"*admin"`` for the admin)."""
        self.received: list[Received] = []
        self.paths: list[str] = []
        self.refreshes = 0
        self.forced: deque[httpx.Response] = deque()
        self._issued = 0

    def transport(self) -> httpx.MockTransport:
        """The transport to give ``httpx.AsyncClient``."""
        return httpx.MockTransport(self.handle)

    def records(self, kind: str, vehicle_id: str | None = None) -> list[Received]:
        """Accepted requests of ``kind`` (a telemetry kind, or ``bulk``)."""
        return [
            item
            for item in self.received
            if item.kind == kind and (vehicle_id is None or item.vehicle_id == vehicle_id)
        ]

    def expire_tokens(self) -> None:
        """Every access token stops working (refresh tokens still do)."""
        self.valid_tokens = {
            token: owner for token, owner in self.valid_tokens.items() if owner == "*admin"
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request."""
        path = request.url.path
        self.paths.append(path)
        if self.forced:
            return self.forced.popleft()
        body = json.loads(request.content or b"{}")
        parts = path.strip("/").split("/")
        if path == "/api/v1/auth/token":
            owner = "*admin" if body.get("grant_type") == "password" else body["client_id"][4:]
            return self._tokens(owner)
        if path == "/api/v1/auth/refresh":
            self.refreshes += 1
            return self._tokens(body["refresh_token"].split(":", 1)[1])
        if path == "/api/v1/admin/vehicles":
            if body["vehicle_id"] in self.registered:
                return _error(409, "conflict")
            self.registered.add(body["vehicle_id"])
            return self._credentials(body["vehicle_id"], 201)
        if parts[-1] == "rotate-secret":
            return self._credentials(parts[-2], 200)
        vehicle_id, kind = parts[-2], parts[-1]
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.valid_tokens.get(token) != vehicle_id:
            return _error(401, "token_expired")
        try:
            self._check(vehicle_id, kind, request.content, body)
        except InvalidInputError as exc:  # what the contract's models refuse: always a 400
            return httpx.Response(400, json={**exc.fields(), "timestamp": ""})
        self.received.append(Received(trio.current_time(), vehicle_id, kind, body))
        if kind == "bulk":
            count = len(body["messages"])
            return httpx.Response(200, json={"status": "ok", "messages_received": count})
        return httpx.Response(
            200, json={"status": "ok", "received_at": format_timestamp(self.clock())}
        )

    def _check(self, vehicle_id: str, kind: str, raw: bytes, body: dict[str, Any]) -> None:
        if kind == "bulk":
            parse_bulk(
                raw, path_vehicle_id=vehicle_id, now=self.clock(), max_age=timedelta(days=30)
            )
            return
        record = validate_model(TELEMETRY_MODELS[kind], body)  # type: ignore[index]
        check_live_timestamp(record.timestamp, self.clock())

    def _tokens(self, owner: str) -> httpx.Response:
        self._issued += 1
        access = f"tok{self._issued}"
        self.valid_tokens[access] = owner
        return httpx.Response(
            200,
            json={
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.token_ttl,
                "refresh_token": f"rt{self._issued}:{owner}",
                "refresh_expires_in": 2592000,
            },
        )

    def _credentials(self, vehicle_id: str, status: int) -> httpx.Response:
        body = {"vehicle_id": vehicle_id, "client_id": f"veh_{vehicle_id}", "client_secret": "s"}
        return httpx.Response(status, json=body)


def _error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": code, "message": code, "timestamp": ""})


class FakeConnection:
    """One vehicle socket as the hub sees it: push frames in, read what the vehicle sent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.token = parse_qs(urlsplit(url).query).get("token", [""])[0]
        self.closed: CloseReason | None = None
        self._inbound_send, self._inbound = trio.open_memory_channel[str | CloseReason](100)
        self._outbound_send, self._outbound = trio.open_memory_channel[dict[str, Any]](1000)

    def push(self, frame: dict[str, Any]) -> None:
        """Send ``frame`` to the vehicle."""
        self._inbound_send.send_nowait(json.dumps(frame))

    def close_from_hub(self, code: int, reason: str | None = None) -> None:
        """Close the connection from the hub's side with ``code``."""
        self._inbound_send.send_nowait(CloseReason(code, reason))

    async def receive(self) -> dict[str, Any]:
        """The next frame the vehicle sent (blocks until there is one)."""
        return await self._outbound.receive()

    async def get_message(self) -> str:
        item = await self._inbound.receive()
        if isinstance(item, CloseReason):
            self.closed = item
            raise ConnectionClosed(item)
        return item

    async def send_message(self, message: str) -> None:
        if self.closed is not None:
            raise ConnectionClosed(self.closed)
        await trio.lowlevel.checkpoint()
        self._outbound_send.send_nowait(json.loads(message))

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        if self.closed is None:
            self.closed = CloseReason(code, reason)
            self._inbound_send.send_nowait(self.closed)
        await trio.lowlevel.checkpoint()


class FakeSockets:
    """Stands in for ``open_websocket_url``; a bad token gets ``auth_failed`` and 4001."""

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self.connections: list[FakeConnection] = []
        self.refuse = False
        self._connected = trio.Event()

    async def next_connection(self) -> FakeConnection:
        """The next connection a vehicle opens (blocks until it does)."""
        count = len(self.connections)
        while len(self.connections) == count:
            self._connected = trio.Event()
            await self._connected.wait()
        return self.connections[-1]

    @asynccontextmanager
    async def open_websocket_url(self, url: str, **_options: Any) -> AsyncIterator[FakeConnection]:
        """What the vehicle calls to connect."""
        await trio.lowlevel.checkpoint()
        if self.refuse:
            raise HandshakeError
        connection = FakeConnection(url)
        vehicle_id = urlsplit(url).path.rsplit("/", 1)[-1]
        if self.hub.valid_tokens.get(connection.token) == vehicle_id:
            connection.push(welcome(vehicle_id, format_timestamp(self.hub.clock()), 30))
        else:
            connection.push(error_frame("auth_failed", "Invalid or expired token"))
            connection.close_from_hub(4001, "auth_failed")
        self.connections.append(connection)
        self._connected.set()
        try:
            yield connection
        finally:
            if connection.closed is None:
                connection.closed = CloseReason(1006, "dropped")
