"""Which hub ran each scheduled retention pass.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Several hubs on one database each schedule the daily retention pass at the same due time.
The first to insert that due time into ``retention_runs`` runs the pass; the others find it
taken and skip it, so the pass runs once a day, not once per hub. A row also says when and
by whom the pass was claimed.
"""

from __future__ import annotations

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


UPGRADE: tuple[str, ...] = (
    "CREATE TABLE retention_runs ("
    " due timestamptz PRIMARY KEY,"
    " claimed_by text NOT NULL,"
    " claimed_at timestamptz NOT NULL DEFAULT now())",
)

DOWNGRADE: tuple[str, ...] = ("DROP TABLE retention_runs",)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
