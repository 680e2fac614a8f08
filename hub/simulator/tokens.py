"""A vehicle's credentials and access token (CONTRACT §2): sign in, refresh ahead, renew on 401.

Renewals are serialised (a refresh token is single-use: the hub revokes the whole family if one
is reused), and a renewal already made by another task is not made twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import trio

from hub.simulator.hub_api import Credentials, HubApi, Tokens
from hub.simulator.stats import SimStats

log = logging.getLogger(__name__)
T = TypeVar("T")

REFRESH_AT = 0.8
"""Renew the access token when this fraction of its lifetime has passed."""
SIGN_IN_RETRY_MAX = 30.0
REFRESH_RETRY = 5.0


class TokenKeeper:
    """Holds one vehicle's tokens; every method may block on the hub, none swallows Cancelled."""

    def __init__(self, api: HubApi, vehicle_id: str, stats: SimStats) -> None:
        self.vehicle_id = vehicle_id
        self._api = api
        self._stats = stats
        self._credentials: Credentials | None = None
        self._tokens: Tokens | None = None
        self._renew_at = 0.0
        self._renewing = trio.Lock()

    @property
    def signed_in(self) -> bool:
        """True once the vehicle holds a token."""
        return self._tokens is not None

    @property
    def access_token(self) -> str:
        """The current access token (call after :meth:`sign_in`)."""
        assert self._tokens is not None
        return self._tokens.access_token

    async def sign_in(self, admin_token: str) -> None:
        """Register (or rotate the secret) and log in, retrying while the hub is unreachable.

        Raises :class:`~hub.simulator.hub_api.HubRefusedError` if the hub refuses for good.
        """
        delay = 1.0
        while True:
            try:
                self._credentials = await self._api.register(
                    admin_token, self.vehicle_id, f"Simulated {self.vehicle_id}"
                )
                self._keep(await self._api.login(self._credentials))
                return
            except httpx.TransportError as exc:
                self._stats.http_failures += 1
                log.warning("%s: hub unreachable (%r), retrying", self.vehicle_id, exc)
            await trio.sleep(delay)
            delay = min(delay * 2.0, SIGN_IN_RETRY_MAX)

    async def fresh_token(self) -> str:
        """The access token, renewed first if it is due (before opening a socket with it)."""
        if trio.current_time() >= self._renew_at:
            await self.renew(self.access_token)
        return self.access_token

    async def keep_fresh(self, online: Callable[[], Awaitable[None]]) -> None:
        """Renew the token when it is due, once ``online()`` returns; runs until cancelled."""
        while True:
            await trio.sleep_until(self._renew_at)
            await online()  # no link, no refresh: it is renewed on return
            if trio.current_time() < self._renew_at:
                continue  # renewed meanwhile (a 401, a reconnect)
            try:
                await self.renew(self.access_token)
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                self._stats.http_failures += 1
                log.warning("%s: token refresh failed (%r), retrying", self.vehicle_id, exc)
                await trio.sleep(REFRESH_RETRY)

    async def renew(self, stale_token: str) -> None:
        """Refresh (or log in again); a no-op if ``stale_token`` was renewed meanwhile."""
        async with self._renewing:
            assert self._tokens is not None and self._credentials is not None
            if self._tokens.access_token != stale_token:
                return
            fresh = await self._api.refresh(self._tokens.refresh_token)
            self._keep(fresh or await self._api.login(self._credentials))

    async def post(
        self, post: Callable[[str, str, T], Awaitable[httpx.Response]], payload: T
    ) -> httpx.Response:
        """``post(token, vehicle_id, payload)``; on 401 renew the token and try once more."""
        token = self.access_token
        response = await post(token, self.vehicle_id, payload)
        if response.status_code == 401:
            await self.renew(token)
            response = await post(self.access_token, self.vehicle_id, payload)
        return response

    def _keep(self, tokens: Tokens) -> None:
        self._tokens = tokens
        self._renew_at = trio.current_time() + max(tokens.expires_in * REFRESH_AT, 1.0)
