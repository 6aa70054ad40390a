"""A leasing worker for the cross-process race test (run in spawned child processes)."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from tests.crawl.frontier.support import FrontierTarget, close_frontier, open_frontier

LEASE_S = 30.0
Record = tuple[str, float, float, str]
"""(host, start: the frontier's clock at the reservation, end: before the URL was completed, url)"""


def lease_in_a_loop(
    target: FrontierTarget, var_dir: str, seconds: float, seed: int
) -> list[Record]:
    return asyncio.run(_loop(target, Path(var_dir), seconds, seed))


async def _loop(target: FrontierTarget, var_dir: Path, seconds: float, seed: int) -> list[Record]:
    frontier = await open_frontier(target, var_dir)
    rng = random.Random(seed)
    records: list[Record] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            leases = await frontier.lease(worker=f"w{seed}", limit=4, lease_seconds=LEASE_S)
            if not leases:
                await asyncio.sleep(0.001)
                continue
            await asyncio.sleep(rng.uniform(0.002, 0.02))  # the fetch
            # The host saw the request end no later than this (same machine, same clock).
            ended = time.time()
            assert all(await frontier.complete(leases))
            records += [(item.host, item.expires_at - LEASE_S, ended, item.url) for item in leases]
    finally:
        await close_frontier(frontier, target, var_dir)
    return records
