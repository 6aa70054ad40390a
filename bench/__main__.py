"""`make bench` / `python -m bench`: load scenarios against `shopkeeper serve --workers N` on
PostgreSQL with a large catalog, each beside a bare ASGI endpoint measured in the same run.

Steps: check wrk (installs it with apt-get when missing and allowed), make sure the catalog
has `--products` products (migrate + seed otherwise), start shopkeeper and the bare app the same
way (gunicorn + uvicorn workers), warm up, run each scenario for `--duration` seconds, read the
workers' peak memory, and append a dated section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/shopkeeper_bench"
SEARCH_TERMS = (
    "shirt", "tshrit", "leather boot", "mug", "cofee", "lamp", "tent", "headphones",
    "merino", "jacket", "stoneware cup", "power bank", "sneker", "wok", "fleece",
)  # fmt: skip
SCENARIOS = ("detail", "listing", "uncached-listing", "search")


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    note: str = ""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--search-connections",
        type=int,
        default=8,
        help="closed-loop search connections (8 saturate a 2-CPU machine)",
    )
    parser.add_argument(
        "--search-rate",
        type=float,
        default=None,
        help="open-loop search arrivals per second (default: half the closed-loop throughput)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {', '.join(SCENARIOS)} (the bare endpoint always runs)",
    )
    parser.add_argument("--no-record", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    asyncio.run(run(args))


async def run(args: argparse.Namespace) -> None:
    wrk = ensure_wrk()
    load_before = os.getloadavg()
    env = shop_env(args)
    await ensure_catalog(args, env)
    shop_port, bare_port = free_port(), free_port()
    shop = start(
        [sys.executable, "-m", "shopkeeper.cli", "serve", "--workers", str(args.workers),
         "--host", "127.0.0.1", "--port", str(shop_port)],
        env,
    )  # fmt: skip
    bare = start(
        [sys.executable, "-m", "gunicorn", "bench.bare:app", "--worker-class",
         "uvicorn.workers.UvicornWorker", "--workers", str(args.workers),
         "--bind", f"127.0.0.1:{bare_port}", "--log-level", "warning"],
        {**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    shop_url, bare_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{bare_port}"
    try:
        await wait_ready(shop_url + "/health/live")
        await wait_ready(bare_url + "/")
        ids, categories = await sample(shop_url)
        results: list[Result] = []
        common = (args.threads, args.connections, args.duration)

        with tempfile.TemporaryDirectory() as scripts:
            folder = Path(scripts)
            detail_paths = [f"/api/v1/products/{i}" for i in ids]
            listing_paths = [
                f"/api/v1/products?limit=20&category={slug}&sort={sort}"
                for slug in categories
                for sort in ("price", "-price", "name", "-created_at")
            ]
            await warm(shop_url, detail_paths + listing_paths)

            chosen = set(args.scenarios.split(","))
            results.append(wrk_run(wrk, "bare ASGI endpoint (fixed JSON)", bare_url, "/", *common))
            # Scenario key, its name in the report, and the wrk script it runs (built only when
            # the scenario is chosen).
            plain_scenarios: list[tuple[str, str, Callable[[], Path]]] = [
                (
                    "detail",
                    "product detail, cached",
                    lambda: paths_script(folder, "detail", detail_paths),
                ),
                (
                    "listing",
                    "listing 20/page, cached",
                    lambda: paths_script(folder, "list", listing_paths),
                ),
                (
                    "uncached-listing",
                    "listing ~20/page by category and sort, uncached",
                    lambda: uncached_listing_script(folder, categories),
                ),
            ]
            for key, name, script in plain_scenarios:
                if key in chosen:
                    results.append(wrk_run(wrk, name, shop_url, script(), *common))
            if "search" in chosen:
                saturated = wrk_run(
                    wrk,
                    f"search, uncached, {args.search_connections} connections closed loop "
                    "(saturated)",
                    shop_url,
                    search_script(folder),
                    args.threads,
                    args.search_connections,
                    args.duration,
                )
                results.append(saturated)
                # Moderate load: arrivals at half (and a quarter) of what the machine sustains
                # with 8 busy connections, unless --search-rate fixes one rate.
                rates = (
                    [args.search_rate]
                    if args.search_rate
                    else [round(saturated.rps * share) for share in (0.5, 0.25)]
                )
                # Unrecorded warm-up with as many connections as the other scenarios use: the
                # open loop's bursts of Poisson arrivals need more concurrent requests than the
                # 8 closed-loop connections did, and each worker then opens further pooled
                # database connections. A new PostgreSQL backend costs ~5 ms to connect and
                # ~30 ms for its first search (catalog caches, text search dictionaries,
                # statement preparation); in a measured window, every backend opened showed up
                # as a cluster of slow requests. The open-loop figures are a warm server's.
                wrk_run(
                    wrk,
                    f"search warm-up, {args.connections} connections (not recorded)",
                    shop_url,
                    search_script(folder),
                    args.threads,
                    args.connections,
                    min(args.duration, 5),
                )
                for rate in rates:
                    share = f"{rate / saturated.rps:.0%} of the saturated throughput"
                    results.append(
                        await open_loop_search(
                            shop_url,
                            rate,
                            args.duration,
                            f"search, uncached, open loop at {rate:,.0f} req/s ({share})",
                        )
                    )
            results.append(wrk_run(wrk, "bare ASGI endpoint (again)", bare_url, "/", *common))
        memory = worker_peak_memory(shop.pid)
    finally:
        stop(shop)
        stop(bare)
    report(args, results, memory, (load_before, os.getloadavg()))


# --- setup ---------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("installing wrk with apt-get ...", flush=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is required: apt-get install -y wrk (or brew install wrk)")
    return found


def shop_env(args: argparse.Namespace) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOPKEEPER_")}
    env.update(
        SHOPKEEPER_ENVIRONMENT="production",
        SHOPKEEPER_DATABASE_URL=args.database_url,
        SHOPKEEPER_REDIS_URL=args.redis_url,
        SHOPKEEPER_SECRET_KEY=secrets.token_urlsafe(48),
        SHOPKEEPER_SANDBOX_ENABLED="false",
        SHOPKEEPER_LOG_LEVEL="WARNING",
        # The outbox relay and jobs run in `shopkeeper worker` in production; the bench
        # measures the API processes alone.
        SHOPKEEPER_RUN_BACKGROUND_IN_PROCESS="false",
        SHOPKEEPER_VAR_DIR=str(Path(tempfile.gettempdir()) / "shopkeeper-bench"),
        SHOPKEEPER_CACHE_TTL_SECONDS="3600",
        # Enough pooled connections for the load's concurrency: beyond the pool, SQLAlchemy's
        # overflow connections are opened and closed per request, which measures reconnects.
        SHOPKEEPER_DATABASE_POOL_SIZE=str(max(10, args.connections // args.workers)),
    )
    return env


async def ensure_catalog(args: argparse.Namespace, env: dict[str, str]) -> None:
    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    # make_url, not string splitting: a Unix-socket URL carries `?host=/var/run/postgresql`.
    url = make_url(args.database_url)
    name = url.database
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        exists = await connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        )
        if not exists:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    cli = [sys.executable, "-m", "shopkeeper.cli"]
    subprocess.run([*cli, "migrate"], env=env, check=True)
    engine = create_async_engine(args.database_url)
    async with engine.connect() as connection:
        have = await connection.scalar(
            text("SELECT count(*) FROM products WHERE archived_at IS NULL")
        )
    await engine.dispose()
    if have < args.products:
        print(f"seeding {args.products - have} products ...", flush=True)
        subprocess.run([*cli, "seed", "--products", str(args.products - have)], env=env, check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


async def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    sys.exit(f"{url} did not come up")


async def sample(base: str) -> tuple[list[str], list[str]]:
    """1,000 product ids spread over the catalog, and every category slug."""
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        categories = [c["slug"] for c in (await http.get("/api/v1/categories")).json()]
        for slug in categories:
            page = (await http.get(f"/api/v1/products?limit=100&category={slug}")).json()
            ids.extend(item["id"] for item in page["items"])
    random.Random(1).shuffle(ids)
    return ids[:1000], categories


async def warm(base: str, paths: list[str]) -> None:
    """Fill both workers' L1 (requests land on either, so each path is asked several times)."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        for _ in range(4):
            for start_at in range(0, len(paths), 64):
                batch = paths[start_at : start_at + 64]
                await asyncio.gather(*(http.get(path) for path in batch))


# --- wrk -----------------------------------------------------------------------------------


def paths_script(folder: Path, name: str, paths: list[str]) -> Path:
    quoted = ",\n".join(f'  "{path}"' for path in paths)
    script = folder / f"{name}.lua"
    script.write_text(
        f"paths = {{\n{quoted}\n}}\n"
        "request = function()\n"
        "  return wrk.format('GET', paths[math.random(#paths)])\n"
        "end\n"
    )
    return script


# wrk's Lua states start from the same random seed in every run and every thread: a
# "throwaway" random parameter would repeat earlier runs' URLs and be answered from Redis (L2).
# Each request gets a run token, the thread's number and a counter instead.
UNIQUE_LUA = """
token = "{token}"
threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
counter = 0
unique = function()
  counter = counter + 1
  return token .. "-" .. id .. "-" .. counter
end
init = function(args)
  math.randomseed(os.time() + id)
end
"""


def _unique_lua() -> str:
    return UNIQUE_LUA.format(token=secrets.token_hex(6))


def uncached_listing_script(folder: Path, categories: list[str]) -> Path:
    quoted = ", ".join(f'"{slug}"' for slug in categories)
    script = folder / "uncached.lua"
    script.write_text(
        _unique_lua() + f"cats = {{{quoted}}}\n"
        "sorts = {'price', '-price', 'name', '-created_at'}\n"
        "request = function()\n"
        "  -- a never-repeated parameter makes every URL new: no cache hit\n"
        "  local path = '/api/v1/products?category=' .. cats[math.random(#cats)] ..\n"
        "    '&sort=' .. sorts[math.random(#sorts)] .. '&limit=' .. math.random(15, 25) ..\n"
        "    '&x=' .. unique()\n"
        "  return wrk.format('GET', path)\n"
        "end\n"
    )
    return script


def search_script(folder: Path) -> Path:
    quoted = ", ".join(f'"{term.replace(" ", "%20")}"' for term in SEARCH_TERMS)
    script = folder / "search.lua"
    script.write_text(
        _unique_lua() + f"terms = {{{quoted}}}\n"
        "request = function()\n"
        "  -- a never-repeated parameter makes every URL new: no cache hit, the database works\n"
        "  local path = '/api/v1/products?q=' .. terms[math.random(#terms)] ..\n"
        "    '&limit=' .. math.random(10, 30) .. '&x=' .. unique()\n"
        "  return wrk.format('GET', path)\n"
        "end\n"
    )
    return script


def wrk_run(
    wrk: str, name: str, base: str, target: str | Path, threads: int, connections: int, seconds: int
) -> Result:
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if isinstance(target, Path):
        argv += ["-s", str(target), base]
    else:
        argv.append(base + target)
    print(f"-> {name}", flush=True)
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = requests_per_second(output)
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    print(f"   {rps:,.0f} req/s  p50 {percentile(output, '50')}  p99 {percentile(output, '99')}")
    return Result(
        name, rps, to_ms(percentile(output, "50")), to_ms(percentile(output, "99")), errors
    )


def requests_per_second(wrk_output: str) -> float:
    found = re.search(r"Requests/sec:\s+([\d.]+)", wrk_output)
    if found is None:
        raise RuntimeError("wrk printed no Requests/sec line:\n" + wrk_output[-2000:])
    return float(found.group(1))


# --- open loop ------------------------------------------------------------------------------


async def open_loop_search(base: str, rate: float, seconds: int, name: str) -> Result:
    """Search requests arriving at `rate` per second (Poisson), whatever the server's pace.

    wrk keeps a fixed number of connections busy (a closed loop): on a saturated machine it
    measures queueing, and a slow server slows the arrivals. Here arrivals follow a schedule,
    each request goes out on an idle keep-alive connection (a new one when none is idle), and
    latency counts from the scheduled time, so a stalled server is not excused by a client
    that waited for it (no coordinated omission). The client is a few lines of asyncio on raw
    sockets, lighter than wrk per request; it shares the machine's CPUs like wrk does.
    """
    host, port = base.removeprefix("http://").split(":")
    rng = random.Random(2)
    token = secrets.token_hex(6)  # URLs of earlier runs may still be in Redis
    sent = 0
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies: list[float] = []
    by_term: dict[str, list[float]] = {term: [] for term in SEARCH_TERMS}
    errors = 0

    async def one(scheduled: float, term: str) -> None:
        nonlocal errors, sent
        sent += 1
        path = (
            f"/api/v1/products?q={term.replace(' ', '%20')}&limit={rng.randint(10, 30)}"
            f"&x={token}-{sent}"
        )
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        head = ""
        # A kept-alive connection the server has closed in the meantime (uvicorn's keep-alive
        # is 5 s) fails before a byte arrives; that request is sent again on a new connection.
        for reused in (bool(idle), False):
            try:
                if reused:
                    reader, writer = idle.pop()
                else:
                    reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(request)
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
                length = re.search(r"content-length:\s*(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                break
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                if reused and isinstance(exc, asyncio.IncompleteReadError) and not exc.partial:
                    writer.close()
                    continue
                errors += 1
                return
        else:
            errors += 1
            return
        elapsed = (loop.time() - scheduled) * 1000
        if not head.startswith("http/1.1 200"):
            errors += 1
        latencies.append(elapsed)
        by_term[term].append(elapsed)
        if "connection: close" in head:
            writer.close()
        else:
            idle.append((reader, writer))

    print(f"-> {name}", flush=True)
    tasks: set[asyncio.Task[None]] = set()
    # The client's own garbage collections (8-12 ms full passes, gc.callbacks probe) would be
    # counted as server latency: collect once, then none while the schedule runs.
    gc.collect()
    gc.disable()
    try:
        started = loop.time() + 0.1
        scheduled = started
        while True:
            scheduled += rng.expovariate(rate)
            if scheduled >= started + seconds:
                break
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            task = asyncio.create_task(one(scheduled, rng.choice(SEARCH_TERMS)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    finally:
        gc.enable()
    elapsed = loop.time() - started
    for _, writer in idle:
        writer.close()
    p50, p99 = _quantile(latencies, 0.50), _quantile(latencies, 0.99)
    slowest = sorted(
        ((term, _quantile(values, 0.99)) for term, values in by_term.items() if values),
        key=lambda pair: -pair[1],
    )[:4]
    note = "slowest terms by p99: " + ", ".join(f"`{t}` {ms:.0f} ms" for t, ms in slowest)
    print(f"   {len(latencies) / elapsed:,.0f} req/s  p50 {p50:.2f}ms  p99 {p99:.2f}ms  ({note})")
    return Result(name, len(latencies) / elapsed, p50, p99, errors, note)


def _quantile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def percentile(output: str, which: str) -> str:
    match = re.search(rf"^\s+{which}%\s+(\S+)", output, re.MULTILINE)
    return match.group(1) if match else "?"


def to_ms(value: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", value)
    if not match:
        return float("nan")
    number, unit = float(match.group(1)), match.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


# --- memory and report ---------------------------------------------------------------------


def worker_peak_memory(master_pid: int) -> list[tuple[int, float]]:
    """(pid, peak resident MiB) of each gunicorn worker, from /proc (Linux)."""
    peaks: list[tuple[int, float]] = []
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    if not children.exists():
        return peaks
    for pid in children.read_text().split():
        status = Path(f"/proc/{pid}/status")
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append((int(pid), int(line.split()[1]) / 1024))
    return peaks


def report(
    args: argparse.Namespace,
    results: list[Result],
    memory: list[tuple[int, float]],
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> None:
    bare = max(r.rps for r in results if r.name.startswith("bare"))
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{_memory_total()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        f"- command: `python -m bench --products {args.products} --workers {args.workers} "
        + (f"--database-url '{args.database_url}' " if args.database_url != DEFAULT_DB else "")
        + f"--duration {args.duration} --connections {args.connections} "
        f"--search-connections {args.search_connections}"
        + (f" --search-rate {args.search_rate:g}" if args.search_rate else "")
        + (f" --scenarios {args.scenarios}" if args.scenarios != ",".join(SCENARIOS) else "")
        + "`",
        f"- catalog: {args.products:,} products on PostgreSQL ({_transport(args.database_url)}); "
        "Redis L2; load generators (wrk, and "
        "an asyncio open-loop client with Poisson arrivals for the search rates) on the same "
        "machine (they compete with the servers for the same CPUs); every uncached URL is new "
        "(a run token in the query)",
        f"- 1-minute load average before / after the run: {load[0][0]:.1f} / {load[1][0]:.1f} "
        "(other work on the machine inflates every figure; the ratios are the comparable part)",
        "",
        "| scenario | req/s | vs bare | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = r.rps / bare
        lines.append(
            f"| {r.name} | {r.rps:,.0f} | {ratio:.0%} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.errors} |"
        )
    lines.append("")
    for r in results:
        if r.note:
            lines.append(f"{r.name}: {r.note}")
            lines.append("")
    lines.append(
        "Peak memory per worker (VmHWM): "
        + (", ".join(f"{mib:.0f} MiB" for _, mib in memory) or "unavailable")
    )
    lines.append("")
    text = "\n".join(lines)
    print("\n" + text)
    if not args.no_record:
        existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
        RESULTS.write_text(existing.rstrip("\n") + "\n\n" + text)


def _transport(database_url: str) -> str:
    """How the servers reach PostgreSQL: a Unix socket skips the TCP loopback's kernel work."""
    from sqlalchemy import make_url

    url = make_url(database_url)
    host = url.query.get("host") or url.host or ""
    socket_dir = host if isinstance(host, str) else host[0]
    if not url.host and (not socket_dir or socket_dir.startswith("/")):
        return f"Unix socket {socket_dir or '(libpq default)'}"
    return f"TCP {url.host}:{url.port or 5432}"


def _memory_total() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    return "RAM unknown"


if __name__ == "__main__":
    main()
