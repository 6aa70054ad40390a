"""shop: vouchers, their categories and per-customer counters; shipping zones, methods and tax
rates; variants gain a weight; carts carry a voucher; orders gain discount, tax, voucher and
shipping method

Revision ID: 0014_promotions_vouchers
Revises: 0013_crawl_domain
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shopkeeper.core.db import JSONDocument, UTCDateTime

revision = "0014_promotions_vouchers"
down_revision = "0013_crawl_domain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vouchers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("min_subtotal_amount", sa.BigInteger(), nullable=True),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.Column("per_customer_limit", sa.Integer(), nullable=True),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=True),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('percentage', 'fixed', 'free_shipping')", name="kind"),
        sa.CheckConstraint("used >= 0", name="used_non_negative"),
        sa.CheckConstraint("usage_limit IS NULL OR used <= usage_limit", name="used_within_limit"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "voucher_categories",
        sa.Column("voucher_id", sa.Uuid(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["voucher_id"], ["vouchers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["category_id"], ["categories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("voucher_id", "category_id"),
    )
    op.create_table(
        "voucher_customer_uses",
        sa.Column("voucher_id", sa.Uuid(), nullable=False),
        sa.Column("customer", sa.String(length=330), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.CheckConstraint("used >= 0", name="used_non_negative"),
        sa.ForeignKeyConstraint(["voucher_id"], ["vouchers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("voucher_id", "customer"),
    )
    op.create_table(
        "shipping_zones",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("countries", JSONDocument, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "shipping_methods",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("zone_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("price_amount", sa.BigInteger(), nullable=False),
        sa.Column("free_over_amount", sa.BigInteger(), nullable=True),
        sa.Column("max_weight_grams", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["zone_id"], ["shipping_zones.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_shipping_methods_zone_id", "shipping_methods", ["zone_id"])
    op.create_table(
        "tax_rates",
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("rate_bps", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("country"),
    )
    with op.batch_alter_table("variants") as batch:
        batch.add_column(
            sa.Column("weight_grams", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("variants") as batch:
        batch.alter_column("weight_grams", server_default=None)
    op.add_column("carts", sa.Column("voucher_code", sa.String(length=64), nullable=True))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("discount_amount", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("tax_amount", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("voucher_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("voucher_code", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("voucher_customer", sa.String(length=330), nullable=True))
        batch.add_column(sa.Column("shipping_method_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("shipping_method_name", sa.String(length=200), nullable=True))
    # The defaults only filled the existing rows; the models say what new ones get.
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("discount_amount", server_default=None)
        batch.alter_column("tax_amount", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for column in (
            "shipping_method_name",
            "shipping_method_id",
            "voucher_customer",
            "voucher_code",
            "voucher_id",
            "tax_amount",
            "discount_amount",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("carts") as batch:
        batch.drop_column("voucher_code")
    with op.batch_alter_table("variants") as batch:
        batch.drop_column("weight_grams")
    op.drop_table("tax_rates")
    op.drop_index("ix_shipping_methods_zone_id", table_name="shipping_methods")
    op.drop_table("shipping_methods")
    op.drop_table("shipping_zones")
    op.drop_table("voucher_customer_uses")
    op.drop_table("voucher_categories")
    op.drop_table("vouchers")
