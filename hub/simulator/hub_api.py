"""The hub's REST endpoints as a vehicle uses them (and an admin, to register the vehicles).

Request bodies are built with the wire models of :mod:`hub.contract`; answers are read liberally
(a field the hub adds does not break a vehicle). Every call blocks until the hub answers; a
429 (or 503) is waited out for its ``Retry-After`` with :func:`trio.sleep` and sent again, so
the waits run on trio's clock. Transport errors (:class:`httpx.TransportError`) reach the
caller, which decides whether to keep the data for later. Cancellation abandons the request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from hub.contract.admin import VehicleCreate
from hub.contract.auth import RefreshRequest, TokenRequest
from hub.contract.bulk import BulkUpload
from hub.simulator.backlog import BulkBatch
from hub.simulator.reports import Telemetry
from hub.simulator.stats import SimStats

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 60.0
"""Longest single wait for a 429/503, whatever the hub asks (seconds)."""


class SimulatorError(Exception):
    """The simulation cannot go on as asked (bad admin credentials, hub unreachable)."""


class HubRefusedError(SimulatorError):
    """The hub refuses this vehicle for good (unknown, disabled, forbidden, bad secret)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A vehicle's client credentials, as registration or secret rotation returns them."""

    vehicle_id: str
    client_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class Tokens:
    """An access token (``expires_in`` seconds) and the refresh token that renews it."""

    access_token: str
    refresh_token: str
    expires_in: float


def retry_after(response: httpx.Response) -> float:
    """Seconds the hub asks us to wait: ``Retry-After``, else the body's ``retry_after``."""
    header = response.headers.get("Retry-After")
    seconds: Any = header
    if header is None:
        try:
            seconds = response.json().get("retry_after")
        except (ValueError, AttributeError):
            seconds = None
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    return min(max(value, 0.0), MAX_RETRY_AFTER)


def error_code(response: httpx.Response) -> str:
    """The ``error`` of an error body, or ``http_<status>`` if the body has none."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else f"http_{response.status_code}"


def _model_body(model: Any) -> dict[str, Any]:
    body: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return body


class HubApi:
    """REST calls against one hub; ``http`` carries the base URL and the connection pool."""

    def __init__(self, http: httpx.AsyncClient, stats: SimStats) -> None:
        self._http = http
        self._stats = stats

    async def send(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        patience: int | None = 10,
    ) -> httpx.Response:
        """POST ``body``; wait out up to ``patience`` 429/503 answers (None: no limit)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        waited = 0
        while True:
            response = await self._http.post(path, json=body or {}, headers=headers)
            if response.status_code == 429:
                self._stats.rate_limited += 1
            elif response.status_code != 503:
                return response
            if patience is not None and waited >= patience:
                return response
            waited += 1
            await trio.sleep(retry_after(response))

    async def admin_token(self, username: str, password: str) -> str:
        """Log in as a person (password grant); the access token."""
        body = TokenRequest(grant_type="password", username=username, password=password)
        response = await self.send("/api/v1/auth/token", _model_body(body), patience=None)
        if response.status_code != 200:
            raise SimulatorError(f"admin login refused: {error_code(response)}")
        return _tokens(response).access_token

    async def register(self, admin_token: str, vehicle_id: str, name: str) -> Credentials:
        """Register the vehicle, or rotate its secret if it exists; its fresh credentials."""
        body = _model_body(VehicleCreate(vehicle_id=vehicle_id, name=name))
        response = await self.send("/api/v1/admin/vehicles", body, token=admin_token)
        if response.status_code == 409:
            path = f"/api/v1/admin/vehicles/{vehicle_id}/rotate-secret"
            response = await self.send(path, token=admin_token)
        if response.status_code in (401, 403):
            raise SimulatorError(f"registering {vehicle_id}: {error_code(response)}")
        if response.status_code not in (200, 201):
            raise HubRefusedError(f"registering {vehicle_id}: {error_code(response)}")
        data = response.json()
        return Credentials(
            vehicle_id=str(data.get("vehicle_id", vehicle_id)),
            client_id=str(data["client_id"]),
            client_secret=str(data["client_secret"]),
        )

    async def login(self, credentials: Credentials) -> Tokens:
        """Log in with client credentials (waits out the login rate limit, however long)."""
        body = TokenRequest(
            grant_type="client_credentials",
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
        )
        response = await self.send("/api/v1/auth/token", _model_body(body), patience=None)
        if response.status_code != 200:
            raise HubRefusedError(f"login of {credentials.vehicle_id}: {error_code(response)}")
        return _tokens(response)

    async def refresh(self, refresh_token: str) -> Tokens | None:
        """New tokens for a refresh token; None if the hub no longer honours it."""
        body = _model_body(RefreshRequest(refresh_token=refresh_token))
        response = await self.send("/api/v1/auth/refresh", body)
        if response.status_code == 200:
            self._stats.token_refreshes += 1
            return _tokens(response)
        if response.status_code in (400, 401):
            return None
        raise httpx.HTTPStatusError(
            f"refresh answered {response.status_code}", request=response.request, response=response
        )

    async def post_telemetry(
        self, token: str, vehicle_id: str, record: Telemetry
    ) -> httpx.Response:
        """POST one record to ``/api/v1/vehicle/{id}/{kind}`` (a 429 is waited out)."""
        self._stats.telemetry_sent += 1
        path = f"/api/v1/vehicle/{vehicle_id}/{record.kind}"
        response = await self.send(path, record.body, token=token)
        if response.status_code == 200:
            self._stats.telemetry_acked += 1
        return response

    async def post_bulk(self, token: str, vehicle_id: str, batch: BulkBatch) -> httpx.Response:
        """POST one bulk upload (checked against the wire model first)."""
        BulkUpload.model_validate(batch.body)
        path = f"/api/v1/vehicle/{vehicle_id}/bulk"
        response = await self.send(path, batch.body, token=token)
        if response.status_code == 200:
            self._stats.bulk_uploads += 1
            self._stats.bulk_messages += batch.size
        return response


def _tokens(response: httpx.Response) -> Tokens:
    data = response.json()
    return Tokens(
        access_token=str(data["access_token"]),
        refresh_token=str(data["refresh_token"]),
        expires_in=float(data.get("expires_in", 3600)),
    )
