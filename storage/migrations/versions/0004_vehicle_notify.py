"""Every hub hears about registrations, disables and enables made anywhere.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

A trigger on ``vehicles`` sends ``NOTIFY tvm_vehicles`` with the vehicle id whenever a row is
inserted, deleted or changes ``enabled``. PostgreSQL delivers it at commit to every session
listening on the database; each hub holds one (``storage.vehicle_changes``) and re-reads
that vehicle, so a change made on one hub, or by ``tvm-hub vehicle add``, reaches every hub
at once.
"""

from __future__ import annotations

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


UPGRADE: tuple[str, ...] = (
    """
    CREATE FUNCTION tvm_notify_vehicle_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('tvm_vehicles', OLD.vehicle_id);
        ELSE
            PERFORM pg_notify('tvm_vehicles', NEW.vehicle_id);
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER vehicles_notify_change AFTER INSERT OR DELETE OR UPDATE OF enabled"
    " ON vehicles FOR EACH ROW EXECUTE FUNCTION tvm_notify_vehicle_change()",
)

DOWNGRADE: tuple[str, ...] = (
    "DROP TRIGGER vehicles_notify_change ON vehicles",
    "DROP FUNCTION tvm_notify_vehicle_change()",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
