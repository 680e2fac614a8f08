"""Repeated security events counted on one audit row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

A principal hammering a forbidden route (or a login with wrong credentials) must not write
one audit row per request: repeats of the same event by the same principal within a minute
add to ``repeat_count`` of the row that recorded the first, and move ``last_at``.
``repeat_key`` says what counts as the same event (the route and method, the grant type…).
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


UPGRADE: tuple[str, ...] = (
    "ALTER TABLE audit_logs ADD COLUMN repeat_count integer NOT NULL DEFAULT 1"
    " CHECK (repeat_count >= 1)",
    "ALTER TABLE audit_logs ADD COLUMN last_at timestamptz",
    "ALTER TABLE audit_logs ADD COLUMN repeat_key text",
    "CREATE INDEX audit_logs_repeat_idx ON audit_logs (action, actor, repeat_key, at)"
    " WHERE repeat_key IS NOT NULL",
)

DOWNGRADE: tuple[str, ...] = (
    "DROP INDEX audit_logs_repeat_idx",
    "ALTER TABLE audit_logs DROP COLUMN repeat_key",
    "ALTER TABLE audit_logs DROP COLUMN last_at",
    "ALTER TABLE audit_logs DROP COLUMN repeat_count",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
