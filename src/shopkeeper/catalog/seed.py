"""Demo catalog for `shopkeeper seed` (being built for the catalog issue)."""

from __future__ import annotations

from rich.console import Console

from shopkeeper.core.settings import Settings


async def seed_demo_catalog(
    settings: Settings, *, products: int, if_empty: bool, console: Console
) -> int:
    return 0
