"""What the crawl system holds for the life of a process: its frontier and robots.txt cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from shopkeeper.core.db import Database
from shopkeeper.core.settings import Settings
from shopkeeper.crawl.frontier import Frontier
from shopkeeper.crawl.frontier.factory import build_frontier
from shopkeeper.crawl.politeness import RobotsCache


@dataclass
class CrawlContext:
    settings: Settings
    db: Database
    frontier: Frontier
    robots: RobotsCache = field(init=False)

    def __post_init__(self) -> None:
        self.robots = RobotsCache(self.db)

    @classmethod
    def build(cls, settings: Settings, db: Database) -> CrawlContext:
        return cls(settings=settings, db=db, frontier=build_frontier(settings, db))

    async def close(self) -> None:
        await self.frontier.close()


async def get_crawl_context(request: Request) -> CrawlContext:
    context: CrawlContext = request.app.state.crawl
    return context


Crawler = Annotated[CrawlContext, Depends(get_crawl_context)]
