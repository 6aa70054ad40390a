"""Demo catalog for `shopkeeper seed`: a category tree, products with variants and attributes,
and stock for every SKU in two warehouses. Rows go in by the thousand, bypassing per-product use
cases that would each commit, and stock through the inventory's bulk upsert
(`--products 100000`: about 30 s of products and 30 s of stock for its ~210,000 SKUs on
PostgreSQL on a 2-core machine)."""

from __future__ import annotations

import contextlib
import random
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.cache import Cache, cache_namespace
from shopkeeper.core.db import Database, new_id, utcnow
from shopkeeper.core.settings import Settings
from shopkeeper.shop.catalog.models import Category, Product, Variant
from shopkeeper.shop.catalog.search import search_key
from shopkeeper.shop.catalog.service import CATEGORIES_TAG, LISTS_TAG, slugify

BATCH = 1000
# SKUs per `set_stock_levels` call: one transaction and one StockChanged event each.
STOCK_BATCH = 1000
WAREHOUSES = (("main", "Main warehouse", 52.52, 13.40), ("east", "East depot", 52.23, 21.01))


@dataclass(frozen=True)
class Leaf:
    """A leaf category and how its products are named and varied."""

    nouns: tuple[str, ...]
    materials: tuple[str, ...]
    options: dict[str, tuple[str, ...]]
    price_range: tuple[int, int]


COLORS = ("black", "white", "navy", "red", "olive", "grey", "sand")
SIZES = ("XS", "S", "M", "L", "XL")
TREE: dict[str, dict[str, Leaf]] = {
    "Clothing": {
        "T-Shirts": Leaf(
            ("T-Shirt", "Tee", "Longsleeve"),
            ("cotton", "organic cotton", "merino"),
            {"color": COLORS, "size": SIZES},
            (1500, 4500),
        ),
        "Jackets": Leaf(
            ("Jacket", "Parka", "Windbreaker", "Fleece"),
            ("nylon", "wool", "recycled polyester"),
            {"color": COLORS, "size": SIZES},
            (6000, 25000),
        ),
        "Shoes": Leaf(
            ("Sneaker", "Boot", "Loafer", "Sandal"),
            ("leather", "canvas", "suede"),
            {"color": COLORS, "size": ("39", "40", "41", "42", "43", "44")},
            (4000, 18000),
        ),
    },
    "Home & Kitchen": {
        "Mugs": Leaf(
            ("Mug", "Cup", "Tumbler"),
            ("stoneware", "porcelain", "enamel"),
            {"color": COLORS, "capacity": ("250 ml", "350 ml", "500 ml")},
            (900, 3200),
        ),
        "Cookware": Leaf(
            ("Frying Pan", "Saucepan", "Dutch Oven", "Wok"),
            ("cast iron", "stainless steel", "carbon steel"),
            {"diameter": ("20 cm", "24 cm", "28 cm")},
            (2500, 16000),
        ),
        "Lighting": Leaf(
            ("Desk Lamp", "Floor Lamp", "Pendant Light"),
            ("brass", "oak", "aluminium"),
            {"color": ("black", "white", "brass")},
            (3500, 22000),
        ),
    },
    "Sports": {
        "Running": Leaf(
            ("Running Shorts", "Running Vest", "Trail Cap"),
            ("mesh", "recycled polyester"),
            {"color": COLORS, "size": SIZES},
            (1800, 6000),
        ),
        "Camping": Leaf(
            ("Tent", "Sleeping Bag", "Camping Stove", "Headlamp"),
            ("ripstop nylon", "down", "titanium"),
            {"capacity": ("1 person", "2 persons", "3 persons")},
            (2500, 45000),
        ),
    },
    "Electronics": {
        "Audio": Leaf(
            ("Headphones", "Earbuds", "Bluetooth Speaker"),
            ("aluminium", "plastic"),
            {"color": ("black", "white", "blue")},
            (3000, 35000),
        ),
        "Accessories": Leaf(
            ("USB-C Cable", "Charger", "Power Bank", "Phone Case"),
            ("braided nylon", "silicone", "aluminium"),
            {"length": ("1 m", "2 m")},
            (900, 7000),
        ),
    },
}
ADJECTIVES = (
    "Classic", "Everyday", "Essential", "Heritage", "Urban", "Alpine", "Coastal", "Studio",
    "Nordic", "Vintage", "Modern", "Compact", "Premium", "Lightweight", "Rugged", "Soft",
)  # fmt: skip
BRANDS = ("Northwind", "Fjord & Co", "Kestrel", "Atlas", "Linden", "Marlow", "Oakridge")
PHRASES = (
    "Made to last and easy to care for.",
    "Designed in small batches with attention to detail.",
    "A favourite of our customers for years.",
    "Pairs well with the rest of the collection.",
    "Tested in real conditions before it reached the shop.",
    "Ships in plastic-free packaging.",
)


async def seed_demo_catalog(
    settings: Settings, *, products: int, if_empty: bool, console: Console
) -> int:
    """Create `products` demo products (and their categories and stock). Returns how many were
    created: 0 when `if_empty` and the catalog already has products."""
    database = Database(settings)
    try:
        async with database.session() as session:
            if if_empty and await session.scalar(select(func.count()).select_from(Product)):
                return 0
        rng = random.Random(products)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            async with database.session() as session:
                leaves = await _categories(session)
            task = progress.add_task("products", total=products)
            stocked: list[str] = []
            async with database.session() as session:
                slugs = set(await session.scalars(select(Product.slug)))
            token = secrets.token_hex(3).upper()
            created = 0
            while created < products:
                count = min(BATCH, products - created)
                async with database.session() as session:
                    skus = await _insert_batch(session, rng, leaves, slugs, token, created, count)
                    await session.commit()
                stocked.extend(skus)
                created += count
                progress.update(task, completed=created)
            # Before stocking, whose SKU look-ups would otherwise scan the variants table.
            await _vacuum_analyze(database, "categories, products, variants")
            await _stock(database, rng, stocked, progress)
        await _vacuum_analyze(database, "stock_levels")
        await _invalidate(settings)
        return created
    finally:
        await database.dispose()


async def _categories(session: AsyncSession) -> list[tuple[Any, Leaf]]:
    """The demo tree, reusing categories a previous run created."""
    existing = {c.slug: c.id for c in await session.scalars(select(Category))}
    leaves: list[tuple[Any, Leaf]] = []
    for top, children in TREE.items():
        top_id = existing.get(slugify(top))
        if top_id is None:
            top_id = new_id()
            session.add(Category(id=top_id, name=top, slug=slugify(top)))
        for name, leaf in children.items():
            leaf_id = existing.get(slugify(name))
            if leaf_id is None:
                leaf_id = new_id()
                session.add(Category(id=leaf_id, name=name, slug=slugify(name), parent_id=top_id))
            leaves.append((leaf_id, leaf))
    await session.commit()
    return leaves


async def _insert_batch(
    session: AsyncSession,
    rng: random.Random,
    leaves: list[tuple[Any, Leaf]],
    slugs: set[str],
    token: str,
    start: int,
    count: int,
) -> list[str]:
    product_rows: list[dict[str, Any]] = []
    variant_rows: list[dict[str, Any]] = []
    now = utcnow()
    for number in range(start, start + count):
        category_id, leaf = rng.choice(leaves)
        material = rng.choice(leaf.materials)
        name = f"{rng.choice(ADJECTIVES)} {material.title()} {rng.choice(leaf.nouns)}"
        base = slugify(name)
        slug, suffix = base, number + 1
        # A second seed draws the same names and numbers as the first: step past its slugs.
        while slug in slugs:
            slug, suffix = f"{base}-{suffix}", suffix + 1
        slugs.add(slug)
        product_id = new_id()
        brand = rng.choice(BRANDS)
        description = f"{name} by {brand}, in {material}. " + " ".join(rng.sample(PHRASES, 2))
        base_price = rng.randrange(*leaf.price_range, 100) - 1
        option_sets = _variant_options(rng, leaf)
        prices = [base_price + 200 * (index % 2) for index in range(len(option_sets))]
        product_rows.append(
            {
                "id": product_id,
                "slug": slug,
                "name": name,
                "description": description,
                "category_id": category_id,
                "attributes": {"brand": brand, "material": material},
                "min_price": min(prices),
                "search_key": search_key(name),
                "created_at": now - timedelta(microseconds=number),
                "updated_at": now,
            }
        )
        for index, (options, price) in enumerate(zip(option_sets, prices, strict=True)):
            variant_rows.append(
                {
                    "id": new_id(),
                    "product_id": product_id,
                    "sku": f"{token}-{number:06d}-{index}",
                    "name": " / ".join(str(value) for value in options.values()) or None,
                    "price": price,
                    "currency": "USD",
                    "attributes": options,
                    "position": index,
                    "created_at": now,
                }
            )
    await session.execute(insert(Product), product_rows)
    await session.execute(insert(Variant), variant_rows)
    return [row["sku"] for row in variant_rows]


def _variant_options(rng: random.Random, leaf: Leaf) -> list[dict[str, str]]:
    """One to four variants, each a distinct combination of the leaf's options."""
    names = list(leaf.options)
    combinations: set[tuple[str, ...]] = set()
    for _ in range(rng.randint(1, 4)):
        combinations.add(tuple(rng.choice(leaf.options[name]) for name in names))
    return [dict(zip(names, values, strict=True)) for values in sorted(combinations)]


async def _stock(
    database: Database, rng: random.Random, skus: list[str], progress: Progress
) -> None:
    from shopkeeper.shop.inventory import service as inventory
    from shopkeeper.shop.inventory.bulk import set_stock_levels

    for code, name, latitude, longitude in WAREHOUSES:
        async with database.session() as session:
            with contextlib.suppress(inventory.WarehouseCodeTaken):
                await inventory.create_warehouse(
                    session, code=code, name=name, latitude=latitude, longitude=longitude
                )
    task = progress.add_task("stock", total=len(skus))
    main, *others = [code for code, *_ in WAREHOUSES]
    for start in range(0, len(skus), STOCK_BATCH):
        batch = skus[start : start + STOCK_BATCH]
        levels: list[tuple[str, str, int]] = []
        for sku in batch:
            # Every SKU can be bought; the other warehouses are sometimes out of it, so orders
            # also get split and routed.
            levels.append((sku, main, rng.choice((3, 8, 15, 40, 120))))
            levels.extend((sku, code, rng.choice((0, 3, 8, 15, 40))) for code in others)
        async with database.session() as session:
            await set_stock_levels(session, levels)
        progress.update(task, completed=start + len(batch))
        if start // STOCK_BATCH % 20 == 19:
            # The table grows faster than autovacuum re-plans it; stale statistics turn each
            # batch's look-up of its rows into a scan of all of them.
            await _vacuum_analyze(database, "stock_levels")


async def _vacuum_analyze(database: Database, tables: str) -> None:
    """Fresh statistics (or the planner takes the bulk-loaded tables for nearly empty, and scans
    them), and GIN pending lists merged (or every search scans them). PostgreSQL only."""
    if database.is_sqlite:
        return
    async with database.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"VACUUM ANALYZE {tables}"))


async def _invalidate(settings: Settings) -> None:
    """Servers already running must not keep serving the catalog as it was."""
    cache = Cache(redis_url=settings.redis_url, namespace=cache_namespace(settings.database))
    try:
        await cache.invalidate({LISTS_TAG, CATEGORIES_TAG})
    finally:
        await cache.close()
