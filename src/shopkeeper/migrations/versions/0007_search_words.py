"""search_words: the distinct words of product names, for typo correction

Revision ID: 0007_search_words
Revises: 0006_postgis
Create Date: 2026-11-24

A misspelt search used to compare the query with every candidate product name (pg_trgm's
word_similarity, about 6 us a row: 40-80 ms for a term like "sneker" on 100,000 products). It
now corrects the query's words against this small table and runs an ordinary word search.
PostgreSQL keeps the table in step with `products` through statement-level triggers, so bulk
inserts (the seed) fill it without any change to their code. SQLite has the (unused) table only
so both databases carry the same schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_search_words"
down_revision = "0006_postgis"
branch_labels = None
depends_on = None

# A name's words: lower-cased, split on white space, punctuation trimmed from the ends for the
# spelling kept ("t-shirt") and removed everywhere for the key ("tshirt"), which is how
# catalog.search.search_key builds the words of `products.search_key`. (`\W`, not a POSIX class:
# SQLAlchemy's text() would read `[:alnum:]` as a bind parameter.) `{source}` is "changed" in
# the trigger, "products" for the backfill.
_INSERT_WORDS = """
    INSERT INTO search_words (key, word)
    SELECT key, word FROM (
        SELECT DISTINCT regexp_replace(token, '\\W+', '', 'g') AS key,
               regexp_replace(token, '^\\W+|\\W+$', '', 'g') AS word
        FROM {source}, regexp_split_to_table(lower({source}.name), '\\s+') AS token
    ) AS words
    WHERE key <> ''
    ON CONFLICT DO NOTHING
"""

_FUNCTION = """
CREATE FUNCTION products_search_words() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {insert};
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "search_words",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("word", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("key", "word", name="pk_search_words"),
    )
    if not postgres:
        op.create_index("ix_search_words_key_trgm", "search_words", ["key"])
        return
    op.create_index(
        "ix_search_words_key_trgm",
        "search_words",
        ["key"],
        postgresql_using="gist",
        postgresql_ops={"key": "gist_trgm_ops"},
    )
    op.execute(_FUNCTION.format(insert=_INSERT_WORDS.format(source="changed")))
    # Statement-level with transition tables: one INSERT ... SELECT per statement, however many
    # rows it wrote. (Transition tables rule out a column list, so every UPDATE fires it; the
    # insert is a no-op for names it already knows.)
    for event in ("INSERT", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER products_search_words_{event.lower()} AFTER {event} ON products "
            "REFERENCING NEW TABLE AS changed "
            "FOR EACH STATEMENT EXECUTE FUNCTION products_search_words()"
        )
    op.execute(_INSERT_WORDS.format(source="products"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS products_search_words_insert ON products")
        op.execute("DROP TRIGGER IF EXISTS products_search_words_update ON products")
        op.execute("DROP FUNCTION IF EXISTS products_search_words()")
    op.drop_table("search_words")
