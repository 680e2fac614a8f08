"""Vehicles' and people's credentials: login, refresh-token rotation, registration.

Secret hashing runs on worker threads; every database call may raise the storage error
family, which callers turn into 503 through :func:`storage_guard`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from actors import rate_limit
from actors.vehicle.registry import VehicleRegistry
from hub import metrics, security
from hub.clock import utc_now
from hub.errors import ConflictError, UnavailableError, UnknownVehicleError
from hub.logs import current_request_id
from storage.database import (
    Database,
    StorageError,
    StorageUnavailableError,
    UniqueViolationError,
)
from storage.queries import accounts as account_queries
from storage.queries import vehicles as vehicle_queries

logger = logging.getLogger(__name__)


@asynccontextmanager
async def storage_guard() -> AsyncIterator[None]:
    """Turn an unreachable database into the contract's 503."""
    try:
        yield
    except StorageUnavailableError:
        raise UnavailableError() from None


@dataclass(frozen=True, slots=True)
class VehicleCredentials:
    """What a vehicle needs to log in; the secret is shown once and never stored."""

    vehicle_id: str
    client_id: str
    client_secret: str


class AccountService:
    """Logins, token rotation and registration of vehicles and users."""

    def __init__(
        self,
        *,
        database: Database,
        registry: VehicleRegistry,
        codec: security.TokenCodec,
        limiter: rate_limit.Limiter,
        refresh_ttl_seconds: float,
    ) -> None:
        self._database = database
        self._registry = registry
        self._codec = codec
        self._limiter = limiter
        self._refresh_ttl = timedelta(seconds=refresh_ttl_seconds)
        # Disabled through this service: a login that read the row just before the disable
        # must not put the vehicle back into the registry.

    async def security_event(
        self,
        action: str,
        *,
        actor: str | None,
        actor_role: str | None,
        address: str | None,
        details: dict[str, Any],
        repeat_key: str,
    ) -> None:
        """Write a security event (failed login, refused access) to the audit log.

        The same event of the same principal (``action``, ``actor``, ``repeat_key``) within a
        minute is counted on the first one's row (``repeat_count``) instead of a new row, so
        hammering a forbidden route cannot fill the table. Never raises: an unreachable
        database must not turn a 401/403 into a 503.
        """
        try:
            new_row = await account_queries.write_repeatable_audit(
                self._database,
                action=action,
                actor=actor,
                actor_role=actor_role,
                repeat_key=repeat_key,
                outcome="refused",
                details=details,
                request_id=current_request_id(),
                source_address=address,
            )
        except StorageError as exc:
            logger.warning("could not audit %s: %s", action, exc)
            return
        if not new_row:
            metrics.audit_repeats.labels(action).inc()

    async def _login_succeeded(self, client_key: str, address: str) -> None:
        """Only failures count towards the login limit (CONTRACT §2): refund a good login.

        With buckets shared through Redis this awaits it (at most its 250 ms timeout each).
        """
        await rate_limit.refund(self._limiter, "login_client", client_key)
        await rate_limit.refund(self._limiter, "login_address", address)

    async def _check_login_rate(self, client_key: str, address: str) -> None:
        """Take a token of the client's and of the address' bucket; the 429 if either is dry.

        With buckets shared through Redis this awaits it (at most its 250 ms timeout each;
        Redis away lets the attempt through).
        """
        for kind, key in (("login_client", client_key), ("login_address", address)):
            decision = await rate_limit.take(self._limiter, kind, key)
            if not decision.allowed:
                raise decision.refusal()

    async def login_vehicle(
        self, client_id: str, client_secret: str, address: str
    ) -> dict[str, Any]:
        """Tokens for a vehicle's client credentials, or 401 ``invalid_client``."""
        await self._check_login_rate(client_id, address)
        async with storage_guard():
            row = await vehicle_queries.credentials_for_client(self._database, client_id)
        secret_hash = None if row is None else row["secret_hash"]
        if not await security.verify_secret_in_thread(secret_hash, client_secret) or row is None:
            await self.security_event(
                "login_failed",
                actor=client_id,
                actor_role="vehicle",
                address=address,
                details={"grant_type": "client_credentials"},
                repeat_key=f"client_credentials {address}",
            )
            raise security.invalid_client()
        await self._login_succeeded(client_id, address)
        vehicle_id = str(row["vehicle_id"])
        # Read again now, not from the row above: a disable committed meanwhile (here or on
        # another hub) must win, and a vehicle another process registered may report.
        async with storage_guard():
            await self._registry.refresh(vehicle_id)
        tokens = await self._issue(
            subject=vehicle_id,
            role="vehicle",
            vehicle_id=vehicle_id,
            user_id=None,
            family_id=uuid.uuid4(),
        )
        return {**tokens, "vehicle_id": vehicle_id}

    async def login_user(self, username: str, password: str, address: str) -> dict[str, Any]:
        """Tokens for a person's password, or 401 ``invalid_client``."""
        await self._check_login_rate("user:" + username, address)
        async with storage_guard():
            row = await account_queries.user_by_name(self._database, username)
        password_hash = None if row is None else row["password_hash"]
        if not await security.verify_secret_in_thread(password_hash, password) or row is None:
            await self.security_event(
                "login_failed",
                actor=username,
                actor_role=None,
                address=address,
                details={"grant_type": "password"},
                repeat_key=f"password {address}",
            )
            raise security.invalid_client()
        await self._login_succeeded("user:" + username, address)
        tokens = await self._issue(
            subject=username,
            role=str(row["role"]),
            vehicle_id=None,
            user_id=int(row["user_id"]),
            family_id=uuid.uuid4(),
        )
        return {**tokens, "username": username, "role": row["role"]}

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """Rotate a refresh token: new access and refresh tokens, the old one revoked.

        Reusing a revoked token revokes its whole family (a stolen token is then useless to
        both holders) and answers 401 ``invalid_grant``.
        """
        token_hash = security.refresh_token_hash(refresh_token)
        new_token, new_hash = security.new_refresh_token()
        async with storage_guard():
            row = await account_queries.rotate_refresh_token(
                self._database, token_hash=token_hash, replaced_by=new_hash
            )
            if row is None:
                old = await account_queries.refresh_token_row(self._database, token_hash)
                if old is not None and old["revoked_at"] is not None:
                    await account_queries.revoke_family(self._database, old["family_id"])
                raise security.invalid_grant()
        vehicle_id = row["vehicle_id"]
        subject = vehicle_id if row["subject_kind"] == "vehicle" else row["username"]
        tokens = await self._issue(
            subject=str(subject),
            role=str(row["role"]),
            vehicle_id=vehicle_id,
            user_id=row["user_id"],
            family_id=row["family_id"],
            refresh=(new_token, new_hash),
        )
        if vehicle_id is not None:
            tokens["vehicle_id"] = vehicle_id
        else:
            tokens["username"] = row["username"]
            tokens["role"] = row["role"]
        return tokens

    async def _issue(
        self,
        *,
        subject: str,
        role: str,
        vehicle_id: str | None,
        user_id: int | None,
        family_id: uuid.UUID,
        refresh: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        refresh_token, refresh_hash = refresh or security.new_refresh_token()
        issued_at = utc_now()
        async with storage_guard():
            await account_queries.store_refresh_token(
                self._database,
                token_hash=refresh_hash,
                family_id=family_id,
                subject_kind="vehicle" if vehicle_id is not None else "user",
                vehicle_id=vehicle_id,
                user_id=user_id,
                role=role,
                issued_at=issued_at,
                expires_at=issued_at + self._refresh_ttl,
            )
        return {
            "access_token": self._codec.issue(subject=subject, role=role, vehicle_id=vehicle_id),
            "token_type": "Bearer",
            "expires_in": self._codec.ttl_seconds,
            "refresh_token": refresh_token,
            "refresh_expires_in": int(self._refresh_ttl.total_seconds()),
        }

    async def register_vehicle(self, vehicle_id: str, name: str) -> VehicleCredentials:
        """Create a vehicle and its credentials; 409 if the id is taken."""
        client_id, secret, secret_hash = await _new_vehicle_credentials()
        try:
            async with storage_guard():
                await vehicle_queries.create_vehicle(
                    self._database,
                    vehicle_id=vehicle_id,
                    name=name,
                    client_id=client_id,
                    secret_hash=secret_hash,
                )
        except UniqueViolationError:
            async with storage_guard():
                disabled = await vehicle_queries.enabled_flag(self._database, vehicle_id) is False
            message = f"Vehicle {vehicle_id} is already registered"
            if disabled:
                message = (
                    f"Vehicle {vehicle_id} is registered but disabled: restore it with"
                    f" POST /api/v1/admin/vehicles/{vehicle_id}/enable"
                    " (and rotate-secret for new credentials)"
                )
            raise ConflictError(
                "vehicle_exists", message, field="vehicle_id", received_value=vehicle_id
            ) from None
        self._registry.added(vehicle_id)
        return VehicleCredentials(vehicle_id, client_id, secret)

    async def rotate_vehicle_secret(self, vehicle_id: str) -> VehicleCredentials:
        """New credentials for a vehicle; the old ones and its refresh tokens stop working.

        Works for a disabled vehicle too (it stays disabled until enabled).
        """
        client_id, secret, secret_hash = await _new_vehicle_credentials()
        async with storage_guard():
            found = await vehicle_queries.rotate_secret(
                self._database,
                vehicle_id=vehicle_id,
                client_id=client_id,
                secret_hash=secret_hash,
            )
        if not found:
            raise UnknownVehicleError(vehicle_id)
        return VehicleCredentials(vehicle_id, client_id, secret)

    async def disable_vehicle(self, vehicle_id: str) -> None:
        """Refuse the vehicle's reports and logins from now on (its history is kept)."""
        async with storage_guard():
            found = await vehicle_queries.disable_vehicle(self._database, vehicle_id)
        if not found:
            raise UnknownVehicleError(vehicle_id)
        self._registry.disabled(vehicle_id)

    async def enable_vehicle(self, vehicle_id: str) -> bool:
        """Let a disabled vehicle report and log in again; False if it was enabled already.

        Its credentials are those it had (refresh tokens revoked at disable stay revoked, so
        it logs in again with its client secret); UnknownVehicleError if there is none.
        """
        async with storage_guard():
            changed = await vehicle_queries.enable_vehicle(self._database, vehicle_id)
        if changed is None:
            raise UnknownVehicleError(vehicle_id)
        self._registry.added(vehicle_id)
        return changed

    async def create_user(self, username: str, password: str, role: str, email: str | None) -> None:
        """Add a person; 409 if the name or e-mail is taken."""
        password_hash = await security.hash_secret_in_thread(password)
        try:
            async with storage_guard():
                await account_queries.create_user(
                    self._database,
                    username=username,
                    password_hash=password_hash,
                    role=role,
                    email=email,
                )
        except UniqueViolationError:
            raise ConflictError(
                "user_exists",
                f"User {username} or that e-mail already exists",
                field="username",
                received_value=username,
            ) from None

    async def ensure_admin(self, username: str, password: str) -> bool:
        """Create the configured admin if no user has that name; True if created."""
        async with storage_guard():
            if await account_queries.user_exists(self._database, username):
                return False
        await self.create_user(username, password, "admin", None)
        return True


async def _new_vehicle_credentials() -> tuple[str, str, str]:
    """A fresh client id, its secret (shown once) and the secret's hash (stored)."""
    client_id, secret = security.new_client_id(), security.new_client_secret()
    return client_id, secret, await security.hash_secret_in_thread(secret)
