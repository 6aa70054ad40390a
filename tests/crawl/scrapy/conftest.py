from tests.crawl.domain.conftest import (  # noqa: F401  (fixtures)
    backend,
    client,
    crawl_overrides,
    remote_site,
    remote_site_server,
    settings,
)
