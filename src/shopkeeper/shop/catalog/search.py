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
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Double,
    Integer,
    Select,
    String,
    Text,
    and_,
    bindparam,
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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.engine import Result, Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.core.db import is_postgres, table_of
from shopkeeper.core.errors import InvalidInput
from shopkeeper.core.jsonutil import dumps, loads
from shopkeeper.shop.catalog.models import Category, Product, SearchWord, Variant
from shopkeeper.shop.inventory.service import available_of

SORTS = ("relevance", "price", "-price", "name", "-created_at")
_products = table_of(Product)
_variants = table_of(Variant)
# A page is read as plain rows, not as ORM objects (building and tracking 20-100 instances per
# page was a measurable share of a search): the product's columns under their own names, then
# its variant's under `variant_*` names and the variant's sellable stock.
_LISTED_COLUMNS = [
    column for column in _products.c if column.key not in ("search_document", "search_key")
]
# A variant as the API shows it (keys in the API's order), built by PostgreSQL.
_VARIANT_JSON = func.json_build_object(
    "id",
    _variants.c.id,
    "sku",
    _variants.c.sku,
    "name",
    _variants.c.name,
    "price",
    func.json_build_object("amount", _variants.c.price, "currency", _variants.c.currency),
    "attributes",
    _variants.c.attributes,
    "available",
    func.greatest(0, available_of(_variants.c.sku)),
    "weight_grams",
    _variants.c.weight_grams,
)
_VARIANT_COLUMNS = [
    _variants.c.id.label("variant_id"),
    _variants.c.sku.label("variant_sku"),
    _variants.c.name.label("variant_name"),
    _variants.c.price.label("variant_price"),
    _variants.c.currency.label("variant_currency"),
    _variants.c.attributes.label("variant_attributes"),
    available_of(_variants.c.sku).label("variant_available"),
    _variants.c.weight_grams.label("variant_weight_grams"),
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
    """A product of a page: its row (`product.name` ...) and its variants as the API shows
    them, in position order."""

    product: Row[Any]
    variants: list[dict[str, Any]]


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
        tree, params = _category_tree(query.category)
        categories = list(await session.scalars(tree, params))
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


@dataclass(frozen=True)
class _Shape:
    """What a page's statement looks like, apart from its values: pages of one shape share
    one statement object, built once with bind parameters (`_page_statement`). Building the
    statement and its cache key took about 0.55 ms of a search request's CPU otherwise."""

    postgres: bool
    mode: str
    sort: str
    after: bool
    categories: int
    """0 (no filter), 1 (one category) or 2 (a subtree of several)."""
    min_price: bool
    max_price: bool
    attributes: tuple[tuple[str, int], ...] = ()
    """(name, number of JSON values the query value may stand for) per attribute filter."""
    corrections: int = 0


async def _page(
    session: AsyncSession,
    query: ProductQuery,
    sort: str,
    q: str,
    mode: str,
    after: tuple[Any, uuid.UUID, str] | None,
) -> tuple[list[Listed], str | None]:
    postgres = is_postgres(session)
    params: dict[str, Any] = {"limit": query.limit + 1}
    corrections: list[tuple[str, float]] = []
    if mode == "words":
        params["q"] = q
    elif mode == "fuzzy":
        corrections = await _corrections(session, q)
        for n, (word, similarity) in enumerate(corrections):
            params[f"word_{n}"], params[f"similarity_{n}"] = word, similarity
    elif mode == "sqlite":
        words = re.findall(r"\w+", q.lower())
        # Each word quoted (no FTS syntax from users) and prefix-matched, all words required.
        params["match"] = " ".join('"' + word.replace('"', "") + '"*' for word in words)
    if (mode == "fuzzy" and not corrections) or (mode == "sqlite" and not params["match"]):
        return [], None
    if len(query.category_ids) == 1:
        params["category_id"] = query.category_ids[0]
    elif query.category_ids:
        params["category_ids"] = list(query.category_ids)
    if query.min_price is not None:
        params["min_price"] = query.min_price
    if query.max_price is not None:
        params["max_price"] = query.max_price
    attributes: list[tuple[str, int]] = []
    for n, (name, value) in enumerate(sorted(query.attributes.items())):
        if not ATTRIBUTE_NAME.match(name):
            raise InvalidQuery(f"attribute name {name!r} is not valid")
        values = _attribute_values(value)
        attributes.append((name, len(values)))
        for m, each in enumerate(values):
            params[f"attribute_{n}_{m}"] = (
                {name: each} if postgres else int(each) if isinstance(each, bool) else each
            )
    if after is not None:
        params["after_key"], params["after_id"] = after[0], after[1]
    shape = _Shape(
        postgres=postgres,
        mode=mode,
        sort=sort,
        after=after is not None,
        categories=min(len(query.category_ids), 2),
        min_price=query.min_price is not None,
        max_price=query.max_price is not None,
        attributes=tuple(attributes),
        corrections=len(corrections),
    )
    rows: Result[Any] = await session.execute(_page_statement(shape), params)
    listed: list[Listed] = []
    if postgres:
        listed = [Listed(row, loads(row.variants) if row.variants else []) for row in rows]
    else:
        for row in rows:
            if not listed or listed[-1].product.id != row.id:
                listed.append(Listed(row, []))
            if row.variant_id is not None:
                listed[-1].variants.append(
                    {
                        "id": str(row.variant_id),
                        "sku": row.variant_sku,
                        "name": row.variant_name,
                        "price": {"amount": row.variant_price, "currency": row.variant_currency},
                        "attributes": row.variant_attributes,
                        "available": max(0, int(row.variant_available)),
                        "weight_grams": row.variant_weight_grams,
                    }
                )
    if len(listed) <= query.limit:
        return listed, None
    last = listed[query.limit - 1].product
    return listed[: query.limit], encode_cursor(sort, last.sort_key, last.id, mode)


# Attribute names are part of a shape; the cache is bounded so that arbitrary names cannot grow it.
@lru_cache(maxsize=512)
def _page_statement(shape: _Shape) -> Select[Any]:
    stmt: Select[Any] = select(Product.id).where(Product.archived_at.is_(None))
    rank: ColumnElement[Any] | None = None
    if shape.mode == "sqlite":
        stmt, rank = _sqlite_search(stmt)
    elif shape.mode == "words":
        stmt, rank = _postgres_words(stmt)
    elif shape.mode == "fuzzy":
        stmt, rank = _postgres_fuzzy(stmt, shape.corrections)
    stmt = _filter(stmt, shape)

    key, descending = _sort_key(shape.sort, rank)
    if shape.after:
        row = tuple_(key, Product.id)
        bound = tuple_(
            bindparam("after_key", type_=key.type), bindparam("after_id", type_=Product.id.type)
        )
        stmt = stmt.where(row < bound if descending else row > bound)
    ordering = (key.desc(), Product.id.desc()) if descending else (key.asc(), Product.id.asc())
    # The page is chosen on ids and sort keys alone; only its limit + 1 products are then
    # joined to their columns, variants and stock. Sorting thousands of matches of a broad
    # search carried every match's whole row before (q=lamp, 6,518 matches: 11.3 -> 8.7 ms),
    # and the variants were a second round trip.
    page = (
        stmt.add_columns(key.label("sort_key"))
        .order_by(*ordering)
        .limit(bindparam("limit", type_=Integer))
    )
    chosen = page.subquery("page")
    order = chosen.c.sort_key.desc() if descending else chosen.c.sort_key.asc()
    order_id = chosen.c.id.desc() if descending else chosen.c.id.asc()
    products = chosen.join(_products, _products.c.id == chosen.c.id)
    if shape.postgres:
        # One row per product, its variants as the API's JSON array built by PostgreSQL and
        # decoded by orjson: a row per variant repeated the product's columns and cost a JSON
        # decode and a dozen row lookups per variant in the worker.
        variants = (
            select(func.json_agg(aggregate_order_by(_VARIANT_JSON, _variants.c.position)))
            .where(_variants.c.product_id == chosen.c.id, _variants.c.archived_at.is_(None))
            .scalar_subquery()
        )
        return (
            select(*_LISTED_COLUMNS, chosen.c.sort_key, cast(variants, Text).label("variants"))
            .select_from(products)
            .order_by(order, order_id)
        )
    return (
        select(*_LISTED_COLUMNS, chosen.c.sort_key, *_VARIANT_COLUMNS)
        .select_from(
            products.outerjoin(
                _variants,
                and_(_variants.c.product_id == chosen.c.id, _variants.c.archived_at.is_(None)),
            )
        )
        .order_by(order, order_id, _variants.c.position)
    )


def _once(tsquery: ColumnElement[Any]) -> ColumnElement[Any]:
    """The tsquery as a scalar sub-select, which PostgreSQL evaluates once per statement.

    The driver prepares each statement and PostgreSQL switches a prepared statement to a
    generic plan after five runs; there `websearch_to_tsquery($1)` is no longer folded into a
    constant but parsed again for every candidate row and every ts_rank call (q=lamp on
    100,000 products: 70 ms instead of 20)."""
    return select(tsquery).scalar_subquery()


_ENGLISH: Any = literal_column("'english'::regconfig")


def _postgres_words(stmt: Select[Any]) -> tuple[Select[Any], ColumnElement[Any]]:
    document: Any = Product.search_document
    tsquery = func.websearch_to_tsquery(_ENGLISH, bindparam("q", type_=String))
    # ts_rank is float4; as float8 the value survives the cursor exactly.
    rank = cast(func.ts_rank(document, _once(tsquery)), Double)
    return stmt.where(document.op("@@")(_once(tsquery))), rank


# The nearest `CORRECTIONS_PER_WORD` keys per query word come from the GiST index in distance
# order (`<<->` is 1 - word_similarity), so the cost depends on the number of distinct name
# words, not of products; those below `TRIGRAM_THRESHOLD` are dropped. A word reached from two
# query words keeps its best similarity.
_queried = (
    func.unnest(bindparam("words", type_=ARRAY(String())))
    .table_valued("word")
    .render_derived(name="queried")
)
_nearest = (
    select(
        SearchWord.word,
        func.word_similarity(_queried.c.word, SearchWord.key).label("similarity"),
    )
    .order_by(_queried.c.word.op("<<->")(SearchWord.key))
    .limit(CORRECTIONS_PER_WORD)
    .lateral("nearest")
)
_CORRECTIONS = (
    select(_nearest.c.word, func.max(_nearest.c.similarity))
    .select_from(_queried.join(_nearest, true()))
    .where(_nearest.c.similarity >= TRIGRAM_THRESHOLD)
    .group_by(_nearest.c.word)
    .order_by(func.max(_nearest.c.similarity).desc(), _nearest.c.word)
)


async def _corrections(session: AsyncSession, q: str) -> list[tuple[str, float]]:
    """(spelling, similarity) of the name words nearest to each word of `q`, one statement
    (`_CORRECTIONS`), most similar first."""
    words = search_key(q).split()[:8]
    if not words:
        return []
    rows = await session.execute(_CORRECTIONS, {"words": words})
    return [(word, float(similarity)) for word, similarity in rows]


def _postgres_fuzzy(stmt: Select[Any], corrections: int) -> tuple[Select[Any], ColumnElement[Any]]:
    """Products matching any of the `corrections` (bound as `word_<n>`), ranked by ts_rank per
    correction weighted by how close it is to what was typed (`similarity_<n>`): name over
    description still holds, and "sneaker" (0.5 from "sneker") outranks a farther spelling.
    plainto_tsquery ANDs a hyphenated word's parts ("t-shirt" & "t" & "shirt") where
    websearch_to_tsquery would make a phrase, which costs a recheck of every match's
    positions."""
    document: Any = Product.search_document
    queries = [
        func.plainto_tsquery(_ENGLISH, bindparam(f"word_{n}", type_=String))
        for n in range(corrections)
    ]
    matches: ColumnElement[Any] = queries[0]
    for each in queries[1:]:
        matches = matches.op("||")(each)
    rank: ColumnElement[Any] = literal(0.0, Double)
    for n, tsquery in enumerate(queries):
        weighted = cast(func.ts_rank(document, _once(tsquery)), Double)
        rank = rank + bindparam(f"similarity_{n}", type_=Double) * weighted
    return stmt.where(document.op("@@")(_once(matches))), rank


_FTS = table("products_fts", column("product_id"))


def _sqlite_search(stmt: Select[Any]) -> tuple[Select[Any], ColumnElement[Any]]:
    fts: ColumnElement[Any] = literal_column("products_fts")
    rank = cast(-func.bm25(fts, 0.0, 10.0, 1.0), Double)
    stmt = stmt.join(_FTS, _FTS.c.product_id == Product.id).where(
        fts.op("MATCH")(bindparam("match", type_=String))
    )
    return stmt, rank


def _filter(stmt: Select[Any], shape: _Shape) -> Select[Any]:
    if shape.categories == 1:
        stmt = stmt.where(Product.category_id == bindparam("category_id"))
    elif shape.categories:
        stmt = stmt.where(Product.category_id.in_(bindparam("category_ids", expanding=True)))
    if shape.min_price or shape.max_price:
        priced = [Variant.product_id == Product.id, Variant.archived_at.is_(None)]
        if shape.min_price:
            priced.append(Variant.price >= bindparam("min_price", type_=BigInteger))
        if shape.max_price:
            priced.append(Variant.price <= bindparam("max_price", type_=BigInteger))
        stmt = stmt.where(exists().where(and_(*priced)))
    for n, (name, count) in enumerate(shape.attributes):
        values = [f"attribute_{n}_{m}" for m in range(count)]
        stmt = stmt.where(
            or_(
                _attribute_matches(Product.attributes, name, values, shape.postgres),
                exists().where(
                    Variant.product_id == Product.id,
                    Variant.archived_at.is_(None),
                    _attribute_matches(Variant.attributes, name, values, shape.postgres),
                ),
            )
        )
    return stmt


def _subtree(root: ColumnElement[bool]) -> Select[Any]:
    tree = select(Category.id).where(root).cte("category_tree", recursive=True)
    tree = tree.union(select(Category.id).where(Category.parent_id == tree.c.id))
    return select(tree.c.id)


# A category and all its descendants, by the root's id or slug (bound as `root`).
_SUBTREE_BY_ID = _subtree(Category.id == bindparam("root"))
_SUBTREE_BY_SLUG = _subtree(Category.slug == bindparam("root"))


def _category_tree(category: str) -> tuple[Select[Any], dict[str, Any]]:
    """The statement listing `category` (an id or a slug) and its descendants, and its value."""
    try:
        return _SUBTREE_BY_ID, {"root": uuid.UUID(category)}
    except ValueError:
        return _SUBTREE_BY_SLUG, {"root": category}


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
    attributes: Any, name: str, values: list[str], postgres: bool
) -> ColumnElement[bool]:
    """`attributes` holds `name` with any of the values bound under the names `values`
    (on PostgreSQL each bound as a `{name: value}` document, for `@>`)."""
    if postgres:
        document = type_coerce(attributes, JSONB)
        return or_(*(document.contains(bindparam(each, type_=JSONB)) for each in values))
    extracted = func.json_extract(attributes, f'$."{name}"')
    return or_(*(extracted == bindparam(each) for each in values))


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
