"""What the frontier cannot hold of a Scrapy request: the request itself (method, headers, body,
meta, callback name), stored when it is queued and read when it is leased."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base


class ScrapyRequest(Base):
    __tablename__ = "crawl_scrapy_requests"

    crawl_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("crawl_crawls.id", ondelete="CASCADE"), primary_key=True
    )
    fingerprint: Mapped[int] = mapped_column(BigInteger(), primary_key=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary(), nullable=False)
    """`pickle` of `Request.to_dict(spider=...)`, written and read by the crawl's own
    Scrapy processes only."""
