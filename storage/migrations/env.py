"""Alembic environment for the hub's plain-SQL migrations.

There is no alembic.ini: :mod:`storage.migrate` builds the configuration and hands over an
open SQLAlchemy connection in ``config.attributes["connection"]``. Offline mode
(``--sql``) prints the SQL for PostgreSQL instead of running it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

# Any fixed number will do; every hub process that migrates the same database takes this
# transaction-scoped lock first, so hubs starting together apply each revision once.
MIGRATION_LOCK_ID = 0x74766D5F6D6967  # "tvm_mig"


def run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url") or "postgresql://",
        literal_binds=True,
        dialect_name="postgresql",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through storage.migrate, not the alembic command")
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
