"""The `shopkeeper` command: serve, migrate, seed, users, worker, scheduler."""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

import typer
from rich.console import Console

from shopkeeper.core.observability import add_process_log_shipper
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings, get_settings
from shopkeeper.crawl import cli as crawl_cli

app = typer.Typer(help="shopkeeper: an e-commerce backend.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(crawl_cli.app, name="crawl")
console = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface; default SHOPKEEPER_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Port; default SHOPKEEPER_PORT")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes; >1 runs gunicorn")] = 1,
) -> None:
    """Serve the API. Never migrates or seeds: run `migrate` (and `seed`) first."""
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    if workers == 1:
        import uvicorn

        uvicorn.run(
            "shopkeeper.app:create_app",
            factory=True,
            host=host,
            port=port,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            access_log=False,
            log_level=settings.log_level.lower(),
        )
        return
    # gunicorn's workers each build their own app; their metrics meet in one directory.
    metrics_dir = settings.var_dir.resolve() / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    arguments = [
        sys.executable, "-m", "gunicorn", "shopkeeper.app:create_app()",
        "--worker-class", "uvicorn.workers.UvicornWorker",
        "--workers", str(workers),
        "--bind", f"{host}:{port}",
        "--graceful-timeout", "20",
        "--keep-alive", "5",
        "--forwarded-allow-ips", settings.forwarded_allow_ips,
    ]  # fmt: skip
    os.execv(sys.executable, arguments)  # noqa: S606  (fixed argv, no shell)


@app.command()
def migrate(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply database migrations."""
    from shopkeeper.core.migrate import migrate as run_migrations

    settings = get_settings()
    run_migrations(settings, revision)
    console.print(f"[green]database at {revision}[/green]")


@app.command()
def seed(
    products: Annotated[int, typer.Option(min=1, help="How many products")] = 300,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Only when there are none")] = False,
) -> None:
    """Create a demo catalog (categories, products, variants, warehouses and stock)."""
    from shopkeeper.shop.catalog.seed import seed_demo_catalog

    created = asyncio.run(
        seed_demo_catalog(get_settings(), products=products, if_empty=if_empty, console=console)
    )
    console.print(f"[green]{created} products created[/green]" if created else "catalog not empty")


@users_app.command("create")
def create_user(
    email: Annotated[str, typer.Option(help="E-mail, used to log in")],
    password: Annotated[str, typer.Option(help="At least 8 characters")],
    staff: Annotated[bool, typer.Option("--staff", help="Make an `admin`")] = False,
    roles: Annotated[
        list[str] | None,
        typer.Option("--role", help="Grant a role (repeatable): shop_staff, log_reader, ..."),
    ] = None,
    full_name: Annotated[str | None, typer.Option(help="Display name")] = None,
) -> None:
    """Create a user (the first staff user, typically)."""
    roles = roles or []
    from pydantic import ValidationError

    from shopkeeper.accounts import service
    from shopkeeper.accounts.schemas import RegisterRequest
    from shopkeeper.core.db import Database
    from shopkeeper.core.errors import DomainError

    try:
        body = RegisterRequest(email=email, password=password, full_name=full_name)
    except ValidationError as exc:
        console.print(f"[red]{exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}[/red]")
        raise typer.Exit(2) from exc

    async def run() -> None:
        database = Database(get_settings())
        try:
            async with database.session() as session:
                await service.register_user(
                    session,
                    email=body.email,
                    password=body.password,
                    full_name=body.full_name,
                    roles=tuple(roles) or (("admin",) if staff else ()),
                )
        finally:
            await database.dispose()

    try:
        asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    granted = roles or (["admin"] if staff else [])
    suffix = f" with roles {', '.join(granted)}" if granted else ""
    console.print(f"[green]created user {body.email}{suffix}[/green]")


keys_app = typer.Typer(help="Manage API keys (for log shippers, crawl workers, scripts).")
app.add_typer(keys_app, name="keys")
app.add_typer(importlib.import_module("shopkeeper.logs.cli").logs_app, name="logs")


def _ship_own_logs(settings: Settings, service: str) -> AbstractAsyncContextManager[None]:
    """Standalone processes ship their own logs into the logs system (imported when used)."""
    from shopkeeper.logs.runtime import standalone_process_logs

    return standalone_process_logs(settings, service)


add_process_log_shipper(_ship_own_logs)


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'vector on web-1'")],
    scopes: Annotated[
        list[str], typer.Option("--scope", help="A permission the key has (repeatable)")
    ],
    tenant: Annotated[str | None, typer.Option(help="Tenant of what it writes and reads")] = None,
) -> None:
    """Create an API key and print it: it is shown this once."""
    from shopkeeper.accounts import service
    from shopkeeper.core.db import Database
    from shopkeeper.core.errors import DomainError

    async def run() -> str:
        database = Database(get_settings())
        try:
            async with database.session() as session:
                _key, plaintext = await service.create_api_key(
                    session, name=name, scopes=scopes, tenant=tenant
                )
                return plaintext
        finally:
            await database.dispose()

    try:
        plaintext = asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    print(plaintext)


MetricsPort = Annotated[
    int | None,
    typer.Option(min=1, max=65535, help="Serve metrics here; default SHOPKEEPER_METRICS_PORT"),
]
MetricsHost = Annotated[str, typer.Option(help="Interface of the metrics endpoint")]


@app.command()
def worker(metrics_port: MetricsPort = None, metrics_host: MetricsHost = "127.0.0.1") -> None:
    """Consume background jobs (event handlers, e-mail) from RabbitMQ; also relays the outbox.
    Stops on SIGTERM/SIGINT after the jobs in hand finish."""
    from shopkeeper.core.messaging.handlers import load_handlers
    from shopkeeper.core.runtime import background

    settings = get_settings()
    if settings.broker_url is None:
        console.print("[red]SHOPKEEPER_BROKER_URL is not set: `serve` runs jobs in-process[/red]")
        raise typer.Exit(2)

    async def run(runtime: Runtime, stop: asyncio.Event) -> None:
        load_handlers()
        await runtime.jobs.start(worker=True)
        async with background(runtime, relay=True, periodic=False, consume=True):
            await stop.wait()

    _serve_metrics(metrics_host, metrics_port or settings.metrics_port)
    _run_until_signalled(settings, run, "worker")


@app.command()
def scheduler(metrics_port: MetricsPort = None, metrics_host: MetricsHost = "127.0.0.1") -> None:
    """Run `@periodic` jobs and fire crawl schedules. Any number may run: each job runs once
    per period among them, each schedule's fire time makes one crawl job."""
    from shopkeeper.core.messaging.handlers import load_handlers
    from shopkeeper.core.runtime import background

    settings = get_settings()

    async def run(runtime: Runtime, stop: asyncio.Event) -> None:
        from shopkeeper.crawl.schedules.loop import schedules_running

        load_handlers()
        await runtime.jobs.start()
        async with (
            background(runtime, relay=False, periodic=True, consume=False),
            schedules_running(runtime.settings, runtime.db),
        ):
            await stop.wait()

    _serve_metrics(metrics_host, metrics_port or settings.metrics_port)
    _run_until_signalled(settings, run, "scheduler")


def _serve_metrics(host: str, port: int | None) -> None:
    """Before the process starts work, so a port already taken fails the start, not a scrape."""
    if port is None:
        return
    from shopkeeper.core.observability import start_metrics_server

    try:
        start_metrics_server(host, port)
    except OSError as exc:
        console.print(f"[red]cannot serve metrics on {host}:{port}: {exc.strerror}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"metrics on http://{host}:{port}/metrics")


def _run_until_signalled(
    settings: Settings,
    body: Callable[[Runtime, asyncio.Event], Awaitable[None]],
    name: str,
) -> None:
    import signal

    import structlog

    from shopkeeper.core.observability import configure_logging, process_logs_shipped

    configure_logging(settings.log_level, settings.log_json)
    log = structlog.get_logger(f"shopkeeper.{name}")

    async def main() -> None:
        runtime = Runtime.build(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with process_logs_shipped(settings, f"shopkeeper-{name}"):
            log.info(f"{name}_started", pid=os.getpid())
            try:
                await body(runtime, stop)
            finally:
                await runtime.close()
                log.info(f"{name}_stopped")

    asyncio.run(main())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
