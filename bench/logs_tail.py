"""`python -m bench.logs_tail`: what live tail costs ingest, and how soon a line is tailed.

On one embedded `shopkeeper serve` (fresh var dir), `--senders` clients post `--body-mb` NDJSON
bodies for `--duration` seconds three times: without a tail, then with two tails of every line
open (one reading, one that never reads: the flooded and the stalled subscriber), then without
again (the machine's speed drifts; the better of the two tail-less runs is the reference).
Then, idle, one line at a time is posted while a tail reads it: from the POST to the frame.
Appends a dated section to bench/RESULTS.md unless `--no-record`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets

from bench.logs_ingest import ROOT, bodies, free_port, load, serve, synthetic_lines, wait_ready

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


def tail_url(url: str, key: str, query: str) -> str:
    params = urlencode({"query": query, "start": str(time.time_ns()), "token": key})
    return url.replace("http://", "ws://") + f"/api/v1/logs/loki/api/v1/tail?{params}"


async def with_tails(url: str, key: str, write_key: str, payloads: list[bytes], args: Any) -> Any:
    counts = {"received": 0, "dropped": 0}
    query = '{service=~".+"}'
    async with (
        websockets.connect(tail_url(url, key, query), max_size=None) as reading,
        websockets.connect(tail_url(url, key, query), max_size=None, max_queue=1),
    ):

        async def read() -> None:
            while True:
                frame = json.loads(await reading.recv())
                counts["received"] += sum(len(s["values"]) for s in frame["streams"])
                counts["dropped"] += len(frame["dropped_entries"] or [])

        reader = asyncio.create_task(read())
        try:
            result = await load(url, write_key, payloads, args.senders, args.duration)
            await asyncio.sleep(2)  # the last frames
        finally:
            reader.cancel()
    return result, counts


async def latency(url: str, key: str, write_key: str, probes: int) -> dict[str, float]:
    delays: list[float] = []
    answers: list[float] = []
    async with (
        websockets.connect(tail_url(url, key, '{service="probe"}')) as socket,
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
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
                lines = [v[1] for s in frame["streams"] for v in s["values"]]
                if f"probe {n}" in lines:
                    break
            delays.append(time.perf_counter() - started)
            await asyncio.sleep(0.25)
    delays.sort()
    answers.sort()
    return {
        "p50_ms": delays[len(delays) // 2] * 1000,
        "p99_ms": delays[int(len(delays) * 0.99)] * 1000,
        "ingest_p50_ms": answers[len(answers) // 2] * 1000,
    }


async def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    work = Path(tempfile.mkdtemp(prefix="logs-tail-bench-"))
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
            await load(url, write_key, payloads[:2], args.senders, 2)  # warm-up
            before = await load(url, write_key, payloads, args.senders, args.duration)
            tailed, counts = await with_tails(url, key, write_key, payloads, args)
            after = await load(url, write_key, payloads, args.senders, args.duration)
            delay = await latency(url, key, write_key, args.probes)
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    reference = max(before["lines_per_s"], after["lines_per_s"])
    load1 = os.getloadavg()[0]
    report = (
        f"ingest without a tail: {before['lines_per_s']:,.0f} lines/s before, "
        f"{after['lines_per_s']:,.0f} after (p99 {before['p99_ms']:.0f} / "
        f"{after['p99_ms']:.0f} ms)\n"
        f"ingest with a reading and a stalled tail of every line: "
        f"{tailed['lines_per_s']:,.0f} lines/s, {tailed['lines_per_s'] / reference:.0%} of the "
        f"better tail-less run (p99 {tailed['p99_ms']:.0f} ms, {tailed['rejected']} answered 429)\n"
        f"the reading tail: {counts['received']:,} lines received, {counts['dropped']:,} reported "
        f"dropped, of {tailed['lines']:,} ingested\n"
        f"idle, POST of one line to its tail frame: p50 {delay['p50_ms']:.0f} ms, "
        f"p99 {delay['p99_ms']:.0f} ms ({args.probes} probes; the POST alone p50 "
        f"{delay['ingest_p50_ms']:.0f} ms)"
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
    parser.add_argument("--no-record", dest="record", action="store_false")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
