"""Fixtures of the crawl tests: the local multi-host site (tests/support/crawl_site.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.crawl_site import CrawlSite


@pytest.fixture(scope="session")
def crawl_site_server() -> Iterator[CrawlSite]:
    """One site for the whole run (binding eight addresses takes a moment)."""
    with CrawlSite() as site:
        yield site


@pytest.fixture
def crawl_site(crawl_site_server: CrawlSite) -> Iterator[CrawlSite]:
    """The shared site with empty records and default knobs for this test."""
    crawl_site_server.reset()
    yield crawl_site_server
    crawl_site_server.reset()
