"""Every hub hears about commands queued anywhere.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

A trigger on ``commands`` sends ``NOTIFY tvm_commands`` with the vehicle id whenever a
command row is inserted as ``queued`` (the hub that took it does not hold the vehicle's
socket). The hub that does hold it — whatever Redis is doing — reads the vehicle's queued
commands and delivers the new ones (``storage.vehicle_changes``, ``actors.vehicle``).
"""

from __future__ import annotations

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


UPGRADE: tuple[str, ...] = (
    """
    CREATE FUNCTION tvm_notify_command_queued() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('tvm_commands', NEW.vehicle_id);
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER commands_notify_queued AFTER INSERT ON commands FOR EACH ROW"
    " WHEN (NEW.status = 'queued') EXECUTE FUNCTION tvm_notify_command_queued()",
)

DOWNGRADE: tuple[str, ...] = (
    "DROP TRIGGER commands_notify_queued ON commands",
    "DROP FUNCTION tvm_notify_command_queued()",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
