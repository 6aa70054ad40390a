"""Three worker processes lease from one frontier: politeness holds across them."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import uuid
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from shopkeeper.crawl.frontier.base import Frontier, HostPolicy, NewURL
from tests.crawl.frontier.leaser import Record, lease_in_a_loop
from tests.crawl.frontier.support import FrontierTarget

# Float seconds through the database or Redis (stored to the microsecond there).
CLOCK_SLACK = 2e-6

POLICIES = {
    **{f"slow{n}.test:80": HostPolicy(delay_ms=60, max_inflight=2) for n in range(3)},
    **{f"open{n}.test:80": HostPolicy(delay_ms=0, max_inflight=2) for n in range(2)},
    "wide.test:80": HostPolicy(delay_ms=0, max_inflight=5),
}


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in events:  # at equal times an end (-1) sorts before a start
        current += step
        peak = max(peak, current)
    return peak


async def test_workers_in_three_processes_never_break_politeness(
    frontier: Frontier, target: FrontierTarget, tmp_path: Path
) -> None:
    crawl_id = uuid.uuid4()
    for host, policy in POLICIES.items():
        await frontier.set_host_policy(crawl_id, host, policy)
    await frontier.set_crawl_active(crawl_id, True)
    await frontier.add(
        crawl_id,
        [
            NewURL(f"http://{host}/{n}", hash((host, n)) >> 1, host, 0)
            for host in POLICIES
            for n in range(150)
        ],
    )

    def run_workers() -> list[Record]:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(3, mp_context=spawn) as pool:
            runs = [pool.submit(lease_in_a_loop, target, str(tmp_path), 1.5, n) for n in range(3)]
            return [record for run in runs for record in run.result()]

    records = await asyncio.get_running_loop().run_in_executor(None, run_workers)

    by_host: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_host[record[0]].append(record)
    assert set(by_host) == set(POLICIES)
    assert len({record[3] for record in records}) == len(records)  # no URL leased twice
    for host, policy in POLICIES.items():
        starts = sorted(record[1] for record in by_host[host])
        gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
        assert min(gaps) >= policy.delay_ms / 1000 - CLOCK_SLACK, host
        in_flight = most_at_once([(record[1], record[2]) for record in by_host[host]])
        assert in_flight <= policy.max_inflight, host
    # The workers were busy enough to have tried to break the limits.
    assert most_at_once([(r[1], r[2]) for r in by_host["wide.test:80"]]) >= 3
    assert len(by_host["slow0.test:80"]) >= 10
    counts = await frontier.counts(crawl_id)
    assert counts.in_flight == 0
    assert counts.done == len(records)
