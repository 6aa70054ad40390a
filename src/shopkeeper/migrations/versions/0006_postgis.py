"""postgis, where the server offers it

Revision ID: 0006_postgis
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
import structlog
from alembic import op

revision = "0006_postgis"
down_revision = "0005"
branch_labels = None
depends_on = None

# PostgreSQL's SQLSTATE for "permission denied": CREATE EXTENSION postgis needs a superuser.
INSUFFICIENT_PRIVILEGE = "42501"

log = structlog.get_logger(__name__)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    offered = bind.scalar(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"))
    if offered is None:
        # Without the package, warehouse distances fall back to the haversine formula.
        return
    try:
        # A savepoint, so a refusal below leaves the migration's transaction usable.
        with bind.begin_nested():
            # Its own schema keeps PostGIS's tables (spatial_ref_sys) out of the application's
            # schema, where the migrations-match-models check would see them as strays.
            bind.execute(sa.text("CREATE SCHEMA IF NOT EXISTS postgis"))
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis SCHEMA postgis"))
    except sa.exc.DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            raise
        # A role that may not create extensions still migrates; the shop then runs on the
        # formula until a superuser runs the CREATE EXTENSION above.
        log.warning("postgis_not_installed", reason="insufficient privilege", error=str(exc.orig))


def downgrade() -> None:
    # The extension stays. No table of ours depends on it, so it costs nothing left in place,
    # while dropping it could break whatever else on this database uses PostGIS, and whether
    # this migration or a DBA created it is not recorded anywhere we could trust.
    pass
