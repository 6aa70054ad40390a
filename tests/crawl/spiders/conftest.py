"""Settings, spiders file and client of the scheduling tests (tests/crawl/scheduling.py), and
the test site in its own process (tests/crawl/domain/conftest.py)."""

from tests.crawl.domain.conftest import remote_site, remote_site_server
from tests.crawl.scheduling import client, crawl_overrides, settings, spiders_file

__all__ = [
    "client",
    "crawl_overrides",
    "remote_site",
    "remote_site_server",
    "settings",
    "spiders_file",
]
