"""`shopkeeper crawl ...`: the crawl system's commands."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Annotated

import typer

app = typer.Typer(help="The crawler: workers.", no_args_is_help=True)


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1, max=1000, help="Fetches at once; default SHOPKEEPER_CRAWL_WORKER_CONCURRENCY"
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Shown in GET /crawl/workers; default host-pid")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(help="A `crawl:worker` API key; default SHOPKEEPER_CRAWL_WORKER_KEY"),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port")
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Interface of the metrics endpoint (0.0.0.0 in a container)")
    ] = "127.0.0.1",
) -> None:
    """Fetch URLs of every active crawl from the shared frontier until SIGTERM/SIGINT, then
    drain: fetches in flight finish (or their URLs go back to the frontier)."""
    import structlog

    from shopkeeper.core.db import Database
    from shopkeeper.core.errors import DomainError
    from shopkeeper.core.observability import (
        configure_logging,
        process_logs_shipped,
        start_metrics_server,
    )
    from shopkeeper.core.settings import get_settings
    from shopkeeper.crawl.context import CrawlContext
    from shopkeeper.crawl.worker import CrawlWorker

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    log = structlog.get_logger("shopkeeper.crawl.worker")
    port = metrics_port or settings.metrics_port
    if port is not None:
        start_metrics_server(metrics_host, port)

    worker_key = key or (
        settings.crawl_worker_key.get_secret_value() if settings.crawl_worker_key else None
    )

    async def main() -> None:
        db = Database(settings)
        context = CrawlContext.build(settings, db)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            # Its own logs (job runs' included) go to the logs system as service `crawl`.
            async with process_logs_shipped(settings, "crawl"):
                log.info("crawl_worker_process", pid=os.getpid())
                worker = CrawlWorker(context, name=name, concurrency=concurrency, key=worker_key)
                await worker.run(stop)
        finally:
            await context.close()
            await db.dispose()

    try:
        asyncio.run(main())
    except DomainError as exc:
        # The key was refused before the worker registered: nothing to undo.
        typer.echo(f"crawl worker: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
