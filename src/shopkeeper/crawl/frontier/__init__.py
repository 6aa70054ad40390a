"""The URL frontier: what to fetch next, when each host allows it, and who holds each URL."""

from shopkeeper.crawl.frontier.base import (
    Frontier,
    FrontierCounts,
    HostPolicy,
    HostState,
    Lease,
    NewURL,
)

__all__ = ["Frontier", "FrontierCounts", "HostPolicy", "HostState", "Lease", "NewURL"]
