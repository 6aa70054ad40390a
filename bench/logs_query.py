"""`python -m bench.logs_query`: LogQL through the Loki API on 10 million stored lines (embedded
chDB), each query beside the same compiled SQL run directly on chDB in the same run.

Steps: generate `--lines` lines over the last 24 h straight into a fresh chDB directory with
`INSERT ... SELECT FROM numbers()` (ClickHouse builds the content: services, levels, hosts,
messages from a 300-word vocabulary with ids and durations, trace ids on half the lines, a rare
word on a handful, attributes); `OPTIMIZE FINAL` and read bytes per line from `system.parts`;
time each query's compiled SQL on chDB directly (the engine's limit); start `shopkeeper serve`
(one process owns the directory), then per query: single-request latency (median of
`--repeats` sequential requests after a warm-up) and p50/p99/throughput with `--clients`
concurrent clients for `--duration` seconds. Appends a dated section to bench/RESULTS.md
unless `--no-record`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from bench.logs_ingest import free_port, wait_ready

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
NS = 1_000_000_000
DAY_NS = 86_400 * NS

_WORDS = (  # noqa: SIM905 - a vocabulary reads better as text
    "request handled cache miss hit upstream timeout retry queued user session token payment "
    "declined accepted stock reserved released shipment created updated deleted price order "
    "cart checkout search product category inventory warehouse worker job started finished "
    "failed succeeded connection pool database query slow fast latency response status "
    "redirect login logout password reset email sent bounced webhook callback signature "
    "verified invalid expired refund capture authorize void customer address shipping tax "
    "voucher discount applied removed listing detail image thumbnail resized uploaded "
    "download export import scheduled cron lease heartbeat renewed lost acquired lock unlock "
    "deadlock detected rollback commit transaction isolation serializable conflict rate "
    "limit exceeded allowed blocked banned robots fetched crawled parsed extracted item "
    "pipeline dropped kept queue enqueued dequeued acked nacked redelivered broker consumer "
    "producer partition offset committed rebalance shard replica primary leader follower "
    "elected election snapshot compaction merge part mutation ttl retention expired archived "
    "restored backup healthy unhealthy degraded ready live probe metrics scrape alert firing "
    "resolved notify pager warning notice debug trace span parent child root context "
    "propagated baggage header cookie csrf cors origin preflight options head get post put "
    "patch delete body json xml form multipart gzip deflate brotli chunked keepalive closed "
    "reset refused unreachable dns resolved tls handshake certificate renewed client server "
    "proxy gateway balancer route "
).split()
RARE_WORD = "zyxrareword"
COMMON_WORD = "timeout"


def generate_sql(table: str, words: int) -> str:
    """The INSERT that makes the data set: everything computed by ClickHouse from `number`."""
    return f"""
INSERT INTO {table} (tenant, service, host, level, source, timestamp, observed_at, message,
                     trace_id, span_id, attributes, label_keys)
SELECT
    'default',
    ['shop', 'shop', 'shop', 'checkout', 'payments', 'search', 'crawler', 'worker', 'api',
     'shopkeeper'][1 + (cityHash64(number, 1) % 10)] AS service,
    concat('web-', toString(1 + cityHash64(number, 2) % 12)),
    ['info', 'info', 'info', 'info', 'info', 'info', 'info', 'info', 'info', 'info', 'info',
     'debug', 'debug', 'debug', 'warn', 'warn', 'error', 'fatal'][1 + (cityHash64(number, 3) % 18)],
    'ndjson',
    fromUnixTimestamp64Nano(
        toInt64({{now:Int64}} - number * {{spacing:UInt64}}), 'UTC'),
    now64(9, 'UTC'),
    concat(
        if(number % 2000000 = 777, '{RARE_WORD} ', ''),
        splitByChar(' ', {{words:String}})[1 + cityHash64(number, 4) % {words}], ' ',
        splitByChar(' ', {{words:String}})[1 + cityHash64(number, 5) % {words}], ' ',
        if(cityHash64(number, 6) % 200 = 0, '{COMMON_WORD} ', ''),
        splitByChar(' ', {{words:String}})[1 + cityHash64(number, 7) % {words}], ' ',
        splitByChar(' ', {{words:String}})[1 + cityHash64(number, 8) % {words}],
        ' order=', toString(cityHash64(number, 9) % 1000000),
        ' user=', toString(cityHash64(number, 10) % 50000),
        ' path=/api/v1/', splitByChar(' ', {{words:String}})[1 + cityHash64(number, 11) % {words}],
        ' took ', toString(cityHash64(number, 12) % 2000), 'ms'),
    if(number % 2 = 0, lower(hex(sipHash128(number))), ''),
    if(number % 2 = 0, lower(hex(cityHash64(number, 13))), ''),
    map('http.status',
        toString([200, 200, 200, 201, 304, 404, 500][1 + cityHash64(number, 14) % 7]),
        'region', ['eu', 'us', 'ap'][1 + cityHash64(number, 15) % 3]),
    ['region']
FROM numbers({{lines:UInt64}})
"""


@dataclass
class Query:
    name: str
    logql: str
    since_ns: int
    limit: int
    step: str | None
    target_ms: float


def queries(trace_id: str) -> list[Query]:
    return [
        Query("rare word, last 24 h", f'{{service=~".+"}} |= "{RARE_WORD}"', DAY_NS, 100, None, 50),
        Query(
            "newest 100 lines with a word, last hour",
            f'{{service="shop"}} |= "{COMMON_WORD}"',
            3600 * NS,
            100,
            None,
            50,
        ),
        Query(
            "trace_id lookup, last 24 h",
            f'{{service=~".+"}} | trace_id="{trace_id}"',
            DAY_NS,
            100,
            None,
            50,
        ),
        Query(
            'sum by (level) (count_over_time({service="shop"}[1m])), 24 h, step 1m',
            'sum by (level) (count_over_time({service="shop"}[1m]))',
            DAY_NS,
            100,
            "60",
            1000,
        ),
    ]


def build(logs_dir: Path, lines: int) -> dict[str, float | str]:
    """Generates the data set into `logs_dir`, or reuses one generated there before (its
    generation time is kept beside it: the queries' windows end then)."""
    from chdb import session

    from shopkeeper.logs.store import schema

    stamp = logs_dir.parent / "bench-generated-at"
    generated = optimized = 0.0
    db = session.Session(str(logs_dir))
    table = f"{schema.DEFAULT_DATABASE}.{schema.TABLE}"
    try:
        if stamp.exists():
            now = int(stamp.read_text())
        else:
            now = time.time_ns()
            for statement in schema.create_table_sql(schema.DEFAULT_DATABASE, 14):
                db.query(statement)
            started = time.perf_counter()
            db.query(
                generate_sql(table, len(_WORDS)),
                params={
                    "now": now,
                    "lines": lines,
                    "spacing": DAY_NS // lines,
                    "words": " ".join(_WORDS),
                },
            )
            generated = time.perf_counter() - started
            started = time.perf_counter()
            db.query(f"OPTIMIZE TABLE {table} FINAL")
            optimized = time.perf_counter() - started
            stamp.write_text(str(now))
        stats = orjson.loads(
            db.query(
                "SELECT sum(rows) AS rows, sum(bytes_on_disk) AS disk, "
                "sum(data_uncompressed_bytes) AS raw, "
                "sum(secondary_indices_compressed_bytes) AS indexes, count() AS parts "
                "FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active",
                "JSONEachRow",
                params={"db": schema.DEFAULT_DATABASE, "t": schema.TABLE},
            ).bytes()
        )
        message_bytes = orjson.loads(
            db.query(f"SELECT avg(length(message)) AS m FROM {table}", "JSONEachRow").bytes()
        )["m"]
        trace_id = orjson.loads(
            db.query(
                f"SELECT trace_id FROM {table} WHERE trace_id != '' "
                "ORDER BY timestamp DESC LIMIT 1 OFFSET 123456",
                "JSONEachRow",
            ).bytes()
        )["trace_id"]
    finally:
        db.close()
    rows = int(stats["rows"])
    return {
        "now": now,
        "rows": rows,
        "generate_s": generated,
        "optimize_s": optimized,
        "bytes_per_line": int(stats["disk"]) / rows,
        "index_bytes_per_line": int(stats["indexes"]) / rows,
        "message_bytes": float(message_bytes),
        "parts": int(stats["parts"]),
        "trace_id": trace_id,
    }


def engine_times(logs_dir: Path, items: list[Query], now: int, repeats: int) -> list[float]:
    """Each query's compiled SQL run on chDB in this process: the floor under the API's time."""
    from chdb import session

    from shopkeeper.logs.query import ast
    from shopkeeper.logs.query.compiler import (
        Params,
        bucket_counts_sql,
        compile_log_query,
        log_rows_sql,
    )
    from shopkeeper.logs.query.parser import parse

    db = session.Session(str(logs_dir))
    out = []
    try:
        for item in items:
            expr = parse(item.logql)
            params = Params()
            start, end = now - item.since_ns, now
            if isinstance(expr, ast.LogQuery):
                compiled = compile_log_query(expr, params)
                sql = log_rows_sql("shopkeeper_logs.logs", compiled, backward=True)
                values = {"start": start, "end": end, "limit": item.limit, "offset": 0}
            else:
                assert isinstance(expr, ast.VectorAggregation)
                inner = expr.inner
                assert isinstance(inner, ast.RangeAggregation)
                compiled = compile_log_query(inner.query, params)
                sql = bucket_counts_sql(
                    "shopkeeper_logs.logs", compiled, group_by=("level",), with_bytes=False
                )
                values = {
                    "start": start - inner.range_ns + 1,
                    "end": end + 1,
                    "origin": start - 2 * inner.range_ns,
                    "width": inner.range_ns,
                    "limit": 1_000_001,
                }
            bound = {**params.values, **values, "tenant": "default"}
            db.query(sql, "JSONEachRow", params=bound)  # warm
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                db.query(sql, "JSONEachRow", params=bound)
                times.append(time.perf_counter() - started)
            out.append(statistics.median(times) * 1000)
    finally:
        db.close()
    return out


def _env(var_dir: Path, port: int | None = None, *, background_jobs: bool = True) -> dict[str, str]:
    """The environment of an embedded `shopkeeper serve` on `var_dir` (default: `make run`'s
    in-process background jobs and crawl worker; without them when `background_jobs` is off)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPKEEPER_")}
    env.update(
        SHOPKEEPER_VAR_DIR=str(var_dir),
        SHOPKEEPER_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT / "src"),
    )
    if not background_jobs:
        env.update(
            SHOPKEEPER_RUN_BACKGROUND_IN_PROCESS="false", SHOPKEEPER_CRAWL_INPROCESS_WORKER="false"
        )
    if port is not None:
        env["SHOPKEEPER_PORT"] = str(port)
    return env


def serve(var_dir: Path, port: int, *, background_jobs: bool) -> subprocess.Popen[bytes]:
    """`shopkeeper serve` (migrated first): one process, owning the chDB directory."""
    cli = [sys.executable, "-m", "shopkeeper.cli"]
    env = _env(var_dir, port, background_jobs=background_jobs)
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
    log = (var_dir / "serve.log").open("wb")
    return subprocess.Popen([*cli, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)


def read_key(var_dir: Path) -> str:
    """A `logs:read` key in the served app's database (`shopkeeper keys create`)."""
    command = ["keys", "create", "--name", "bench", "--scope", "logs:read"]
    created = subprocess.run(
        [sys.executable, "-m", "shopkeeper.cli", *command],
        env=_env(var_dir),
        check=True,
        capture_output=True,
        text=True,
    )
    return created.stdout.strip().splitlines()[-1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far, all its threads (chDB's included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    url: str,
    key: str,
    item: Query,
    now: int,
    *,
    server_pid: int,
    repeats: int,
    clients: int,
    duration: float,
) -> dict[str, float]:
    params: dict[str, str] = {"query": item.logql, "limit": str(item.limit)}
    if item.step:
        params["step"] = item.step
    path = url + "/api/v1/logs/loki/api/v1/query_range"

    def window() -> dict[str, str]:
        return {"start": str(now - item.since_ns), "end": str(now)}

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        first = await http.get(path, params={**params, **window()})
        first.raise_for_status()
        data = first.json()["data"]
        found = sum(len(s.get("values", [])) for s in data["result"])
        single = []
        # The server's CPU per sequential request: what a request costs, whatever the load.
        cpu_before = cpu_seconds(server_pid)
        for _ in range(repeats):
            started = time.perf_counter()
            response = await http.get(path, params={**params, **window()})
            single.append(time.perf_counter() - started)
            response.raise_for_status()
        server_cpu = (cpu_seconds(server_pid) - cpu_before) / repeats

    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + duration

    async def client() -> None:
        nonlocal errors
        async with httpx.AsyncClient(timeout=60, headers=headers) as http:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                response = await http.get(path, params={**params, **window()})
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors += 1

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "found": found,
        "single_ms": statistics.median(single) * 1000,
        "server_cpu_ms": server_cpu * 1000,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "rps": len(latencies) / elapsed,
        "errors": errors,
    }


async def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    work = Path(tempfile.mkdtemp(prefix="logs-query-bench-"))
    rows: list[str] = []
    try:
        var_dir = Path(args.keep) if args.keep else work / "var"
        var_dir.mkdir(parents=True, exist_ok=True)
        data = build(var_dir / "logs", args.lines)
        now = int(data["now"])
        if data["generate_s"]:
            print(
                f"generated {data['rows']:,} lines in {data['generate_s']:.1f} s "
                f"(OPTIMIZE FINAL {data['optimize_s']:.1f} s)"
            )
        items = queries(str(data["trace_id"]))
        engine = engine_times(var_dir / "logs", items, now, args.repeats)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = serve(var_dir, port, background_jobs=args.background_jobs)
        try:
            await wait_ready(url)
            key = read_key(var_dir)
            for item, floor in zip(items, engine, strict=True):
                result = await measure(
                    url,
                    key,
                    item,
                    now,
                    server_pid=server.pid,
                    repeats=args.repeats,
                    clients=args.clients,
                    duration=args.duration,
                )
                line = (
                    f"| {item.name} | {result['found']} | **{result['single_ms']:.1f} ms** "
                    f"(target < {item.target_ms:.0f} ms) | {floor:.1f} ms | "
                    f"{result['server_cpu_ms']:.1f} ms | "
                    f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f} ms | "
                    f"{result['rps']:.0f} | {result['errors']} |"
                )
                print(line)
                rows.append(line)
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()[0]
    header = (
        "| query | lines (log query) or points (metric) | single request (median of "
        f"{args.repeats}) | same SQL on chDB directly | server CPU per request | "
        f"p50 / p99 at {args.clients} clients | req/s | errors |\n|---|---|---|---|---|---|---|---|"
    )
    made = (
        f"generated in {data['generate_s']:.1f} s (OPTIMIZE FINAL {data['optimize_s']:.1f} s)"
        if data["generate_s"]
        else "reused from an earlier run (`--keep`)"
    )
    storage = (
        f"{data['rows']:,} lines over 24 h {made}, {data['parts']} parts; storage "
        f"**{data['bytes_per_line']:.1f} bytes per line** on disk (target < 50), of which text "
        f"index and blooms {data['index_bytes_per_line']:.1f}; messages average "
        f"{data['message_bytes']:.0f} bytes"
    )
    print(storage)
    if args.record:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = "python -m bench.logs_query " + " ".join(sys.argv[1:])
        jobs = "" if args.background_jobs else ", no in-process background jobs"
        with RESULTS.open("a") as results:
            results.write(
                f"\n### Logs query (Loki API), {stamp}\n\n"
                f"Machine: {platform.node()}, {os.cpu_count()} CPUs, load average {load1:.1f} "
                f"at the end. Command: `{command}`. One `shopkeeper serve` process (embedded "
                f"chDB{jobs}); clients in the bench process over HTTP.\n\n{storage}.\n\n"
                f"{header}\n" + "\n".join(rows) + "\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logs_query", description=__doc__)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="var dir to generate the data set into and keep (reused when already there)",
    )
    parser.add_argument(
        "--no-background-jobs",
        dest="background_jobs",
        action="store_false",
        help="serve without the in-process outbox relay, periodic jobs and crawl worker "
        "(`make run` has them), to see what they cost the queries",
    )
    parser.add_argument("--no-record", dest="record", action="store_false")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
