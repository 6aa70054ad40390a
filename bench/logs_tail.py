"""`python -m bench.logs_tail`: what live tail costs ingest, and how soon a line is tailed.

On one embedded `shopkeeper serve` (fresh var dir), `--senders` clients post `--body-mb` NDJSON
bodies for `--duration` seconds at a time, as fast as the server answers (saturating): first an
unmeasured run, then tail-less and tailed runs alternating, tail-less first and last
(`--rounds` tailed runs): tailed ones with issue 14's 20 concurrent tail sessions of different
filters reading (`FILTERS` and the probe's). The ratio compares the means, so a drift of the
machine or of the table (merges grow with it) weighs on both sides alike; every run follows a
saturating one. A/A runs (the "tailed" runs without sessions) gave 86% and 101% with one tailed
run between two tail-less ones and no warm-up: single runs differ by that much. During a tailed
run a probe line is posted every 0.25 s and timed from its POST to its frame; the tail-less runs
post the same one-line bodies, untimed. With `--rate N` (issue 14 says 50,000 lines/s), a tailed
run follows with the senders pacing their bodies to N lines/s in all (the probe's 4 lines/s on
top); then, idle, the probe again. Appends a dated section to bench/RESULTS.md unless
`--no-record`.

A/B against other code: run this file from a checkout of that code (`git archive main | tar -x
-C /tmp/main-tree`, copy this file in): the server runs the `src` beside the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets

from bench.logs_ingest import (
    ROOT,
    bodies,
    free_port,
    load,
    load_figures,
    post_body,
    serve,
    synthetic_lines,
    wait_ready,
)

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def read_key(var_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPKEEPER_")}
    env.update(SHOPKEEPER_VAR_DIR=str(var_dir), PYTHONPATH=str(ROOT / "src"))
    command = [sys.executable, "-m", "shopkeeper.cli", "keys", "create"]
    created = subprocess.run(
        [*command, "--name", "tail", "--scope", "logs:read"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return created.stdout.strip().splitlines()[-1]


def cpu_seconds(pid: int, task: int | None = None) -> float:
    """User + system CPU time of process `pid` so far (all its threads), or of its thread
    `task` (the main thread, which runs the event loop, is `task=pid`), from /proc."""
    where = f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat"
    fields = Path(where).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def insert_counters(url: str) -> tuple[float, float, float]:
    """INSERTs run, their seconds, and lines stored so far, from the server's /metrics."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(url + "/metrics")).text
    found = dict.fromkeys(
        (
            "shopkeeper_logs_insert_seconds_count",
            "shopkeeper_logs_insert_seconds_sum",
            "shopkeeper_logs_lines_stored_total",
        ),
        0.0,
    )
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] = float(value)
    count, seconds, lines = found.values()
    return count, seconds, lines


class CpuMeter:
    """CPU seconds the server and this bench process spent during a phase, per 1,000 lines
    ingested (whether tails cost the server CPU, or the bench's own readers slow its senders),
    and the INSERTs the server ran (whether tails shrink its group-commit rounds)."""

    def __init__(self, server_pid: int, url: str) -> None:
        self.server_pid = server_pid
        self.url = url
        self.phases: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def phase(self, name: str) -> Any:
        """Measures the block; the block puts its load figures in the dict it is given."""
        result: dict[str, Any] = {}
        inserts = await insert_counters(self.url)
        server, bench = cpu_seconds(self.server_pid), cpu_seconds(os.getpid())
        loop = cpu_seconds(self.server_pid, self.server_pid)
        began = time.monotonic()
        yield result
        wall = time.monotonic() - began
        server = cpu_seconds(self.server_pid) - server
        bench = cpu_seconds(os.getpid()) - bench
        loop = cpu_seconds(self.server_pid, self.server_pid) - loop
        count, seconds, stored = (
            b - a for a, b in zip(inserts, await insert_counters(self.url), strict=True)
        )
        lines = max(1, int(result.get("lines", 0)))
        self.phases[name] = (
            f"{name}: server {server / wall:.2f} CPUs, {server / lines * 1e6:.2f} ms/1k lines "
            f"(its event loop's thread {loop / wall:.2f} CPUs, {loop / lines * 1e6:.2f}); "
            f"bench {bench / wall:.2f} CPUs, {bench / lines * 1e6:.2f}; "
            f"{count:.0f} INSERTs of {stored / max(count, 1):,.0f} lines, "
            f"{seconds / max(count, 1) * 1000:.0f} ms each"
        )


def tail_url(url: str, key: str, query: str) -> str:
    params = urlencode({"query": query, "start": str(time.time_ns()), "token": key})
    return url.replace("http://", "ws://") + f"/api/v1/logs/loki/api/v1/tail?{params}"


FILTERS = (
    '{service="checkout"}',
    '{service="payments"} |= "declined"',
    '{service="search"} |= "timeout"',
    '{service="inventory"} |= "stock"',
    '{host="web-3"}',
    '{service="storefront", level="error"}',
    '{service="worker"} | status="500"',
    '{service="checkout"} |= "payment" | path="/orders"',
    '{host="web-7"} |= "retry"',
    '{service="search"} |~ "cache (miss|hit)"',
    '{service="payments", level="warn"}',
    '{service="inventory"} != "debug" |= "reserved"',
    '{service="storefront"} |= "session"',
    '{service="worker"} |= "queued"',
    '{host="web-11", level="error"}',
    '{service="checkout"} |= "shipment" |= "created"',
    '{service="payments"} | path="/checkout"',
    '{service=~"search|inventory"} |= "upstream"',
    '{service="storefront"} |= "price" |= "updated"',
)
"""Nineteen tails of the synthetic lines, all different (whole services, hosts, levels, words,
label filters after the selector), plus the probe's: the issue's 20 concurrent sessions."""
PROBE_QUERY = '{service="probe"}'
LOST_SECONDS = 5.0
"""A probe line not framed by then is lost (its delay counts as this, past any limit)."""


async def with_tails(
    url: str,
    key: str,
    write_key: str,
    payloads: list[bytes],
    args: Any,
    rate: float | None,
    meter: CpuMeter,
    name: str,
) -> Any:
    """Ingest (saturating, or paced to `rate` lines/s) while 20 sessions with different filters
    read; meanwhile a probe line is posted every 0.25 s and timed from its POST to its frame on
    the probe's session."""
    counts = {"received": 0, "dropped": 0}
    delays: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(
                websockets.connect(tail_url(url, key, query), max_size=None)
            )
            for query in FILTERS
        ]

        async def read(socket: Any) -> None:
            while True:
                frame = json.loads(await socket.recv())
                counts["received"] += sum(len(s["values"]) for s in frame["streams"])
                counts["dropped"] += len(frame["dropped_entries"] or [])

        readers = [asyncio.create_task(read(socket)) for socket in sockets]
        probing = asyncio.create_task(probe(url, key, write_key, 10_000, delays, []))
        try:
            await asyncio.sleep(1.5)  # the subscriptions are in place
            async with meter.phase(name) as result:
                if rate is None:
                    result.update(await load(url, write_key, payloads, args.senders, args.duration))
                else:
                    result.update(
                        await paced_load(
                            url, write_key, payloads, args.senders, args.duration, rate
                        )
                    )
            await asyncio.sleep(2)  # the last frames
        finally:
            for task in (probing, *readers):
                task.cancel()
            await asyncio.gather(probing, *readers, return_exceptions=True)
    return result, counts, delays


async def paced_load(
    url: str, key: str, payloads: list[bytes], senders: int, duration: float, rate: float
) -> dict[str, float]:
    """As `load`, but the k-th body (of all senders) is posted no sooner than its lines are due
    at `rate` lines/s from the start: a steady N lines/s as long as the server keeps up (a
    sender behind schedule posts at once, so a slower server shows as a lower rate)."""
    counts = [len(body.splitlines()) for body in payloads]
    begin = time.monotonic()
    stop_at = begin + duration
    accepted = rejected = 0
    scheduled = 0  # lines of the bodies already handed to a sender
    taken = 0
    latencies: list[float] = []

    async def sender() -> None:
        nonlocal accepted, rejected, scheduled, taken
        async with httpx.AsyncClient(timeout=60) as http:
            while True:
                index = taken
                taken += 1
                due = begin + scheduled / rate
                scheduled += counts[index % len(payloads)]
                if due >= stop_at:
                    return
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                body = payloads[index % len(payloads)]
                response = await post_body(http, url, key, body, latencies)
                if response.status_code == 200:
                    accepted += response.json()["accepted"]
                elif response.status_code == 429:
                    rejected += 1
                else:
                    raise RuntimeError(f"{response.status_code}: {response.text[:500]}")

    await asyncio.gather(*(sender() for _ in range(senders)))
    elapsed = time.monotonic() - begin
    return load_figures(accepted, elapsed, latencies, rejected)


async def probe(
    url: str, key: str, write_key: str, probes: int, delays: list[float], answers: list[float]
) -> None:
    """Posts `probes` one-line bodies, 0.25 s apart, each timed to its tail frame."""
    async with (
        websockets.connect(tail_url(url, key, PROBE_QUERY)) as socket,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await asyncio.sleep(1)
        for n in range(probes):
            started = time.perf_counter()
            answer = await http.post(
                "/api/v1/logs/ingest",
                content=json.dumps({"service": "probe", "message": f"probe {n}"}) + "\n",
                headers={"Authorization": f"Bearer {write_key}"},
            )
            answers.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
            try:
                async with asyncio.timeout(LOST_SECONDS):
                    while True:
                        frame = json.loads(await socket.recv())
                        lines = [v[1] for s in frame["streams"] for v in s["values"]]
                        if f"probe {n}" in lines:
                            break
            except TimeoutError:
                pass  # shed by a flooded feed (reported dropped): counted as lost
            delays.append(time.perf_counter() - started)
            await asyncio.sleep(0.25)


@contextlib.asynccontextmanager
async def probe_posts(url: str, write_key: str) -> AsyncIterator[None]:
    """The probe's one-line POSTs, 0.25 s apart, with no tail to time them: the tail-less runs
    carry the same small extra requests as the tailed ones (where each also waits for its frame,
    so fewer are sent there), and the comparison differs by the 20 tail sessions alone."""

    async def post() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for n in itertools.count():
                answer = await http.post(
                    "/api/v1/logs/ingest",
                    content=json.dumps({"service": "probe", "message": f"untimed {n}"}) + "\n",
                    headers={"Authorization": f"Bearer {write_key}"},
                )
                assert answer.status_code == 200, answer.text
                await asyncio.sleep(0.25)

    posting = asyncio.create_task(post())
    try:
        yield
    finally:
        posting.cancel()
        await asyncio.gather(posting, return_exceptions=True)


def probe_figures(delays: dict[str, float]) -> str:
    return (
        f"p50 {delays['p50_ms']:.0f} ms, p99 {delays['p99_ms']:.0f} ms, max "
        f"{delays['max_ms']:.0f} ms ({delays['probes']} probes, {delays['lost']} lost; limit: "
        f"p99 < 1000 ms at 50,000 lines/s)"
    )


def paced_report(
    rate: float, result: dict[str, float], counts: dict[str, int], delays: dict[str, float]
) -> str:
    return (
        f"paced to {rate:,.0f} lines/s with the 20 tails: {result['lines_per_s']:,.0f} lines/s "
        f"ingested (POST p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, "
        f"{result['rejected']} answered 429); the 19 load tails: {counts['received']:,} lines "
        f"received, {counts['dropped']:,} reported dropped\n"
        f"under that paced ingest, POST of a probe line to its tail frame: "
        f"{probe_figures(delays)}\n"
    )


def figures(delays: list[float], answers: list[float] | None = None) -> dict[str, float]:
    ordered = sorted(delays) or [float("nan")]
    result = {
        "probes": len(delays),
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99)] * 1000,
        "max_ms": ordered[-1] * 1000,
        "lost": sum(delay >= LOST_SECONDS for delay in delays),
    }
    if answers:
        result["ingest_p50_ms"] = sorted(answers)[len(answers) // 2] * 1000
    return result


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def merged(results: list[dict[str, Any]]) -> dict[str, float]:
    """Load figures of several runs as one: their lines, their mean rate, their worst p99."""
    return {
        "lines": sum(r["lines"] for r in results),
        "lines_per_s": mean([r["lines_per_s"] for r in results]),
        "p99_ms": max(r["p99_ms"] for r in results),
        "rejected": sum(r["rejected"] for r in results),
    }


async def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    work = Path(tempfile.mkdtemp(prefix="logs-tail-bench-"))
    plain: list[dict[str, Any]] = []
    tailed: list[dict[str, Any]] = []
    counts = {"received": 0, "dropped": 0}
    loaded: list[float] = []
    try:
        payloads = bodies(synthetic_lines(args.lines), int(args.body_mb * 1024 * 1024))
        var_dir = work / "var"
        var_dir.mkdir()
        load_before = os.getloadavg()[0]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server, write_key = serve(var_dir, port, background_jobs=False)
        try:
            key = read_key(var_dir)
            await wait_ready(url)
            # Unmeasured: every measured run then follows a saturating one, with the merges
            # it leaves behind (a run on an empty table is ~10% faster than the next).
            await load(url, write_key, payloads, args.senders, args.duration)
            meter = CpuMeter(server.pid, url)
            for n in range(args.rounds * 2 + 1):
                if n % 2 == 0:
                    async with (
                        meter.phase(f"tail-less {n // 2 + 1}") as result,
                        probe_posts(url, write_key),
                    ):
                        result.update(
                            await load(url, write_key, payloads, args.senders, args.duration)
                        )
                    plain.append(result)
                else:
                    result, some, delays = await with_tails(
                        url, key, write_key, payloads, args, None, meter, f"tails {n // 2 + 1}"
                    )
                    tailed.append(result)
                    counts = {k: counts[k] + some[k] for k in counts}
                    loaded += delays
            paced: Any = None
            if args.rate:
                result, some, delays = await with_tails(
                    url, key, write_key, payloads, args, args.rate, meter, "paced with tails"
                )
                paced = (result, some, figures(delays))
            idle_delays: list[float] = []
            answers: list[float] = []
            await probe(url, key, write_key, args.probes, idle_delays, answers)
            idle = figures(idle_delays, answers)
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()[0]
    without, with_ = merged(plain), merged(tailed)
    ratio = with_["lines_per_s"] / without["lines_per_s"]
    report = (
        "ingest without a tail: "
        + " / ".join(f"{r['lines_per_s']:,.0f}" for r in plain)
        + f" lines/s, mean {without['lines_per_s']:,.0f} (p99 {without['p99_ms']:.0f} ms)\n"
        "ingest with 20 tails of different filters: "
        + " / ".join(f"{r['lines_per_s']:,.0f}" for r in tailed)
        + f" lines/s, mean {with_['lines_per_s']:,.0f} = {ratio:.1%} of the tail-less mean "
        f"(limit: >= 90%; runs alternate, so the machine's drift cancels; p99 "
        f"{with_['p99_ms']:.0f} ms, {with_['rejected']} answered 429)\n"
        f"the 19 load tails: {counts['received']:,} lines received, {counts['dropped']:,} "
        f"reported dropped, of {with_['lines']:,} ingested\n"
        f"under that (saturating) ingest, POST of a probe line to its tail frame: "
        f"{probe_figures(figures(loaded))}\n"
        + (paced_report(args.rate, *paced) if paced else "")
        + f"idle, POST of a probe line to its tail frame: p50 {idle['p50_ms']:.0f} ms, "
        f"p99 {idle['p99_ms']:.0f} ms ({idle['probes']} probes, {idle['lost']} lost; "
        f"the POST alone p50 "
        f"{idle['ingest_p50_ms']:.0f} ms)\n"
        "CPU during each run: " + "\n  ".join(meter.phases.values())
    )
    print(report)
    if args.record:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = "python -m bench.logs_tail " + " ".join(sys.argv[1:])
        RESULTS.open("a").write(
            f"\n### Logs live tail, {stamp}\n\n"
            f"Machine: {platform.node()}, {os.cpu_count()} CPUs, 1-minute load average "
            f"{load_before:.1f} at the start, {load1:.1f} at the end (other engineers' test "
            f"suites share the machine). Command: `{command}`.\n\n```\n{report}\n```\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logs_tail", description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000, help="distinct lines generated")
    parser.add_argument("--body-mb", type=float, default=1.0)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument(
        "--rounds", type=int, default=2, help="tailed runs, each between two tail-less ones"
    )
    parser.add_argument(
        "--rate", type=float, help="also measure the probe under ingest paced to this many lines/s"
    )
    parser.add_argument("--no-record", dest="record", action="store_false")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
