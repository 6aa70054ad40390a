"""Spiders: named programs a job runs, of several kinds, registered by the deploy.

A spider is never uploaded through the API: its code is installed with the deploy and named in
the spiders file (`SHOPKEEPER_CRAWL_SPIDERS_FILE`, TOML) or, for `python` spiders, by an entry
point in the group `shopkeeper.spiders`. `GET /api/v1/crawl/spiders` lists them.

Plugging in a kind (how `scrapy` joins `python` and `command`):

1. Write a class satisfying `SpiderKind` (`crawl/spiders/base.py`): `name` (the `kind` string),
   `from_config(name, entry)` turning one `[spiders.<name>]` table of the spiders file into a
   `SpiderSpec` (raise `ValueError` for a bad entry), `discover()` for spiders the kind finds
   by itself (entry points; may return nothing), and `async run(run: JobRun)`.
2. Add its import path to `KIND_PATHS` in `crawl/spiders/registry.py` (`scrapy` is named there
   already: `shopkeeper.crawl.scrapy.kind:ScrapyKind`; until that module exists the kind is
   skipped).

`run` gets a `JobRun`: the job's id, attempt, the spec, the args, a logger with `job_id` bound,
the job's crawl (created by the runner from the spec's `scope` / `politeness` / `extract`, so
every request the spider queues with `run.add_requests` is fetched by the crawl workers under
the global per-host politeness), `add_items`, `report` (merges stats into the job), the job's
scoped API token and the API's base URL (for a subprocess reporting through the API), and
`cancelled` (set when the job is cancelled; the runner also cancels the task), and `context`
(the worker's database, frontier and settings). A spec with `fetched_by_workers = false` keeps
its crawl inactive: the crawl workers leave its URLs to the spider, which leases them itself
with `frontier.lease(crawl_id=...)` under the shared per-host slots (Scrapy's downloader).

Return normally: the job succeeded; raise `SpiderFailed` (or anything): it failed, and is not
retried (retries are for a lost worker). The crawl's pages and the items are the job's results.
"""

from shopkeeper.crawl.spiders.base import JobRun, SpiderFailed, SpiderKind, SpiderSpec

__all__ = ["JobRun", "SpiderFailed", "SpiderKind", "SpiderSpec"]
