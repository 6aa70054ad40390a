"""inventory and carts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.core.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "warehouses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "latitude IS NULL OR (latitude >= -90 AND latitude <= 90)",
            name="ck_warehouses_latitude",
        ),
        sa.CheckConstraint(
            "longitude IS NULL OR (longitude >= -180 AND longitude <= 180)",
            name="ck_warehouses_longitude",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_warehouses"),
        sa.UniqueConstraint("code", name="uq_warehouses_code"),
    )
    op.create_table(
        "stock_levels",
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("on_hand >= 0", name="ck_stock_levels_on_hand_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="ck_stock_levels_reserved_not_negative"),
        sa.CheckConstraint("reserved <= on_hand", name="ck_stock_levels_reserved_within_on_hand"),
        sa.ForeignKeyConstraint(
            ["sku"], ["variants.sku"], name="fk_stock_levels_sku_variants", ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name="fk_stock_levels_warehouse_id_warehouses",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("sku", "warehouse_id", name="pk_stock_levels"),
    )
    op.create_index("ix_stock_levels_warehouse_id", "stock_levels", ["warehouse_id"])
    op.create_table(
        "stock_allocations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_stock_allocations_quantity_positive"),
        sa.CheckConstraint(
            "state IN ('reserved', 'released', 'shipped')", name="ck_stock_allocations_state"
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name="fk_stock_allocations_warehouse_id_warehouses",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stock_allocations"),
    )
    op.create_index("ix_stock_allocations_reference", "stock_allocations", ["reference"])
    op.create_table(
        "carts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "user_id IS NOT NULL OR token_hash IS NOT NULL", name="ck_carts_has_owner"
        ),
        sa.CheckConstraint("status IN ('open', 'checked_out', 'merged')", name="ck_carts_status"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_carts_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_carts"),
        sa.UniqueConstraint("token_hash", name="uq_carts_token_hash"),
    )
    op.create_index(
        "ix_carts_open_user_id",
        "carts",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "cart_items",
        sa.Column("cart_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("quantity > 0 AND quantity <= 100", name="ck_cart_items_quantity"),
        sa.ForeignKeyConstraint(
            ["cart_id"], ["carts.id"], name="fk_cart_items_cart_id_carts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sku"], ["variants.sku"], name="fk_cart_items_sku_variants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cart_id", "sku", name="pk_cart_items"),
    )


def downgrade() -> None:
    op.drop_table("cart_items")
    op.drop_table("carts")
    op.drop_table("stock_allocations")
    op.drop_table("stock_levels")
    op.drop_table("warehouses")
