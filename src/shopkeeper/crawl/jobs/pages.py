"""Where a job's spider meets the fetch loop: a worker that fetched a page of a `python`
spider's crawl calls the spider's `parse` on it (links it yields are queued when in scope, items
are stored with the job)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import Database
from shopkeeper.crawl.fetch import FetchResult
from shopkeeper.crawl.frontier import Lease
from shopkeeper.crawl.jobs import service
from shopkeeper.crawl.jobs.models import Job
from shopkeeper.crawl.models import PageState
from shopkeeper.crawl.outcomes import CrawlConfig, Outcome, admit
from shopkeeper.crawl.spiders import registry
from shopkeeper.crawl.spiders.base import SpiderSpec
from shopkeeper.crawl.spiders.python import Response, parse_page


@dataclass(frozen=True, slots=True)
class SpiderJob:
    job_id: uuid.UUID
    spider: SpiderSpec
    args: dict[str, Any]


async def spider_job(
    session: AsyncSession, crawl_id: uuid.UUID, spiders_file: Path | None
) -> SpiderJob | None:
    """The python spider whose job owns this crawl, if any."""
    job = await session.scalar(
        select(Job).where(Job.crawl_id == crawl_id, Job.spider.is_not(None)).limit(1)
    )
    if job is None or job.spider is None:
        return None
    spec = registry.spiders(spiders_file).get(job.spider)
    if spec is None or spec.kind != "python":
        return None
    return SpiderJob(job_id=job.id, spider=spec, args=dict(job.args))


async def spider_parse(
    config: CrawlConfig, lease: Lease, result: FetchResult, outcome: Outcome
) -> None:
    """Replace the outcome's links by what the spider's `parse` yields; add its items."""
    assert config.spider is not None and outcome.page is not None
    if outcome.page["state"] != PageState.FETCHED or result.location:
        return
    response = Response(
        url=result.final_url,
        status=result.status or 0,
        headers=result.headers,
        body=result.body,
        content_type=result.content_type,
    )
    urls, items = await parse_page(config.spider, config.args, response)
    outcome.links = admit(config, [(url, lease.depth + 1) for url in urls])
    outcome.items = items
    outcome.job_id = config.job_id


async def store_items(db: Database, outcomes: Sequence[Outcome]) -> None:
    by_job: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        if outcome.job_id is not None:
            by_job.setdefault(outcome.job_id, []).extend(outcome.items)
    for job_id, items in by_job.items():
        await service.add_items(db, job_id=job_id, items=items)
