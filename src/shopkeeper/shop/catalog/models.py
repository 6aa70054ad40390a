"""Categories (a tree), products and their variants."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Computed,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, JSONDocument, UTCDateTime, new_id, utcnow


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# The weighted search document, name over description: a stored generated column on PostgreSQL
# (ranking reads it instead of re-parsing the text of every match).
PG_DOCUMENT = (
    "setweight(to_tsvector('english'::regconfig, (name)::text), 'A'::\"char\") || "
    "setweight(to_tsvector('english'::regconfig, description), 'B'::\"char\")"
)


class Product(Base):
    __tablename__ = "products"
    # Never fetch the generated search document back after an INSERT: nothing reads it in Python.
    __mapper_args__ = {"eager_defaults": False}
    __table_args__ = (
        Index("ix_products_created_at_id", "created_at", "id"),
        Index("ix_products_min_price_id", "min_price", "id"),
        Index("ix_products_name_id", "name", "id"),
        # One category's page in any sort order straight from an index (these also serve the
        # foreign key).
        Index("ix_products_category_id_min_price", "category_id", "min_price", "id"),
        Index("ix_products_category_id_created_at", "category_id", "created_at", "id"),
        Index("ix_products_category_id_name", "category_id", "name", "id"),
        # Trigram index for typo-tolerant search; attributes containment (`@>`) for filters.
        Index(
            "ix_products_search_key_trgm",
            "search_key",
            postgresql_using="gin",
            postgresql_ops={"search_key": "gin_trgm_ops"},
        ),
        Index("ix_products_search_document", "search_document", postgresql_using="gin"),
        Index(
            "ix_products_attributes",
            "attributes",
            postgresql_using="gin",
            postgresql_ops={"attributes": "jsonb_path_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL")
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    # The cheapest variant's price, kept with the product so price sorting pages by an index.
    min_price: Mapped[int] = mapped_column(BigInteger)
    # The name lower-cased without punctuation ("t-shirt" -> "tshirt"), for trigram matching.
    search_key: Mapped[str] = mapped_column(String(300))
    # Always NULL on SQLite, where the FTS5 table (see the migration) does this job.
    search_document: Mapped[str | None] = mapped_column(
        TSVECTOR().with_variant(Text(), "sqlite"),
        Computed(PG_DOCUMENT, persisted=True),
        deferred=True,
    )
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SearchWord(Base):
    """The distinct words of product names, for typo correction (PostgreSQL only; filled by a
    trigger on `products`, see migration 0007). Matching a misspelt query against a few hundred
    words instead of every product name keeps a typo search as cheap as an ordinary one."""

    __tablename__ = "search_words"
    __table_args__ = (
        PrimaryKeyConstraint("key", "word", name="pk_search_words"),
        # GiST, not GIN: only GiST orders by trigram distance (`<<->`), so the nearest words come
        # straight from the index.
        Index(
            "ix_search_words_key_trgm",
            "key",
            postgresql_using="gist",
            postgresql_ops={"key": "gist_trgm_ops"},
        ),
    )

    # The word lower-cased without punctuation ("tshirt"), what a query word is compared to.
    key: Mapped[str] = mapped_column(String(300))
    # The word as the name spells it ("t-shirt"), what the corrected search looks for.
    word: Mapped[str] = mapped_column(String(300))


class Variant(Base):
    __tablename__ = "variants"
    __table_args__ = (
        Index("ix_variants_product_id_price", "product_id", "price"),
        Index(
            "ix_variants_attributes",
            "attributes",
            postgresql_using="gin",
            postgresql_ops={"attributes": "jsonb_path_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    weight_grams: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """Archived: no longer listed or sellable; kept for the orders and carts that name it."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
