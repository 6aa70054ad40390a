"""The crawl test site's own capacity, and one worker process's fetch + parse + canonicalise rate.

The site (tests/support/crawl_site.py, the same code the tests use) runs in its own process,
serving `--pages` fixed pages with 20 links each on a loopback address. Measured in the same run:

- the site alone, with wrk (`--connections` connections, random pages): the ceiling of any
  crawler benchmark against it on this machine;
- the per-page work of a crawl worker that does not involve the frontier or the database, in one
  process with `--concurrency` concurrent fetches: `Fetcher.fetch` (pooled connections, streamed
  body), `extract` (lexbor links), `new_url` (canonicalise, fingerprint, authority) and
  `Scope.admits` for each of the 20 links. This is the ceiling the worker loop's pages/s is
  measured against (tests/crawl end-to-end figures come from the CRAWL-DOMAIN bench).

Run:  PYTHONPATH=src:. .venv/bin/python bench/crawl_site.py [--append]
`site_process()` is importable by other benches: it yields the roles' base URLs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from tests.support.crawl_site import ROLES
from tests.support.crawl_site_remote import RemoteCrawlSite

from bench.__main__ import ensure_wrk, paths_script, wrk_run
from shopkeeper.crawl.canonical import new_url
from shopkeeper.crawl.extract import extract
from shopkeeper.crawl.fetch import Fetcher
from shopkeeper.crawl.scope import Scope

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@contextlib.contextmanager
def site_process(
    *, bench_pages: int = 1000, big_pages: int = 2000, first_address: int = 40
) -> Iterator[dict[str, str]]:
    """The test site in a child process (its own CPU time, like a real remote site)."""
    with RemoteCrawlSite(
        bench_pages=bench_pages, big_pages=big_pages, first_address=first_address
    ) as site:
        yield {role: site.base(role) for role in ROLES}


async def pipeline(
    base: str, pages: int, concurrency: int, seconds: float
) -> tuple[float, int, float]:
    """Pages per second through fetch + extract + new_url + scope, links handled, and this
    process's CPU milliseconds per page (the figure that does not depend on what else runs)."""
    scope = Scope.from_rules(allow=[base.removeprefix("http://")], max_depth=100)
    counter = 0
    links_seen = 0
    done = 0
    deadline = time.monotonic() + seconds
    async with Fetcher(
        user_agent="shopkeeper-crawler/bench", allow_private=True, max_connections=concurrency
    ) as fetcher:

        async def loop() -> None:
            nonlocal counter, links_seen, done
            while time.monotonic() < deadline:
                counter += 1
                url = f"{base}/b/{counter % pages}"
                result = await fetcher.fetch(url, follow_redirects=False)
                if not result.ok:
                    raise RuntimeError(f"{url}: {result.status} {result.error} {result.detail}")
                found = extract(result.body, base_url=result.final_url)
                for link in found.links:
                    parts = new_url(link, 1)
                    if scope.admits(parts.url, parts.depth):
                        links_seen += 1
                done += 1

        started = time.monotonic()
        cpu = time.process_time()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
        cpu_ms = (time.process_time() - cpu) * 1000 / max(done, 1)
    return done / elapsed, links_seen, cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent fetches")
    parser.add_argument("--append", action="store_true", help="append the figures to RESULTS.md")
    args = parser.parse_args()
    wrk = ensure_wrk()
    load_before = os.getloadavg()
    with site_process(bench_pages=args.pages) as bases, tempfile.TemporaryDirectory() as tmp:
        base = bases["bench"]
        script = paths_script(Path(tmp), "bench", [f"/b/{i}" for i in range(args.pages)])
        site = wrk_run(wrk, "site alone (wrk)", base, script, 2, args.connections, args.duration)
        rate, links, cpu_ms = asyncio.run(
            pipeline(base, args.pages, args.concurrency, args.duration)
        )
        print(
            f"-> fetch + extract + canonicalise: {rate:,.0f} pages/s ({links:,} links), "
            f"{cpu_ms:.2f} ms CPU per page"
        )
        site_again = wrk_run(
            wrk, "site alone (wrk, again)", base, script, 2, args.connections, args.duration
        )
    load_after = os.getloadavg()
    best_site = max(site.rps, site_again.rps)
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — crawl: test site and per-page work",
        "",
        f"- machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; 1-minute load before / after: "
        f"{load_before[0]:.1f} / {load_after[0]:.1f}",
        f"- command: `PYTHONPATH=src:. python bench/crawl_site.py --pages {args.pages} "
        f"--duration {args.duration} --connections {args.connections} "
        f"--concurrency {args.concurrency}`",
        "- site: tests/support/crawl_site.py in its own process (uvicorn + httptools, one "
        "thread), fixed pages of 1.1 kB with 20 links; wrk and the client on the same 2 CPUs",
        "",
        "| measurement | pages/s | vs site alone |",
        "|---|---:|---:|",
        f"| site alone, wrk {args.connections} connections (first) | {site.rps:,.0f} | |",
        f"| site alone, wrk (last) | {site_again.rps:,.0f} | |",
        f"| one process: fetch + extract links + canonicalise/fingerprint/scope 20 links, "
        f"{args.concurrency} concurrent | {rate:,.0f} | {rate / best_site:.0%} |",
        "",
        f"The crawling process used {cpu_ms:.2f} ms of CPU per page (fetch, parse, 20 links "
        f"canonicalised and scope-checked): {1000 / cpu_ms:,.0f} pages/s per fully available core.",
        "",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    if args.append:
        existing = RESULTS.read_text()
        RESULTS.write_text(existing.rstrip("\n") + "\n\n" + text)


if __name__ == "__main__":
    main()
