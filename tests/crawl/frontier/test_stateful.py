"""The frontier against a model: random sequences of add, lease, complete, retry and expiry."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from shopkeeper.crawl.frontier.base import Frontier, HostPolicy, Lease, NewURL
from tests.crawl.frontier.support import FrontierTarget, close_frontier, open_frontier

HOSTS = ("a", "b", "c")
MAX_INFLIGHT = 2


def run_machine(target: FrontierTarget, var_dir: Path) -> None:
    loop = asyncio.new_event_loop()
    frontier: Frontier = loop.run_until_complete(open_frontier(target, var_dir))

    class FrontierMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.crawl_id = uuid.uuid4()
            prefix = secrets.token_hex(4)
            self.hosts = [f"{prefix}-{name}.test:80" for name in HOSTS]
            self.seen: dict[int, NewURL] = {}
            self.queued: set[int] = set()
            self.attempts: dict[int, int] = {}
            self.held: dict[int, Lease] = {}
            self.stale: list[Lease] = []
            self.done: set[int] = set()
            for host in self.hosts:
                self.run(frontier.set_host_policy(self.crawl_id, host, HostPolicy(0, MAX_INFLIGHT)))
            self.run(frontier.set_crawl_active(self.crawl_id, True))

        def run(self, awaitable: Any) -> Any:
            return loop.run_until_complete(awaitable)

        def teardown(self) -> None:
            # Leases are global across crawls: the next example must not see this one's URLs.
            self.run(frontier.drop_crawl(self.crawl_id))

        @rule(
            picks=st.lists(
                st.tuples(st.integers(0, 2), st.integers(-(2**63), 2**63 - 1)), max_size=6
            ),
            again=st.booleans(),
        )
        def add(self, picks: list[tuple[int, int]], again: bool) -> None:
            urls = [NewURL(f"http://{self.hosts[h]}/{fp}", fp, self.hosts[h], 0) for h, fp in picks]
            if again and self.seen:
                urls.append(next(iter(self.seen.values())))
            new = {url.fingerprint: url for url in urls if url.fingerprint not in self.seen}
            added = self.run(frontier.add(self.crawl_id, urls))
            assert added == len(new), (added, urls, sorted(self.seen))
            self.seen.update(new)
            self.queued |= set(new)
            self.attempts.update(dict.fromkeys(new, 0))

        @rule(limit=st.integers(1, 8))
        def lease(self, limit: int) -> None:
            leases = self.run(frontier.lease(worker="model", limit=limit, lease_seconds=30))
            for item in leases:
                assert item.crawl_id == self.crawl_id
                assert item.fingerprint in self.queued
                assert item.attempts == self.attempts[item.fingerprint]
                self.queued.remove(item.fingerprint)
                self.held[item.fingerprint] = item
            per_host: dict[str, int] = {}
            for item in self.held.values():
                per_host[item.host] = per_host.get(item.host, 0) + 1
            assert all(count <= MAX_INFLIGHT for count in per_host.values())
            # Nothing leasable was left behind: every host with queued URLs is full.
            if len(leases) < limit:
                for fp in self.queued:
                    assert per_host.get(self.seen[fp].host, 0) == MAX_INFLIGHT

        @rule(data=st.data())
        def complete(self, data: st.DataObject) -> None:
            if not self.held:
                return
            fp = data.draw(st.sampled_from(sorted(self.held)))
            item = self.held.pop(fp)
            assert self.run(frontier.complete([item])) == [True]
            self.done.add(fp)
            self.stale.append(item)

        @rule(data=st.data(), spend=st.booleans())
        def retry(self, data: st.DataObject, spend: bool) -> None:
            if not self.held:
                return
            fp = data.draw(st.sampled_from(sorted(self.held)))
            item = self.held.pop(fp)
            assert self.run(frontier.retry(item, not_before=0, spend_attempt=spend))
            self.queued.add(fp)
            self.attempts[fp] += 1 if spend else 0
            self.stale.append(item)

        @rule()
        def expire_all(self) -> None:
            # Renewing to a lease time of zero expires every held lease at once.
            held = list(self.held.values())
            assert self.run(frontier.renew(held, 0)) == [True] * len(held)
            assert self.run(frontier.reap()) == len(held)
            for item in held:
                self.queued.add(item.fingerprint)
                self.attempts[item.fingerprint] += 1
            self.stale += held
            self.held.clear()

        @rule(data=st.data())
        def stale_token_does_nothing(self, data: st.DataObject) -> None:
            if not self.stale:
                return
            item = data.draw(st.sampled_from(self.stale))
            assert self.run(frontier.complete([item])) == [False]
            assert self.run(frontier.retry(item, not_before=0, spend_attempt=True)) is False
            assert self.run(frontier.renew([item], 30)) == [False]

        @invariant()
        def counts_match_the_model(self) -> None:
            counts = self.run(frontier.counts(self.crawl_id))
            assert (counts.seen, counts.queued, counts.in_flight, counts.done) == (
                len(self.seen),
                len(self.queued),
                len(self.held),
                len(self.done),
            )

        @invariant()
        def hosts_count_their_leases(self) -> None:
            states = {state.host: state for state in self.run(frontier.hosts(self.crawl_id))}
            for host in self.hosts:
                held = sum(1 for item in self.held.values() if item.host == host)
                assert states[host].in_flight == held

    try:
        FrontierMachine.TestCase.settings = settings(
            max_examples=8,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        FrontierMachine.TestCase().runTest()
    finally:
        loop.run_until_complete(close_frontier(frontier, target, var_dir, clean=True))
        loop.close()


@pytest.fixture
def machine_target(frontier_target: FrontierTarget) -> FrontierTarget:
    if frontier_target.kind == "redis":
        return FrontierTarget("redis", frontier_target.url, f"sktest-{secrets.token_hex(4)}")
    return frontier_target


def test_frontier_follows_its_model(machine_target: FrontierTarget, tmp_path: Path) -> None:
    run_machine(machine_target, tmp_path)
