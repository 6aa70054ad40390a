"""`scrapy` spiders: an existing Scrapy project, run unchanged as `scrapy crawl <spider>` in a
subprocess of the worker, with one setting added: our frontier as its scheduler.

Spiders file entry:

    [spiders.books]
    kind = "scrapy"
    project = "/srv/scrapers/books"   # the directory holding scrapy.cfg
    spider = "books"                  # the Scrapy spider's name (default: the entry's name)
    settings = { CONCURRENT_REQUESTS = 8, SHOPKEEPER_DELAY_MS = 1000 }  # optional, -s K=V
    env = { SCRAPY_SETTINGS_MODULE = "books.settings" }                 # optional
    timeout_s = 3600                                                    # optional

The job's arguments become `-a name=value`. Each job crawls in its own frontier crawl
(`SHOPKEEPER_CRAWL=job:<job id>`), so a job retried after its worker was lost resumes where the
killed Scrapy process stopped. Runs like a `command` spider otherwise: its output is the job's
log, exit status 0 is success, cancelling sends SIGTERM. This module does not import Scrapy;
the subprocess does (install `shopkeeper[scrapy]`, or Scrapy in the project's interpreter given
as `python`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from shopkeeper.crawl.spiders.base import JobRun, SpiderSpec, spec_from_config
from shopkeeper.crawl.spiders.command import CommandKind

SCHEDULER = "shopkeeper.crawl.scrapy.Scheduler"


class ScrapyKind:
    name = "scrapy"

    def from_config(self, name: str, entry: Mapping[str, Any]) -> SpiderSpec:
        project = entry.get("project")
        if not isinstance(project, str) or not project:
            raise ValueError(f"spider {name}: `project` must be the directory of scrapy.cfg")
        settings = entry.get("settings", {})
        env = entry.get("env", {})
        if not isinstance(settings, Mapping) or not isinstance(env, Mapping):
            raise ValueError(f"spider {name}: `settings` and `env` must be tables")
        timeout = entry.get("timeout_s")
        return spec_from_config(
            name,
            self.name,
            {key: value for key, value in entry.items() if key != "scope"},
            project=project,
            spider=str(entry.get("spider", name)),
            python=str(entry.get("python", sys.executable)),
            settings={str(k): str(v) for k, v in settings.items()},
            env={str(k): str(v) for k, v in env.items()},
            timeout_s=float(timeout) if timeout is not None else None,
        )

    def discover(self) -> Iterable[SpiderSpec]:
        return ()

    async def run(self, run: JobRun) -> None:
        options = run.spider.options
        spec = replace(
            run.spider,
            options={
                "command": scrapy_command(
                    python=options["python"],
                    spider=options["spider"],
                    crawl=f"job:{run.job_id}",
                    settings=options.get("settings", {}),
                    args=run.args,
                ),
                "cwd": options["project"],
                "env": options.get("env", {}),
                "timeout_s": options.get("timeout_s"),
            },
        )
        await CommandKind().run(_WithSpec(run, spec))


def scrapy_command(
    *,
    python: str,
    spider: str,
    crawl: str,
    settings: Mapping[str, str],
    args: Mapping[str, Any],
) -> list[str]:
    command = [python, "-m", "scrapy", "crawl", spider, "-s", f"SCHEDULER={SCHEDULER}"]
    command += ["-s", f"SHOPKEEPER_CRAWL={crawl}"]
    for key, value in settings.items():
        command += ["-s", f"{key}={value}"]
    for key, value in args.items():
        command += ["-a", f"{key}={value}"]
    return command


class _WithSpec:
    """The job run, seen with another spec (the command the Scrapy spider runs as)."""

    def __init__(self, run: JobRun, spider: SpiderSpec) -> None:
        self._run = run
        self.spider = spider

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run, name)
