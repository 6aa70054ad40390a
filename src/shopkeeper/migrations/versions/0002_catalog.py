"""catalog

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shopkeeper.core.db import JSONDocument, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The same expression as catalog.models.PG_DOCUMENT (a migration must not import models).
PG_DOCUMENT = (
    "setweight(to_tsvector('english'::regconfig, (name)::text), 'A'::\"char\") || "
    "setweight(to_tsvector('english'::regconfig, description), 'B'::\"char\")"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "categories",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["categories.id"],
            name="fk_categories_parent_id_categories",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_categories"),
        sa.UniqueConstraint("slug", name="uq_categories_slug"),
    )
    op.create_index("ix_categories_parent_id", "categories", ["parent_id"])
    op.create_table(
        "products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column("attributes", JSONDocument, nullable=False),
        sa.Column("min_price", sa.Integer(), nullable=False),
        sa.Column("search_key", sa.String(300), nullable=False),
        # PostgreSQL computes and stores it; SQLite keeps a NULL column (FTS5 does the job).
        sa.Column(
            "search_document",
            postgresql.TSVECTOR() if postgres else sa.Text(),
            *([sa.Computed(PG_DOCUMENT, persisted=True)] if postgres else []),
            nullable=True,
        ),
        sa.Column("archived_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name="fk_products_category_id_categories",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.UniqueConstraint("slug", name="uq_products_slug"),
    )
    for sort_key in ("min_price", "created_at", "name"):
        op.create_index(
            f"ix_products_category_id_{sort_key}", "products", ["category_id", sort_key, "id"]
        )
    op.create_index("ix_products_created_at_id", "products", ["created_at", "id"])
    op.create_index("ix_products_min_price_id", "products", ["min_price", "id"])
    op.create_index("ix_products_name_id", "products", ["name", "id"])
    op.create_table(
        "variants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("attributes", JSONDocument, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name="fk_variants_product_id_products",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_variants"),
        sa.UniqueConstraint("sku", name="uq_variants_sku"),
    )
    op.create_index("ix_variants_product_id_price", "variants", ["product_id", "price"])
    if postgres:
        _postgres_search()
    else:
        _sqlite_search()


def _postgres_search() -> None:
    op.create_index(
        "ix_products_search_key_trgm",
        "products",
        ["search_key"],
        postgresql_using="gin",
        postgresql_ops={"search_key": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_products_attributes",
        "products",
        ["attributes"],
        postgresql_using="gin",
        postgresql_ops={"attributes": "jsonb_path_ops"},
    )
    op.create_index(
        "ix_variants_attributes",
        "variants",
        ["attributes"],
        postgresql_using="gin",
        postgresql_ops={"attributes": "jsonb_path_ops"},
    )
    op.create_index(
        "ix_products_search_document", "products", ["search_document"], postgresql_using="gin"
    )


def _sqlite_search() -> None:
    # FTS5 keeps its own copy of the text keyed by product id: an external-content table would
    # follow products' implicit rowids, which VACUUM may renumber.
    op.execute(
        "CREATE VIRTUAL TABLE products_fts USING fts5("
        "product_id UNINDEXED, name, description, tokenize='porter unicode61')"
    )
    op.execute(
        "CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN "
        "INSERT INTO products_fts(product_id, name, description) "
        "VALUES (new.id, new.name, new.description); END"
    )
    op.execute(
        "CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN "
        "DELETE FROM products_fts WHERE product_id = old.id; END"
    )
    op.execute(
        "CREATE TRIGGER products_fts_update AFTER UPDATE OF name, description ON products BEGIN "
        "UPDATE products_fts SET name = new.name, description = new.description "
        "WHERE product_id = old.id; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("products_fts_insert", "products_fts_delete", "products_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS products_fts")
    op.drop_table("variants")
    op.drop_table("products")
    op.drop_table("categories")
