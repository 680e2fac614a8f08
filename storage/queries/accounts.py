"""Users, refresh tokens and the audit log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from storage.database import Database, Row


async def create_user(
    database: Database, *, username: str, password_hash: str, role: str, email: str | None
) -> None:
    """Add a user; raises UniqueViolationError if the name or e-mail is taken."""
    await database.execute(
        "INSERT INTO users (username, password_hash, role, email) VALUES ($1, $2, $3, $4)",
        username,
        password_hash,
        role,
        email,
    )


async def user_by_name(database: Database, username: str) -> Row | None:
    """An enabled user's id, role and password hash."""
    return await database.fetchrow(
        "SELECT user_id, username, role, password_hash FROM users WHERE username = $1 AND enabled",
        username,
    )


async def user_exists(database: Database, username: str) -> bool:
    """Whether the name is taken (enabled or not)."""
    return bool(await database.fetchval("SELECT 1 FROM users WHERE username = $1", username))


async def store_refresh_token(
    database: Database,
    *,
    token_hash: str,
    family_id: UUID,
    subject_kind: str,
    vehicle_id: str | None,
    user_id: int | None,
    role: str,
    issued_at: datetime,
    expires_at: datetime,
) -> None:
    """Keep a new refresh token (only its hash)."""
    await database.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, subject_kind, vehicle_id, user_id,"
        " role, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        token_hash,
        family_id,
        subject_kind,
        vehicle_id,
        user_id,
        role,
        issued_at,
        expires_at,
    )


async def rotate_refresh_token(
    database: Database, *, token_hash: str, replaced_by: str
) -> Row | None:
    """Revoke a live refresh token, recording its successor; return its row.

    Returns ``None`` if the token is unknown, already revoked, expired, or its subject is
    disabled. The caller tells reuse apart with :func:`refresh_token_row`.
    """
    return await database.fetchrow(
        """
        UPDATE refresh_tokens t SET revoked_at = now(), replaced_by = $2
        WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()
          AND (t.vehicle_id IS NULL OR EXISTS
               (SELECT 1 FROM vehicles v WHERE v.vehicle_id = t.vehicle_id AND v.enabled))
          AND (t.user_id IS NULL OR EXISTS
               (SELECT 1 FROM users u WHERE u.user_id = t.user_id AND u.enabled))
        RETURNING t.family_id, t.subject_kind, t.vehicle_id, t.user_id, t.role,
          (SELECT username FROM users u WHERE u.user_id = t.user_id) AS username
        """,
        token_hash,
        replaced_by,
    )


async def refresh_token_row(database: Database, token_hash: str) -> Row | None:
    """A refresh token's family and revocation time, whatever its state."""
    return await database.fetchrow(
        "SELECT family_id, revoked_at FROM refresh_tokens WHERE token_hash = $1", token_hash
    )


async def revoke_family(database: Database, family_id: UUID) -> None:
    """Revoke every token of a family (on reuse of a revoked one)."""
    await database.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
    )


async def write_audit(
    database: Database,
    *,
    action: str,
    actor: str | None,
    actor_role: str | None,
    vehicle_id: str | None = None,
    outcome: str | None = None,
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
    source_address: str | None = None,
) -> None:
    """Append one audit record."""
    await database.execute(
        "INSERT INTO audit_logs (action, actor, actor_role, vehicle_id, outcome, details,"
        " request_id, source_address) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)",
        action,
        actor,
        actor_role,
        vehicle_id,
        outcome,
        json.dumps(details or {}),
        request_id,
        source_address,
    )


REPEAT_WINDOW_SECONDS = 60


async def write_repeatable_audit(
    database: Database,
    *,
    action: str,
    actor: str | None,
    actor_role: str | None,
    repeat_key: str,
    outcome: str | None = None,
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
    source_address: str | None = None,
) -> bool:
    """Record a security event, or count it on the row of the same event (``action``,
    ``actor`` and ``repeat_key``) recorded in the last minute. True when a new row was written.

    One statement: two events racing may each write a row, never lose one.
    """
    value = await database.fetchval(
        "WITH repeated AS ("
        " UPDATE audit_logs SET repeat_count = repeat_count + 1, last_at = now()"
        " WHERE audit_id = (SELECT audit_id FROM audit_logs"
        "  WHERE action = $1 AND actor IS NOT DISTINCT FROM $2 AND repeat_key = $3"
        f"  AND at > now() - interval '{REPEAT_WINDOW_SECONDS} seconds'"
        "  ORDER BY audit_id DESC LIMIT 1)"
        " RETURNING audit_id),"
        " inserted AS ("
        " INSERT INTO audit_logs (action, actor, actor_role, outcome, details, request_id,"
        "  source_address, repeat_key)"
        " SELECT $1, $2, $4, $5, $6::jsonb, $7, $8, $3 WHERE NOT EXISTS (SELECT 1 FROM repeated)"
        " RETURNING audit_id)"
        " SELECT EXISTS (SELECT 1 FROM inserted)",
        action,
        actor,
        repeat_key,
        actor_role,
        outcome,
        json.dumps(details or {}),
        request_id,
        source_address,
    )
    return bool(value)


async def audit_page(database: Database, *, limit: int, before_id: int | None) -> list[Row]:
    """Audit records, newest first, keyset-paged on the record id; ``repeat_count`` says how
    many times the event happened (within a minute of the first), ``last_at`` the last time."""
    return await database.fetch(
        "SELECT audit_id, at, actor, actor_role, action, vehicle_id, outcome, details, request_id,"
        " repeat_count, last_at FROM audit_logs WHERE ($1::bigint IS NULL OR audit_id < $1)"
        " ORDER BY audit_id DESC LIMIT $2",
        before_id,
        limit,
    )
