"""The crawl system's own events about jobs (no other system reacts to them yet, so they are
not in `shopkeeper.contracts`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CrawlJobQueued:
    """A job was queued: by a schedule's fire (`schedule_id`, `fire_at`) or a run request."""

    job_id: uuid.UUID
    schedule_id: uuid.UUID | None
    spider: str | None
    fire_at: datetime | None
