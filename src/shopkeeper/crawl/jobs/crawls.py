"""The crawl a spider job's requests go to: created from the spider's scope, politeness and
extract, fed by the spider (its requests) and ended by the job (never by idleness: a spider may
add more at any time while it runs)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import update

from shopkeeper.core.db import affected_rows, utcnow
from shopkeeper.crawl import service
from shopkeeper.crawl.canonical import InvalidURL, new_url
from shopkeeper.crawl.context import CrawlContext
from shopkeeper.crawl.frontier import NewURL
from shopkeeper.crawl.models import Crawl, CrawlStatus
from shopkeeper.crawl.schemas import ExtractIn, PolitenessIn, ScopeIn
from shopkeeper.crawl.spiders.base import SpiderSpec


async def open_job_crawl(
    context: CrawlContext, *, job_id: uuid.UUID, spec: SpiderSpec
) -> uuid.UUID:
    """A new crawl named after the spider and the job, its start URLs queued."""
    scope = ScopeIn.model_validate(dict(spec.scope or {}))
    politeness = PolitenessIn.model_validate(dict(spec.politeness))
    extract = ExtractIn.model_validate(dict(spec.extract))
    service.compile_scope(scope.model_dump())  # ValueError for a rule that does not compile
    crawl = Crawl(
        name=f"{spec.name} job {job_id}",
        status=CrawlStatus.QUEUED,
        seeds=list(spec.start_urls),
        scope=scope.model_dump(),
        politeness=politeness.model_dump(),
        extract=extract.model_dump(),
        max_attempts=3,
    )
    async with context.db.session() as session:
        session.add(crawl)
        await session.commit()
    if spec.fetched_by_workers:
        await context.frontier.set_crawl_active(crawl.id, True)
    await add_requests(context, crawl_id=crawl.id, urls=spec.start_urls)
    return crawl.id


async def add_requests(context: CrawlContext, *, crawl_id: uuid.UUID, urls: Sequence[str]) -> int:
    """Queue the URLs that are valid and in the crawl's scope (depth 0); how many were new.
    Leaves out the others silently: a spider's links are often outside its scope."""
    async with context.db.session() as session:
        crawl = await session.get(Crawl, crawl_id)
    if crawl is None or crawl.status not in service.LIVE:
        return 0
    scope = service.compile_scope(crawl.scope)
    admitted: dict[int, NewURL] = {}
    for raw in urls:
        try:
            parts = new_url(raw, 0)
        except InvalidURL:
            continue
        if scope.admits(parts.url, 0):
            admitted.setdefault(parts.fingerprint, NewURL(*parts))
    if not admitted:
        return 0
    policy = service.host_policy(crawl.politeness)
    for host in sorted({url.host for url in admitted.values()}):
        await context.frontier.set_host_policy(crawl_id, host, policy)
    return await context.frontier.add(crawl_id, list(admitted.values()))


async def close_job_crawl(context: CrawlContext, *, crawl_id: uuid.UUID) -> None:
    """The job ended: its crawl is finished, whatever it still had queued is dropped."""
    async with context.db.session() as session:
        result = await session.execute(
            update(Crawl)
            .where(Crawl.id == crawl_id, Crawl.status.in_(service.LIVE))
            .values(status=CrawlStatus.FINISHED, finished_at=utcnow(), updated_at=utcnow())
        )
        await session.commit()
    if affected_rows(result):
        await context.frontier.drop_crawl(crawl_id)


async def is_idle(context: CrawlContext, crawl_id: uuid.UUID) -> bool:
    counts = await context.frontier.counts(crawl_id)
    return counts.queued == 0 and counts.in_flight == 0
