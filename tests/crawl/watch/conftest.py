"""Price-watch tests run like the crawl domain's: SQLite and PostgreSQL with the SQL frontier,
PostgreSQL with the Redis frontier."""

from tests.crawl.domain.conftest import (  # noqa: F401  (fixtures)
    backend,
    client,
    crawl_overrides,
    settings,
)
