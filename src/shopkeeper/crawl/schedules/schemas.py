"""Bodies of the schedules, jobs and spiders API (API.md, "Schedules, jobs, spiders")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopkeeper.crawl.schemas import CrawlCreate

OverlapName = Literal["skip", "queue", "cancel_previous"]
JobStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled", "dead"]
SpiderKindName = Literal["python", "command", "scrapy"]


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    cron: str = Field(min_length=1, max_length=200)
    """Five fields, or six with seconds first ("*/10 * * * * *")."""
    timezone: str = Field(default="UTC", max_length=64)
    crawl: CrawlCreate | None = None
    spider: str | None = Field(default=None, min_length=1, max_length=200)
    args: dict[str, Any] = Field(default_factory=dict)
    overlap: OverlapName = "skip"
    misfire_grace_s: int = Field(default=300, ge=0, le=30 * 86400)
    enabled: bool = True

    @model_validator(mode="after")
    def one_target(self) -> ScheduleCreate:
        if (self.crawl is None) == (self.spider is None):
            raise ValueError("give exactly one of `crawl` and `spider`")
        return self


class ScheduleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    cron: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    crawl: CrawlCreate | None = None
    spider: str | None = Field(default=None, min_length=1, max_length=200)
    args: dict[str, Any] | None = None
    overlap: OverlapName | None = None
    misfire_grace_s: int | None = Field(default=None, ge=0, le=30 * 86400)
    enabled: bool | None = None

    @model_validator(mode="after")
    def one_target(self) -> ScheduleUpdate:
        if self.crawl is not None and self.spider is not None:
            raise ValueError("give at most one of `crawl` and `spider`")
        return self


class ScheduleOut(BaseModel):
    id: uuid.UUID
    name: str
    cron: str
    timezone: str
    crawl: dict[str, Any] | None
    spider: str | None
    args: dict[str, Any]
    overlap: OverlapName
    misfire_grace_s: int
    enabled: bool
    next_fire_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SchedulePage(BaseModel):
    items: list[ScheduleOut]
    next_cursor: str | None


class JobOut(BaseModel):
    id: uuid.UUID
    schedule_id: uuid.UUID | None
    spider: str | None
    crawl_id: uuid.UUID | None
    status: JobStatusName
    attempts: int
    max_attempts: int
    worker: str | None
    fire_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    stats: dict[str, Any]
    error: str | None


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class SpiderOut(BaseModel):
    name: str
    kind: SpiderKindName
    description: str


class SpiderRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    args: dict[str, Any] = Field(default_factory=dict)


class JobRequests(BaseModel):
    model_config = ConfigDict(extra="forbid")

    urls: list[str] = Field(min_length=1, max_length=10_000)


class JobRequestsAdded(BaseModel):
    added: int
    """URLs new to the job's crawl and in its scope (the others are left out)."""


class JobItems(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


class JobItemsAdded(BaseModel):
    added: int


class JobProgress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stats: dict[str, Any] = Field(default_factory=dict)
    """Merged into the job's `stats`."""
    message: str | None = Field(default=None, max_length=10_000)
    """Logged as one of the job's log lines."""


class JobItemOut(BaseModel):
    id: uuid.UUID
    data: dict[str, Any]
    created_at: datetime


class JobItemPage(BaseModel):
    items: list[JobItemOut]
    next_cursor: str | None
