"""Scrapy on our frontier: `SCHEDULER = "shopkeeper.crawl.scrapy.Scheduler"` makes an unchanged
Scrapy project queue, deduplicate and lease its requests through the shared frontier, under the
global per-host politeness (see `scheduler.py`, docs/crawl.md).

Scrapy is an optional dependency (`shopkeeper[scrapy]`): nothing here imports it until the
scheduler class is asked for, so the package tree can be walked (models, handlers) without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Scheduler"]


def __getattr__(name: str) -> Any:
    if name == "Scheduler":
        from shopkeeper.crawl.scrapy.scheduler import Scheduler

        return Scheduler
    raise AttributeError(name)
