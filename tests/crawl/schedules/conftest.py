"""Settings, spiders file and client of the scheduling tests (tests/crawl/scheduling.py)."""

from tests.crawl.scheduling import client, crawl_overrides, settings, spiders_file

__all__ = ["client", "crawl_overrides", "settings", "spiders_file"]
