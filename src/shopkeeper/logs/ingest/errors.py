"""Why an ingest request stored nothing. Each protocol renders these in its own error format."""

from __future__ import annotations

from shopkeeper.core.errors import DomainError, RateLimited, ServiceUnavailable


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(DomainError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class BadPayload(DomainError):
    status, slug, title = 400, "bad-payload", "Malformed payload"


class IngestOverloaded(RateLimited):
    """The writer holds as many lines as it may; retry after a moment. Nothing was stored."""


class StorageUnavailable(ServiceUnavailable):
    status, slug, title = 503, "log-storage-unavailable", "Log storage unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "The log storage did not take the lines; retry shortly")
        self.headers["Retry-After"] = "1"
