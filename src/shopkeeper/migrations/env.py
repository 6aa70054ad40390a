"""Alembic environment. Runs on the connection `shopkeeper.core.migrate` hands it, so the same
migrations serve SQLite (batch mode, for its limited ALTER TABLE) and PostgreSQL."""

from __future__ import annotations

from alembic import context

from shopkeeper.core.migrate import all_metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `shopkeeper migrate`")

context.configure(
    connection=connection,
    target_metadata=all_metadata(),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
