"""What becomes of one leased URL, as data: the crawl's rules a worker holds (`CrawlConfig`), the
outcome the flusher applies (`Outcome`), and the page row and admitted links built from a fetch.
Pure functions: no I/O here."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from typing import Any

from shopkeeper.core.db import utcnow
from shopkeeper.crawl.canonical import InvalidURL, new_url
from shopkeeper.crawl.extract import XML_TYPES, extract
from shopkeeper.crawl.fetch import FetchResult
from shopkeeper.crawl.frontier import Lease, NewURL
from shopkeeper.crawl.models import PageState
from shopkeeper.crawl.scope import Scope
from shopkeeper.crawl.spiders.base import SpiderSpec


@dataclass(frozen=True, slots=True)
class CrawlConfig:
    id: uuid.UUID
    status: str
    scope: Scope
    politeness: dict[str, Any]
    extract: dict[str, Any]
    max_attempts: int
    max_pages: int | None
    loaded_at: float
    spider: SpiderSpec | None = None
    """A `python` spider whose job owns the crawl: its `parse` makes the links and items."""
    job_id: uuid.UUID | None = None
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """What becomes of one lease, applied by the flusher."""

    lease: Lease
    page: dict[str, Any] | None = None
    links: list[NewURL] = field(default_factory=list)
    retry_at: float | None = None
    spend_attempt: bool = False
    items: list[dict[str, Any]] = field(default_factory=list)
    """Items a python spider's `parse` yielded for the page (stored with its job)."""
    job_id: uuid.UUID | None = None


def completed(
    lease: Lease,
    config: CrawlConfig,
    result: FetchResult,
    state: PageState,
    error: str | None,
) -> Outcome:
    page = page_row(lease, state, error=error, result=result)
    links: list[str] = []
    if state == PageState.FETCHED and result.location:
        page["final_url"] = result.location
        links_at = [(result.location, lease.depth)]
    else:
        links_at = []
    wanted = config.extract
    if state == PageState.FETCHED and (result.is_html or result.content_type in XML_TYPES):
        found = extract(
            result.body,
            base_url=result.final_url,
            content_type=result.content_type,
            links=bool(wanted.get("links", True)),
            product=bool(wanted.get("product")),
            fields=wanted.get("fields") or None,
        )
        page["title"] = found.title
        if found.product is not None:
            product = found.product
            page["product"] = {
                "name": product.name,
                "sku": product.sku,
                "price": None if product.price is None else product.price.model_dump(),
                "availability": product.availability,
            }
        if wanted.get("fields"):
            page["fields"] = found.fields
        links = found.links
    links_at.extend((link, lease.depth + 1) for link in links)
    return Outcome(lease, page=page, links=admit(config, links_at))


def admit(config: CrawlConfig, links_at: list[tuple[str, int]]) -> list[NewURL]:
    """The (URL, depth) pairs the crawl's scope admits, canonical and deduplicated."""
    admitted: dict[int, NewURL] = {}
    for link, depth in links_at:
        parts = _canonical_parts(link)
        if parts is None:
            continue
        url, fingerprint, host = parts
        if fingerprint not in admitted and config.scope.admits(url, depth):
            admitted[fingerprint] = NewURL(url, fingerprint, host, depth)
    return list(admitted.values())


@functools.lru_cache(maxsize=1 << 16)
def _canonical_parts(link: str) -> tuple[str, int, str] | None:
    """Canonical URL, fingerprint and authority of a link, None when it is not a valid http(s)
    URL. Remembered: a site's links recur on many of its pages (menus, pagination, the pages
    linking each other), and canonicalising is most of a link's cost."""
    try:
        parts = new_url(link, 0)
    except InvalidURL:
        return None
    return parts.url, parts.fingerprint, parts.host


def page_row(
    lease: Lease,
    state: PageState,
    *,
    error: str | None = None,
    result: FetchResult | None = None,
) -> dict[str, Any]:
    return {
        "crawl_id": lease.crawl_id,
        "fingerprint": lease.fingerprint,
        "url": lease.url,
        "final_url": None if result is None else result.final_url,
        "host": lease.host,
        "state": state.value,
        "status": None if result is None else result.status,
        "depth": lease.depth,
        "attempts": lease.attempts + (0 if state == PageState.ROBOTS_DENIED else 1),
        "title": None,
        "product": None,
        "fields": None,
        "error": error,
        "fetched_at": utcnow(),
    }


def dead_page(url: NewURL, crawl_id: uuid.UUID, error: str) -> dict[str, Any]:
    return {
        "crawl_id": crawl_id,
        "fingerprint": url.fingerprint,
        "url": url.url,
        "final_url": None,
        "host": url.host,
        "state": PageState.DEAD.value,
        "status": None,
        "depth": url.depth,
        "attempts": 0,
        "title": None,
        "product": None,
        "fields": None,
        "error": error,
        "fetched_at": utcnow(),
    }
