"""A `python` spider for the tests: walks the test site's product list pages and yields one
item per product page (its URL and heading)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from shopkeeper.crawl.spiders.python import Response


class ShopSpider:
    """Products of the test shop"""

    politeness = {"delay_ms": 0, "max_inflight_per_host": 4}

    def __init__(self, **args: Any) -> None:
        self.start_url = str(args["start"])

    async def start(self) -> AsyncIterator[str | Mapping[str, Any]]:
        yield self.start_url

    async def parse(self, response: Response) -> AsyncIterator[str | Mapping[str, Any]]:
        if "/products" in response.url:
            for href in response.css("a@href"):
                if href.startswith(("/product/", "/products")):
                    yield response.urljoin(href)
        elif "/product/" in response.url:
            yield {"url": response.url, "title": response.css_first("h1")}
