"""Secrets: slow salted hashes for passwords and client secrets, JWT access tokens, and
opaque refresh tokens (CONTRACT §2). No I/O; hashing is CPU-heavy, so async callers use the
``*_in_thread`` helpers, which run it on a worker thread and leave the event loop free.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import trio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.contract.roles import ROLES
from hub.errors import CredentialsRefusedError, NotAuthenticatedError

ALGORITHMS = ["HS256"]

_hasher = PasswordHasher()
# argon2 takes 64 MiB and ~50 ms of CPU per hash: a burst of logins must neither exhaust
# memory nor starve the event loop's core, so at most this many hash at once.
_HASHING = trio.CapacityLimiter(2)
# A real hash of a random secret: verifying against it costs the same as a real check,
# so an unknown client id answers in about the same time as a wrong secret.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(32))


def configure_hashing(*, time_cost: int, memory_kib: int, parallelism: int) -> None:
    """Set the argon2id cost of new hashes (at start; hashes already stored keep their own
    parameters and verify as before). The defaults are argon2-cffi's (3, 64 MiB, 4)."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    _DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(32))


def hash_secret(secret: str) -> str:
    """An argon2id hash of a password or client secret (blocks ~50 ms of CPU)."""
    return _hasher.hash(secret)


def verify_secret(secret_hash: str | None, secret: str) -> bool:
    """True if ``secret`` matches; with no hash, spend the same time and say False."""
    try:
        return _hasher.verify(secret_hash or _DUMMY_HASH, secret) and secret_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def hash_secret_in_thread(secret: str) -> str:
    """:func:`hash_secret` on a worker thread (at most two at once); waits for a free slot.

    Cancellation while waiting for a slot is immediate; once hashing, the result is abandoned.
    """
    return await trio.to_thread.run_sync(hash_secret, secret, limiter=_HASHING)


async def verify_secret_in_thread(secret_hash: str | None, secret: str) -> bool:
    """:func:`verify_secret` on a worker thread."""
    return await trio.to_thread.run_sync(verify_secret, secret_hash, secret, limiter=_HASHING)


def new_client_secret() -> str:
    """A fresh vehicle client secret (shown once, stored only as a hash)."""
    return secrets.token_urlsafe(32)


def new_client_id() -> str:
    """A fresh vehicle client id, ``veh_…``."""
    return "veh_" + secrets.token_hex(8)


def new_refresh_token() -> tuple[str, str]:
    """An opaque refresh token and the SHA-256 hash kept in the database."""
    token = secrets.token_urlsafe(48)
    return token, refresh_token_hash(token)


def refresh_token_hash(token: str) -> str:
    """The stored form of a refresh token (a fast hash is right: the token is random)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a vehicle (``vehicle_id`` set) or a person with a role."""

    subject: str
    role: str
    vehicle_id: str | None
    token_id: str

    @property
    def is_vehicle(self) -> bool:
        """True for a vehicle's token."""
        return self.role == "vehicle"


VERIFIED_CACHE_SIZE = 20_000
"""Tokens whose signature and claims were checked, kept so a vehicle's every report does not
pay the full check again (LRU; a token longer than :data:`CACHEABLE_TOKEN_LENGTH` is not kept)."""
CACHEABLE_TOKEN_LENGTH = 2048


class TokenCodec:
    """Issues and verifies access tokens with a pinned algorithm, issuer and audience.

    A token verified once is remembered (bounded LRU, keyed by the whole token text) with its
    expiry: a later :meth:`verify` of the same text answers from memory until the token
    expires, then checks it in full again (and refuses it). The key is the exact text, so a
    token changed by one character is checked in full.
    """

    def __init__(
        self,
        secret: str,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: float,
        cache_size: int = VERIFIED_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = int(ttl_seconds)
        self._kid = hashlib.sha256(secret.encode()).hexdigest()[:8]
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size
        self._clock = clock

    def issue(self, *, subject: str, role: str, vehicle_id: str | None = None) -> str:
        """A signed JWT for ``subject`` with the contract's claims."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "sub": subject,
            "role": role,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "iss": self._issuer,
            "aud": self._audience,
        }
        if vehicle_id is not None:
            claims["vid"] = vehicle_id
        return jwt.encode(claims, self._secret, algorithm="HS256", headers={"kid": self._kid})

    def verify(self, token: str) -> Principal:
        """The caller behind a token, or a 401 ``invalid_token`` / ``token_expired``."""
        known = self._verified.get(token)
        if known is not None:
            principal, expires_at = known
            if self._clock() < expires_at:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires_at = self._verify_in_full(token)
        if len(token) <= CACHEABLE_TOKEN_LENGTH:
            self._verified[token] = (principal, expires_at)
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return principal

    def _verify_in_full(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                # Expiry is checked below on this codec's clock, the one the cache uses.
                options={
                    "require": ["exp", "iat", "sub", "iss", "aud", "jti"],
                    "verify_exp": False,
                },
            )
        except jwt.PyJWTError:
            raise NotAuthenticatedError("invalid_token", "Invalid token") from None
        expires_at = claims.get("exp")
        if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
            raise NotAuthenticatedError("invalid_token", "Invalid token")
        if self._clock() >= expires_at:
            raise NotAuthenticatedError("token_expired", "Token has expired")
        return _principal(claims), float(expires_at)


def _principal(claims: dict[str, Any]) -> Principal:
    role = claims.get("role")
    vehicle_id = claims.get("vid")
    subject = claims.get("sub")
    if role not in ROLES or not isinstance(subject, str):
        raise NotAuthenticatedError("invalid_token", "Invalid token")
    if role == "vehicle" and not isinstance(vehicle_id, str):
        raise NotAuthenticatedError("invalid_token", "Invalid token")
    return Principal(
        subject=subject,
        role=role,
        vehicle_id=vehicle_id if role == "vehicle" else None,
        token_id=str(claims.get("jti")),
    )


def invalid_client() -> CredentialsRefusedError:
    """The OAuth-style 401 for any failed vehicle or person login."""
    return CredentialsRefusedError("invalid_client", "Invalid client credentials")


def invalid_grant() -> CredentialsRefusedError:
    """The OAuth-style 401 for a refresh token that is unknown, expired, revoked or reused."""
    return CredentialsRefusedError("invalid_grant", "Invalid or expired refresh token")
