"""Checkout's cost per order in-process, where machine load cannot move it.

`bench/checkout.py` measures orders/s over HTTP; on a shared 2-CPU machine its figures spread by
a factor of three between runs of the same code. This script runs the app in-process (httpx's
ASGI transport, PostgreSQL in a throw-away database, the same 3-line carts and customers as
`bench/checkout.py`) and reports the CPU time per order; under valgrind (callgrind) it switches
instrumentation on for the measured orders only, so the instruction count per order compares
two versions exactly (the in-process client's share, the same code in both, is included).

Run (from the checkout to measure):

    PYTHONPATH=$PWD/src:$PWD python bench/checkout_profile.py --orders 300
    PYTHONPATH=$PWD/src:$PWD valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file=var/checkout.%p python bench/checkout_profile.py --orders 300 \
        --callgrind    # then: grep ^totals var/checkout.* (instructions), divided by --orders
    ... --profile var/checkout.prof    # cProfile (thread CPU time) of the measured orders
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.checkout import ADDRESS, create_buyers_and_carts, create_catalog
from shopkeeper.app import create_app
from shopkeeper.core.settings import Settings


def callgrind(switch: str) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], check=True)


async def main(args: argparse.Namespace) -> None:
    server_url = make_url(args.postgres_url)
    admin = create_async_engine(
        server_url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    name = f"shopkeeper_profile_{secrets.token_hex(4)}"
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = server_url.set(database=name).render_as_string(hide_password=False)
    password = secrets.token_urlsafe(16)
    environment = {
        "SHOPKEEPER_ENVIRONMENT": "production",
        "SHOPKEEPER_DATABASE_URL": database_url,
        "SHOPKEEPER_SECRET_KEY": secrets.token_urlsafe(48),
        "SHOPKEEPER_SANDBOX_ENABLED": "false",
        "SHOPKEEPER_VAR_DIR": tempfile.mkdtemp(prefix="checkout-profile-"),
        "SHOPKEEPER_LOG_LEVEL": "WARNING",
        "SHOPKEEPER_RUN_BACKGROUND_IN_PROCESS": "false",
        "SHOPKEEPER_LOGS_ENABLED": "false",
        "SHOPKEEPER_CRAWL_ENABLED": "false",
        "SHOPKEEPER_RESERVATION_TTL_SECONDS": "3600",
        "SHOPKEEPER_DATABASE_POOL_SIZE": "12",
    }
    os.environ.update(environment)
    cli = [sys.executable, "-m", "shopkeeper.cli"]
    try:
        subprocess.run([*cli, "migrate"], check=True, capture_output=True)
        subprocess.run(
            [*cli, "users", "create", "--email", "staff@example.com", "--password", password,
             "--staff"],
            check=True, capture_output=True,
        )  # fmt: skip
        settings = Settings()
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as http,
        ):
            token = (
                await http.post(
                    "/api/v1/auth/token",
                    data={"username": "staff@example.com", "password": password},
                )
            ).json()["access_token"]
            staff = {"Authorization": f"Bearer {token}"}
            total = args.orders + args.warm
            skus = await create_catalog(http, staff, args.skus, stock=total * 3)
            buyers, carts = await create_buyers_and_carts(
                database_url, settings, total, skus, random.Random(7)
            )

            async def place(index: int) -> None:
                response = await http.post(
                    "/api/v1/orders",
                    headers={**buyers[index], "Idempotency-Key": str(uuid.uuid4())},
                    json={"cart_id": carts[index], "shipping_address": ADDRESS},
                )
                assert response.status_code == 201, response.text

            for index in range(args.orders, total):
                await place(index)
            pending = iter(range(args.orders))

            async def worker() -> None:
                for index in pending:
                    await place(index)

            profile = cProfile.Profile(time.thread_time) if args.profile else None
            cpu, wall = time.process_time(), time.perf_counter()
            if args.callgrind:
                callgrind("on")
            if profile is not None:
                profile.enable()
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            if profile is not None:
                profile.disable()
                profile.dump_stats(args.profile)
            if args.callgrind:
                callgrind("off")
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"{args.orders} orders: CPU {1000 * cpu / args.orders:.2f} ms/order "
                f"(this process: app and client), wall {1000 * wall / args.orders:.2f} ms/order"
            )
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--warm", type=int, default=30, help="orders placed before measuring")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skus", type=int, default=60)
    parser.add_argument("--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432")
    parser.add_argument("--callgrind", action="store_true", help="running under callgrind")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
