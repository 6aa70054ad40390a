"""Product listing: filters, full-text search, sorting and keyset cursors.

PostgreSQL matches the weighted `tsvector` document (name A, description B); when no product
matches, it corrects the query's words against the words of product names (trigram similarity,
`search_words`) and matches the corrections instead. SQLite matches its FTS5 table. Pages are
keyset-paginated on (sort key, id), so inserts between pages cause no duplicates or gaps.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Double,
    Select,
    String,
    and_,
    cast,
    column,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    true,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Result, Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.catalog.models import Category, Product, SearchWord, Variant
from shopkeeper.core.db import is_postgres, table_of
from shopkeeper.core.errors import InvalidInput
from shopkeeper.core.jsonutil import dumps, loads
from shopkeeper.inventory.service import available_of

SORTS = ("relevance", "price", "-price", "name", "-created_at")
_products = table_of(Product)
_variants = table_of(Variant)
# A page is read as plain rows, not as ORM objects (building and tracking 20-100 instances per
# page was a measurable share of a search): the product's columns under their own names, then
# its variant's under `variant_*` names and the variant's sellable stock.
_LISTED_COLUMNS = [
    column for column in _products.c if column.key not in ("search_document", "search_key")
]
_VARIANT_COLUMNS = [
    _variants.c.id.label("variant_id"),
    _variants.c.sku.label("variant_sku"),
    _variants.c.name.label("variant_name"),
    _variants.c.price.label("variant_price"),
    _variants.c.currency.label("variant_currency"),
    _variants.c.attributes.label("variant_attributes"),
    available_of(_variants.c.sku).label("variant_available"),
]
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
# word_similarity("tshrit", "tshirt") is about 0.43; pg_trgm's default (0.6) misses such typos.
TRIGRAM_THRESHOLD = 0.4
# Spellings considered per misspelt word, nearest first: enough for a typo that sits between two
# words, few enough that ranking stays a handful of ts_rank calls per product.
CORRECTIONS_PER_WORD = 3


class InvalidCursor(InvalidInput):
    slug, title = "invalid-cursor", "Invalid cursor"


class InvalidQuery(InvalidInput):
    slug, title = "invalid-query", "Invalid query"


@dataclass(slots=True)
class Listed:
    """A product of a page: `rows` hold its columns (`rows[0].name` ...) and, one row each,
    its variants in position order (`variant_sku` ...); a product without variants has one row
    whose `variant_id` is None."""

    rows: list[Row[Any]]

    @property
    def product(self) -> Row[Any]:
        return self.rows[0]

    @property
    def variants(self) -> list[Row[Any]]:
        return [] if self.rows[0].variant_id is None else self.rows


@dataclass(frozen=True)
class ProductQuery:
    q: str | None = None
    category: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    sort: str | None = None
    limit: int = 20
    cursor: str | None = None
    category_ids: tuple[uuid.UUID, ...] = ()
    """`category` and its sub-categories, once resolved."""

    @property
    def effective_sort(self) -> str:
        if self.sort is not None:
            return self.sort
        return "relevance" if self.q else "-created_at"


def search_key(name: str) -> str:
    """ "Classic T-Shirt!" -> "classic tshirt": what trigram matching compares against."""
    return " ".join(re.sub(r"[^\w\s]", "", name.lower()).split())


async def find_products(
    session: AsyncSession, query: ProductQuery
) -> tuple[list[Listed], str | None]:
    """One page of live products with their variants and stock, in one statement, and the
    cursor of the next page (None on the last).

    With `q` on PostgreSQL, words are matched first; only when nothing matches are the query's
    words corrected (see `_corrections`) and the corrections matched, so a typo still finds the
    product while ordinary searches never pay for it. The cursor remembers which of the two a
    walk uses.
    """
    sort = query.effective_sort
    if sort not in SORTS:
        raise InvalidQuery(f"sort must be one of {', '.join(SORTS)}")
    q = (query.q or "").strip()
    if sort == "relevance" and not q:
        raise InvalidQuery("sort=relevance needs a search term q")
    after = decode_cursor(query.cursor, sort) if query.cursor is not None else None
    if query.category:
        # Resolved up front so the planner sees the actual ids (one small statement): an
        # opaque sub-select makes it walk a whole sort index hunting for the category's rows.
        categories = list(await session.scalars(_category_tree(query.category)))
        if not categories:
            return [], None
        query = replace(query, category_ids=tuple(categories))
    postgres = is_postgres(session)
    modes = ("words", "fuzzy") if q and postgres else ("sqlite",) if q else ("none",)
    if after is not None and after[2] not in modes:
        raise InvalidCursor("This cursor belongs to a different search")
    if len(modes) == 1:
        return await _page(session, query, sort, q, modes[0], after)
    if after is not None:
        return await _page(session, query, sort, q, after[2], after)
    products, cursor = await _page(session, query, sort, q, "words", after)
    if products:
        return products, cursor
    return await _page(session, query, sort, q, "fuzzy", after)


async def _page(
    session: AsyncSession,
    query: ProductQuery,
    sort: str,
    q: str,
    mode: str,
    after: tuple[Any, uuid.UUID, str] | None,
) -> tuple[list[Listed], str | None]:
    stmt: Select[Any] = select(Product.id).where(Product.archived_at.is_(None))
    rank: ColumnElement[Any] | None = None
    if mode == "sqlite":
        stmt, rank = _sqlite_search(stmt, q)
    elif mode == "words":
        stmt, rank = _postgres_words(stmt, q)
    elif mode == "fuzzy":
        stmt, rank = _postgres_fuzzy(stmt, await _corrections(session, q))
    stmt = _filter(stmt, query, is_postgres(session))

    key, descending = _sort_key(sort, rank)
    if after is not None:
        last_key, last_id, _mode = after
        row = tuple_(key, Product.id)
        bound = tuple_(literal(last_key, key.type), literal(last_id, Product.id.type))
        stmt = stmt.where(row < bound if descending else row > bound)
    ordering = (key.desc(), Product.id.desc()) if descending else (key.asc(), Product.id.asc())
    # The page is chosen on ids and sort keys alone; only its limit + 1 products are then
    # joined to their columns, variants and stock. Sorting thousands of matches of a broad
    # search carried every match's whole row before (q=lamp, 6,518 matches: 11.3 -> 8.7 ms),
    # and the variants were a second round trip.
    page = stmt.add_columns(key.label("sort_key")).order_by(*ordering).limit(query.limit + 1)
    chosen = page.subquery("page")
    order = chosen.c.sort_key.desc() if descending else chosen.c.sort_key.asc()
    order_id = chosen.c.id.desc() if descending else chosen.c.id.asc()
    rows: Result[Any] = await session.execute(
        select(*_LISTED_COLUMNS, chosen.c.sort_key, *_VARIANT_COLUMNS)
        .select_from(
            chosen.join(_products, _products.c.id == chosen.c.id).outerjoin(
                _variants, _variants.c.product_id == chosen.c.id
            )
        )
        .order_by(order, order_id, _variants.c.position)
    )
    listed: list[Listed] = []
    for each in rows:
        if listed and listed[-1].rows[0].id == each.id:
            listed[-1].rows.append(each)
        else:
            listed.append(Listed([each]))
    if len(listed) <= query.limit:
        return listed, None
    last = listed[query.limit - 1].product
    return listed[: query.limit], encode_cursor(sort, last.sort_key, last.id, mode)


def _once(tsquery: ColumnElement[Any]) -> ColumnElement[Any]:
    """The tsquery as a scalar sub-select, which PostgreSQL evaluates once per statement.

    The driver prepares each statement and PostgreSQL switches a prepared statement to a
    generic plan after five runs; there `websearch_to_tsquery($1)` is no longer folded into a
    constant but parsed again for every candidate row and every ts_rank call (q=lamp on
    100,000 products: 70 ms instead of 20)."""
    return select(tsquery).scalar_subquery()


def _postgres_words(stmt: Select[Any], q: str) -> tuple[Select[Any], ColumnElement[Any]]:
    document: Any = Product.search_document
    tsquery = func.websearch_to_tsquery(literal_column("'english'::regconfig"), q)
    # ts_rank is float4; as float8 the value survives the cursor exactly.
    rank = cast(func.ts_rank(document, _once(tsquery)), Double)
    return stmt.where(document.op("@@")(_once(tsquery))), rank


async def _corrections(session: AsyncSession, q: str) -> list[tuple[str, float]]:
    """(spelling, similarity) of the name words nearest to each word of `q`, one statement.

    The nearest `CORRECTIONS_PER_WORD` keys per query word come from the GiST index in
    distance order (`<<->` is 1 - word_similarity), so the cost depends on the number of
    distinct name words, not of products; those below `TRIGRAM_THRESHOLD` are dropped. A word
    reached from two query words keeps its best similarity.
    """
    words = search_key(q).split()[:8]
    if not words:
        return []
    queried = (
        func.unnest(literal(words, type_=ARRAY(String())))
        .table_valued("word")
        .render_derived(name="queried")
    )
    query_word = queried.c.word
    nearest = (
        select(
            SearchWord.word, func.word_similarity(query_word, SearchWord.key).label("similarity")
        )
        .order_by(query_word.op("<<->")(SearchWord.key))
        .limit(CORRECTIONS_PER_WORD)
        .lateral("nearest")
    )
    rows = await session.execute(
        select(nearest.c.word, func.max(nearest.c.similarity))
        .select_from(queried.join(nearest, true()))
        .where(nearest.c.similarity >= TRIGRAM_THRESHOLD)
        .group_by(nearest.c.word)
        .order_by(func.max(nearest.c.similarity).desc(), nearest.c.word)
    )
    return [(word, float(similarity)) for word, similarity in rows]


def _postgres_fuzzy(
    stmt: Select[Any], corrections: list[tuple[str, float]]
) -> tuple[Select[Any], ColumnElement[Any]]:
    """Products matching any correction, ranked by ts_rank per correction weighted by how close
    it is to what was typed: name over description still holds, and "sneaker" (0.5 from
    "sneker") outranks a farther spelling. plainto_tsquery ANDs a hyphenated word's parts
    ("t-shirt" & "t" & "shirt") where websearch_to_tsquery would make a phrase, which costs a
    recheck of every match's positions."""
    if not corrections:
        return stmt.where(literal(False)), literal(0.0, Double)
    document: Any = Product.search_document
    english: Any = literal_column("'english'::regconfig")
    queries = [func.plainto_tsquery(english, word) for word, _ in corrections]
    matches: ColumnElement[Any] = queries[0]
    for each in queries[1:]:
        matches = matches.op("||")(each)
    rank: ColumnElement[Any] = literal(0.0, Double)
    for tsquery, (_, similarity) in zip(queries, corrections, strict=True):
        weighted = cast(func.ts_rank(document, _once(tsquery)), Double)
        rank = rank + literal(similarity, Double) * weighted
    return stmt.where(document.op("@@")(_once(matches))), rank


_FTS = table("products_fts", column("product_id"))


def _sqlite_search(stmt: Select[Any], q: str) -> tuple[Select[Any], ColumnElement[Any]]:
    words = re.findall(r"\w+", q.lower())
    if not words:
        return stmt.where(literal(False)), literal(0.0, Double)
    # Each word quoted (no FTS syntax from users) and prefix-matched, all words required.
    expression = " ".join('"' + word.replace('"', "") + '"*' for word in words)
    fts: ColumnElement[Any] = literal_column("products_fts")
    rank = cast(-func.bm25(fts, 0.0, 10.0, 1.0), Double)
    stmt = stmt.join(_FTS, _FTS.c.product_id == Product.id).where(fts.op("MATCH")(expression))
    return stmt, rank


def _filter(stmt: Select[Any], query: ProductQuery, postgres: bool) -> Select[Any]:
    if len(query.category_ids) == 1:
        stmt = stmt.where(Product.category_id == query.category_ids[0])
    elif query.category_ids:
        stmt = stmt.where(Product.category_id.in_(query.category_ids))
    if query.min_price is not None or query.max_price is not None:
        priced = [Variant.product_id == Product.id]
        if query.min_price is not None:
            priced.append(Variant.price >= query.min_price)
        if query.max_price is not None:
            priced.append(Variant.price <= query.max_price)
        stmt = stmt.where(exists().where(and_(*priced)))
    for name, value in query.attributes.items():
        if not ATTRIBUTE_NAME.match(name):
            raise InvalidQuery(f"attribute name {name!r} is not valid")
        stmt = stmt.where(
            or_(
                _attribute_matches(Product.attributes, name, value, postgres),
                exists().where(
                    Variant.product_id == Product.id,
                    _attribute_matches(Variant.attributes, name, value, postgres),
                ),
            )
        )
    return stmt


def _category_tree(category: str) -> Select[Any]:
    try:
        root = Category.id == uuid.UUID(category)
    except ValueError:
        root = Category.slug == category
    tree = select(Category.id).where(root).cte("category_tree", recursive=True)
    tree = tree.union(select(Category.id).where(Category.parent_id == tree.c.id))
    return select(tree.c.id)


def _attribute_values(value: str) -> list[Any]:
    """A query string value as every JSON value it may stand for: "42" is "42" or 42."""
    values: list[Any] = [value]
    if value in ("true", "false"):
        values.append(value == "true")
    else:
        try:
            values.append(int(value))
        except ValueError:
            with contextlib.suppress(ValueError):
                values.append(float(value))
    return values


def _attribute_matches(
    attributes: Any, name: str, value: str, postgres: bool
) -> ColumnElement[bool]:
    values = _attribute_values(value)
    if postgres:
        document = type_coerce(attributes, JSONB)
        return or_(*(document.contains({name: each}) for each in values))
    extracted = func.json_extract(attributes, f'$."{name}"')
    return or_(*(extracted == (int(each) if isinstance(each, bool) else each) for each in values))


def _sort_key(sort: str, rank: ColumnElement[Any] | None) -> tuple[ColumnElement[Any], bool]:
    if sort == "relevance":
        assert rank is not None
        return rank, True
    keys: dict[str, tuple[Any, bool]] = {
        "price": (Product.min_price, False),
        "-price": (Product.min_price, True),
        "name": (Product.name, False),
        "-created_at": (Product.created_at, True),
    }
    return keys[sort]


def encode_cursor(sort: str, key: Any, last_id: uuid.UUID, mode: str) -> str:
    if isinstance(key, datetime):
        key = key.isoformat()
    raw = dumps([sort, key, str(last_id), mode])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, uuid.UUID, str]:
    """The (sort key, id, match mode) a cursor points after; it must come from the same sort."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, key, last_id, mode = loads(raw)
        parsed_id = uuid.UUID(last_id)
        if mode not in ("none", "sqlite", "words", "fuzzy"):
            raise ValueError("unknown match mode")
        if cursor_sort != sort:
            raise InvalidCursor("This cursor belongs to a different sort order")
        if sort == "-created_at":
            key = datetime.fromisoformat(key)
        elif sort in ("price", "-price"):
            key = int(key)
        elif sort == "relevance":
            key = float(key)
        elif not isinstance(key, str):
            raise ValueError("name cursor needs a string")
    except InvalidCursor:
        raise
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidCursor("The cursor is not one this API returned") from exc
    return key, parsed_id, mode
