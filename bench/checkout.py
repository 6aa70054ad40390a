"""Checkout load scenario: orders per second on PostgreSQL with `shopkeeper serve --workers N`.

Self-contained: creates a throw-away PostgreSQL database, migrates it, starts the server,
creates the catalog (SKUs with ample stock) over the API as a staff user, inserts the customers
directly (argon2 logins are not what is measured) and fills one 3-line cart per customer. Then
it measures, at the same concurrency:

- the bare ASGI endpoint of the catalog bench (`bench/bare.py`, same gunicorn + uvicorn setup),
- `GET /health/live` of shopkeeper (routing and middleware, no database), and
- `POST /orders` with an Idempotency-Key, each on its own cart (the number that matters).

With wrk installed (default when found) the load comes from wrk and a Lua script that gives
every request its own customer, cart and key; `--client httpx` uses a Python client instead,
which on 2 CPUs caps every figure at a few hundred requests per second.

Run:  .venv/bin/python bench/checkout.py --orders 5000 --concurrency 32 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from shopkeeper.accounts.models import User
from shopkeeper.core.db import new_id, utcnow
from shopkeeper.core.security import create_access_token, hash_password
from shopkeeper.core.settings import Settings
from shopkeeper.shop.carts.models import Cart, CartItem

ADDRESS = {
    "name": "Bench Buyer",
    "line1": "1 Load Street",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_load(
    count: int, concurrency: int, call: Callable[[int], Awaitable[httpx.Response]]
) -> dict[str, Any]:
    """`count` calls, at most `concurrency` in flight; throughput, latency and status codes."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            response = await call(index)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return {
        "rate": count / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "statuses": dict(statuses),
        "seconds": elapsed,
    }


async def in_batches(count: int, size: int, make: Callable[[int], Awaitable[Any]]) -> list[Any]:
    results: list[Any] = []
    for start in range(0, count, size):
        results.extend(
            await asyncio.gather(*(make(index) for index in range(start, min(count, start + size))))
        )
    return results


async def main(args: argparse.Namespace) -> None:
    # Through make_url, so a server URL with a query (`?host=/var/run/postgresql`) keeps it.
    server_url = make_url(args.postgres_url)
    admin_url = server_url.set(database="postgres").render_as_string(hide_password=False)
    name = f"shopkeeper_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = server_url.set(database=name).render_as_string(hide_password=False)
    var_dir = Path(args.var_dir) / name
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHOPKEEPER_")},
        "SHOPKEEPER_ENVIRONMENT": "production",
        "SHOPKEEPER_DATABASE_URL": database_url,
        "SHOPKEEPER_SECRET_KEY": secret,
        "SHOPKEEPER_SANDBOX_ENABLED": "false",
        "SHOPKEEPER_VAR_DIR": str(var_dir),
        "SHOPKEEPER_HOST": "127.0.0.1",
        "SHOPKEEPER_PORT": str(port),
        "SHOPKEEPER_LOG_LEVEL": "WARNING",
        # The API alone is measured: the outbox relay and handlers belong to `shopkeeper worker`.
        "SHOPKEEPER_RUN_BACKGROUND_IN_PROCESS": "false",
        "SHOPKEEPER_DATABASE_POOL_SIZE": str(args.pool_size),
        "SHOPKEEPER_RESERVATION_TTL_SECONDS": "3600",
    }
    settings = Settings(
        environment="production",
        database_url=database_url,
        secret_key=secret,
        sandbox_enabled=False,
        var_dir=var_dir,
    )
    cli = [sys.executable, "-m", "shopkeeper.cli"]
    server: subprocess.Popen[bytes] | None = None
    bare_server: subprocess.Popen[bytes] | None = None
    wrk = shutil.which("wrk")
    if args.client is None:
        args.client = "wrk" if wrk else "httpx"
    bare_port = free_port()
    try:
        if args.client == "wrk":
            bare_server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "bench.bare:app",
                 "--worker-class", "uvicorn.workers.UvicornWorker",
                 "--workers", str(args.workers), "--bind", f"127.0.0.1:{bare_port}"],
                cwd=Path(__file__).resolve().parent.parent,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
        staff_email, staff_password = "bench-staff@example.com", secrets.token_urlsafe(16)
        subprocess.run(
            [*cli, "users", "create", "--email", staff_email, "--password", staff_password,
             "--staff"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        server_log = (var_dir / "server.log").open("wb")
        server = subprocess.Popen(
            [*cli, "serve", "--workers", str(args.workers)],
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base_url = f"http://127.0.0.1:{port}"
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=512)
        async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
            await wait_until_live(http)
            token = (
                await http.post(
                    "/api/v1/auth/token", data={"username": staff_email, "password": staff_password}
                )
            ).json()["access_token"]
            staff = {"Authorization": f"Bearer {token}"}
            skus = await create_catalog(http, staff, args.skus, stock=args.orders * 3)
            buyers, carts = await create_buyers_and_carts(
                database_url, settings, args.orders, skus, random.Random(7)
            )
            print(f"prepared {len(skus)} SKUs and {len(carts)} 3-line carts", file=sys.stderr)

            if args.client == "wrk":
                assert wrk is not None
                results = await wrk_scenarios(
                    args,
                    wrk,
                    base_url,
                    f"http://127.0.0.1:{bare_port}",
                    buyers,
                    carts,
                    var_dir,
                    server.pid,
                )
            else:
                bare = await run_load(
                    args.orders, args.concurrency, lambda _index: http.get("/health/live")
                )

                def place(index: int) -> Awaitable[httpx.Response]:
                    return http.post(
                        "/api/v1/orders",
                        headers={**buyers[index], "Idempotency-Key": str(uuid.uuid4())},
                        json={"cart_id": carts[index], "shipping_address": ADDRESS},
                    )

                orders = await run_load(args.orders, args.concurrency, place)
                results = [("GET /health/live (shopkeeper)", bare), ("POST /orders", orders)]
        report(args, results)
    finally:
        for process in (server, bare_server):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def wait_until_live(http: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if (await http.get("/health/live")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("server did not start")


async def create_catalog(
    http: httpx.AsyncClient, staff: dict[str, str], count: int, stock: int
) -> list[str]:
    made = await http.post(
        "/api/v1/warehouses", headers=staff, json={"code": "BENCH", "name": "Bench warehouse"}
    )
    made.raise_for_status()

    async def one(index: int) -> str:
        sku = f"BENCH-{index:05d}"
        product = await http.post(
            "/api/v1/products",
            headers=staff,
            json={
                "name": f"Bench product {index}",
                "variants": [{"sku": sku, "price": {"amount": 500 + index, "currency": "USD"}}],
            },
        )
        product.raise_for_status()
        level = await http.put(f"/api/v1/stock/{sku}/BENCH", headers=staff, json={"on_hand": stock})
        level.raise_for_status()
        return sku

    skus: list[str] = await in_batches(count, 20, one)
    return skus


async def create_buyers_and_carts(
    database_url: str, settings: Settings, count: int, skus: list[str], chooser: random.Random
) -> tuple[list[dict[str, str]], list[str]]:
    """Customers and one open 3-line cart each, inserted directly: neither argon2 logins nor
    cart filling is what this bench measures (both have their own tests)."""
    engine = create_async_engine(database_url)
    password_hash = hash_password(secrets.token_urlsafe(12))
    now = utcnow()
    user_ids = [new_id() for _ in range(count)]
    users: list[dict[str, Any]] = [
        {
            "id": user_id,
            "email": f"buyer-{index}@bench.example.com",
            "password_hash": password_hash,
            "full_name": None,
            "is_staff": False,
            "is_active": True,
            "created_at": now,
        }
        for index, user_id in enumerate(user_ids)
    ]
    carts = [
        {"id": new_id(), "user_id": user["id"], "status": "open", "created_at": now,
         "updated_at": now}
        for user in users
    ]  # fmt: skip
    items = [
        {"cart_id": cart["id"], "sku": sku, "quantity": 1, "created_at": now}
        for cart in carts
        for sku in chooser.sample(skus, 3)
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(User), users)
        await connection.execute(insert(Cart), carts)
        await connection.execute(insert(CartItem), items)
    await engine.dispose()
    tokens = [
        {
            "Authorization": "Bearer "
            + create_access_token(settings=settings, user_id=user_id, is_staff=False)
        }
        for user_id in user_ids
    ]
    return tokens, [str(cart["id"]) for cart in carts]


WRK_SCRIPT = r"""
local lines = {}
for line in io.lines(os.getenv("CHECKOUT_FILE")) do lines[#lines + 1] = line end
local threads = {}
local count = 0
function setup(thread)
  count = count + 1
  thread:set("tid", count)
  table.insert(threads, thread)
end
function init(args)
  nthreads = tonumber(os.getenv("WRK_THREADS"))
  index = tid
  created, failed, spare = 0, 0, 0
end
function request()
  if index > #lines then
    return wrk.format("GET", "/health/live")
  end
  local token, cart = lines[index]:match("(%S+) (%S+)")
  index = index + nthreads
  local body = '{"cart_id":"' .. cart .. '","shipping_address":{"name":"Bench Buyer",'
    .. '"line1":"1 Load Street","city":"Springfield","postal_code":"12345","country":"US"}}'
  return wrk.format("POST", "/api/v1/orders", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = cart,
  }, body)
end
function response(status, headers, body)
  if status == 201 then created = created + 1
  elseif status == 200 then spare = spare + 1
  else failed = failed + 1 end
end
function done(summary, latency, requests)
  local c, f, s = 0, 0, 0
  for _, thread in ipairs(threads) do
    c = c + thread:get("created"); f = f + thread:get("failed"); s = s + thread:get("spare")
  end
  io.write(string.format("CHECKOUT created=%d failed=%d spare=%d\n", c, f, s))
end
"""


def wrk_load(
    wrk: str,
    url: str,
    seconds: int,
    concurrency: int,
    env: dict[str, str] | None = None,
    script: Path | None = None,
) -> tuple[dict[str, Any], str]:
    threads = 2
    argv = [wrk, f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    run_env = {**os.environ, **(env or {}), "WRK_THREADS": str(threads)}
    output = subprocess.run(argv, capture_output=True, text=True, check=True, env=run_env).stdout
    rate = requests_per_second(output)
    return {
        "rate": rate,
        "p50_ms": wrk_ms(output, "50"),
        "p99_ms": wrk_ms(output, "99"),
        "statuses": {},
        "seconds": seconds,
    }, output


def requests_per_second(wrk_output: str) -> float:
    found = re.search(r"Requests/sec:\s+([\d.]+)", wrk_output)
    if found is None:
        raise RuntimeError("wrk printed no Requests/sec line:\n" + wrk_output[-2000:])
    return float(found.group(1))


def wrk_ms(output: str, which: str) -> float:
    match = re.search(rf"^\s+{which}%\s+([\d.]+)(us|ms|s)", output, re.MULTILINE)
    if not match:
        return float("nan")
    number, unit = float(match.group(1)), match.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


async def wrk_scenarios(
    args: argparse.Namespace,
    wrk: str,
    base_url: str,
    bare_url: str,
    buyers: list[dict[str, str]],
    carts: list[str],
    var_dir: Path,
    server_pid: int,
) -> list[tuple[str, dict[str, Any]]]:
    checkout_file = var_dir / "checkouts.txt"
    checkout_file.write_text(
        "".join(
            f"{buyer['Authorization'].split()[1]} {cart}\n"
            for buyer, cart in zip(buyers, carts, strict=True)
        )
    )
    script = var_dir / "checkout.lua"
    script.write_text(WRK_SCRIPT)
    bare, _ = wrk_load(wrk, bare_url + "/", args.seconds, args.concurrency)
    live, _ = wrk_load(wrk, base_url + "/health/live", args.seconds, args.concurrency)
    app_pids = process_tree(server_pid)
    app_before, db_before = cpu_seconds(app_pids), cpu_seconds(postgres_pids())
    orders, output = wrk_load(
        wrk, base_url, args.seconds, args.concurrency, {"CHECKOUT_FILE": str(checkout_file)}, script
    )
    app_cpu = cpu_seconds(app_pids) - app_before
    db_cpu = cpu_seconds(postgres_pids()) - db_before
    counts = dict(
        (key, int(value)) for key, value in re.findall(r"(created|failed|spare)=(\d+)", output)
    )
    if counts.get("spare"):
        raise RuntimeError(f"carts ran out during the run ({counts}); raise --orders")
    orders["rate"] = counts.get("created", 0) / args.seconds
    orders["statuses"] = {201: counts.get("created", 0), "other": counts.get("failed", 0)}
    created = max(1, counts.get("created", 0))
    orders["cpu_ms_per_order"] = {
        "shopkeeper processes": 1000 * app_cpu / created,
        "PostgreSQL (all backends)": 1000 * db_cpu / created,
    }
    return [
        ("bare ASGI endpoint (bench/bare.py)", bare),
        ("GET /health/live (shopkeeper, no DB)", live),
        ("POST /orders (3 lines)", orders),
    ]


def report(args: argparse.Namespace, results: list[tuple[str, dict[str, Any]]]) -> None:
    orders = results[-1][1]
    errors = sum(n for status, n in orders["statuses"].items() if status != 201)
    print(
        f"\ncheckout bench: PostgreSQL, serve --workers {args.workers}, client {args.client}, "
        f"concurrency {args.concurrency}, 3-line carts over {args.skus} SKUs, "
        f"load average before {os.getloadavg()[0]:.1f}\n"
    )
    print("| scenario | rate (req/s) | p50 ms | p99 ms | statuses |")
    print("|---|---:|---:|---:|---|")
    for label, result in results:
        print(
            f"| {label} | {result['rate']:.0f} | {result['p50_ms']:.1f} | "
            f"{result['p99_ms']:.1f} | {result['statuses'] or ''} |"
        )
    print(f"\norders/s: {orders['rate']:.0f}; errors: {errors}")
    for who, milliseconds in orders.get("cpu_ms_per_order", {}).items():
        print(f"CPU per order, {who}: {milliseconds:.1f} ms")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the gunicorn master and its workers), from /proc."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            pending.extend(int(child) for child in task.read_text().split())
    return found


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids` (processes that exited meanwhile count as zero)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--orders", type=int, default=6000, help="carts prepared; must outlast the wrk run"
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skus", type=int, default=300)
    parser.add_argument(
        "--pool-size",
        type=int,
        default=None,
        help="connections per worker; default the per-worker concurrency, since overflow "
        "connections are opened and closed per request",
    )
    parser.add_argument("--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432")
    parser.add_argument("--var-dir", default="var/bench")
    parser.add_argument("--client", choices=["wrk", "httpx"], default=None)
    parser.add_argument("--seconds", type=int, default=8, help="wrk: duration of each scenario")
    args = parser.parse_args()
    if args.pool_size is None:
        args.pool_size = -(-args.concurrency // args.workers) + 4
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
