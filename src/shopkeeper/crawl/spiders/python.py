"""`python` spiders: a class in an installed package, named by an entry point in the group
`shopkeeper.spiders`, run inside our workers on our frontier.

    # pyproject.toml of the package holding the spider
    [project.entry-points."shopkeeper.spiders"]
    books = "myspiders.books:BooksSpider"

    class BooksSpider:
        description = "Books and their prices"
        scope = {"allow": ["books.toscrape.com"], "max_pages": 500}
        politeness = {"delay_ms": 1000}

        def __init__(self, **args): ...          # the job's args

        async def start(self):                   # yields requests (URLs) and items (dicts)
            yield "https://books.toscrape.com/"

        async def parse(self, response):         # for each page fetched
            for href in response.css("article.product_pod h3 a@href"):
                yield response.urljoin(href)
            if price := response.css_first("p.price_color"):
                yield {"url": response.url, "price": price}

The job's run calls `start()` and queues its requests in the job's crawl; the crawl workers
fetch them under the global politeness and call `parse(response)` on each page, queueing what
it yields that is in scope and storing the items with the job. The run ends when the crawl has
nothing queued or in flight. `parse` runs in whichever worker fetched the page: it must not keep
state between pages (build it from `response` and the args).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import urljoin

import structlog
from selectolax.lexbor import LexborHTMLParser

from shopkeeper.crawl.spiders.base import JobRun, SpiderSpec, spec_from_config

log = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = "shopkeeper.spiders"


@dataclass(frozen=True, slots=True)
class Response:
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    content_type: str | None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def urljoin(self, url: str) -> str:
        return urljoin(self.url, url)

    def css(self, selector: str) -> list[str]:
        """Texts of the matching elements; `css@attr` for an attribute's values."""
        css, _, attribute = selector.partition("@")
        found = []
        for node in LexborHTMLParser(self.text).css(css):
            value = node.attributes.get(attribute) if attribute else node.text(strip=True)
            if value is not None:
                found.append(value)
        return found

    def css_first(self, selector: str) -> str | None:
        values = self.css(selector)
        return values[0] if values else None


class PythonSpider(Protocol):
    def start(self) -> AsyncIterator[str | Mapping[str, Any]]: ...

    def parse(self, response: Response) -> AsyncIterator[str | Mapping[str, Any]]: ...


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def spider_class(spec: SpiderSpec) -> type[Any]:
    return cast(
        type[Any],
        importlib.metadata.EntryPoint(
            name=spec.name, value=str(spec.options["entry_point"]), group=ENTRY_POINT_GROUP
        ).load(),
    )


class PythonKind:
    name = "python"

    def from_config(self, name: str, entry: Mapping[str, Any]) -> SpiderSpec:
        """A spiders-file table naming the class itself: `entry_point = "pkg.module:Class"`
        (the class's own `scope`, `politeness`, ... unless the table gives them)."""
        target = entry.get("entry_point")
        if not isinstance(target, str) or ":" not in target:
            raise ValueError(f"spider {name}: `entry_point` must be 'module:Class'")
        return self._spec(name, target, entry)

    def discover(self) -> Iterable[SpiderSpec]:
        for name, ep in _entry_points().items():
            try:
                yield self._spec(name, ep.value, {})
            except Exception as exc:  # a broken package must not hide the other spiders
                log.warning("crawl_python_spider_unloadable", spider=name, error=repr(exc))

    def _spec(self, name: str, target: str, entry: Mapping[str, Any]) -> SpiderSpec:
        cls = importlib.metadata.EntryPoint(name=name, value=target, group=ENTRY_POINT_GROUP).load()
        merged = {
            "description": (cls.__doc__ or "").strip().split("\n")[0],
            **{
                key: getattr(cls, key)
                for key in ("description", "scope", "politeness", "start_urls", "max_attempts")
                if hasattr(cls, key)
            },
            "extract": {"links": False},
            **entry,
        }
        if merged.get("scope") is None:
            raise ValueError(f"spider {name}: a python spider needs a `scope`")
        return spec_from_config(name, self.name, merged, entry_point=target)

    async def run(self, run: JobRun) -> None:
        spider = make_spider(run.spider, run.args)
        requests, items = await _split(spider.start())
        await run.add_requests(requests)
        await run.add_items(items)
        await run.wait_idle()


def make_spider(spec: SpiderSpec, args: Mapping[str, Any]) -> PythonSpider:
    return cast(PythonSpider, spider_class(spec)(**dict(args)))


async def parse_page(
    spec: SpiderSpec, args: Mapping[str, Any], response: Response
) -> tuple[list[str], list[dict[str, Any]]]:
    """What the spider makes of one fetched page: (absolute URLs to queue, items)."""
    spider = make_spider(spec, args)
    requests, items = await _split(spider.parse(response))
    return [response.urljoin(url) for url in requests], items


async def _split(
    produced: AsyncIterator[str | Mapping[str, Any]],
) -> tuple[list[str], list[dict[str, Any]]]:
    requests: list[str] = []
    items: list[dict[str, Any]] = []
    async for value in produced:
        if isinstance(value, str):
            requests.append(value)
        elif isinstance(value, Mapping):
            items.append(dict(value))
        else:
            raise TypeError(f"a spider yields URLs (str) or items (dict), not {type(value)}")
    return requests, items
