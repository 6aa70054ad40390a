"""money columns become BIGINT

Prices are bounded at 10^12 minor units and an order of 100 lines of 100 units at that price
totals 10^16: none of it fits PostgreSQL's 32-bit INTEGER, which answered 500 from 2^31 and
left a cart that could never check out. SQLite's INTEGER is already 64-bit; its columns are
left as they are.

Revision ID: 0010_hardening_bigint_money
Revises: 0009_roles_and_keys
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_hardening_bigint_money"
down_revision = "0009_roles_and_keys"
branch_labels = None
depends_on = None

MONEY_COLUMNS = {
    "products": ("min_price",),
    "variants": ("price",),
    "orders": ("subtotal_amount", "shipping_amount", "total_amount"),
    "order_lines": ("unit_price_amount", "total_amount"),
    "payments": ("amount", "refunded_amount"),
    "refunds": ("amount",),
}


def _retype(old: sa.types.TypeEngine[int], new: sa.types.TypeEngine[int]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite stores every INTEGER in up to 8 bytes; nothing to widen
    for table, columns in MONEY_COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=new, existing_type=old)


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())
