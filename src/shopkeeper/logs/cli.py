"""`shopkeeper logs ...`: ingest a file, generate a synthetic stream, run the buffer's writer or
a standalone syslog receiver, query, print the cluster DDL."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import signal
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

from shopkeeper.core.settings import Settings, get_settings
from shopkeeper.logs.store import Batch, LogStore, open_store
from shopkeeper.logs.synthetic import ndjson, synthetic_lines

logs_app = typer.Typer(
    help="The log platform: ingest, generate, query, writer.", no_args_is_help=True
)
console = Console(stderr=True)

T = TypeVar("T")
INGEST_PATH = "/api/v1/logs/ingest"
CHUNK_BYTES = 2 * 1024 * 1024

with contextlib.suppress(ModuleNotFoundError):
    from shopkeeper.logs.query.cli import query_command

    logs_app.command("query")(query_command)
with contextlib.suppress(ModuleNotFoundError):
    from shopkeeper.logs.store.cli import ddl_command

    logs_app.command("ddl")(ddl_command)

UrlOption = Annotated[
    str | None, typer.Option(help="A running server's base URL; default: the local store.")
]
KeyOption = Annotated[
    str | None, typer.Option(envvar="SHOPKEEPER_API_KEY", help="A logs:write API key for --url.")
]


def as_json_line(line: bytes, service: str | None) -> bytes:
    """A line of a file as an NDJSON line: JSON objects as they are, anything else as the
    message (of `service`, when given)."""
    stripped = line.strip()
    if stripped.startswith(b"{") and stripped.endswith(b"}"):
        return stripped + b"\n"
    record: dict[str, str] = {"message": stripped.decode("utf-8", "replace")}
    if service:
        record["service"] = service
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def chunks(lines: Iterator[bytes], size: int = CHUNK_BYTES) -> Iterator[tuple[bytes, int]]:
    """NDJSON lines grouped into bodies of about `size` bytes: (body, lines)."""
    parts: list[bytes] = []
    length = 0
    for line in lines:
        parts.append(line)
        length += len(line)
        if length >= size:
            yield b"".join(parts), len(parts)
            parts, length = [], 0
    if parts:
        yield b"".join(parts), len(parts)


class Destination:
    """A server's NDJSON endpoint, or the local store (one INSERT per chunk)."""

    def __init__(self, settings: Settings, url: str | None, key: str | None, tenant: str) -> None:
        self.settings = settings
        self.url = url.rstrip("/") if url else None
        self.key = key
        self.tenant = tenant
        self.http: httpx.AsyncClient | None = None
        self.store: LogStore | None = None

    async def __aenter__(self) -> Destination:
        if self.url is not None:
            headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
            self.http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60)
        else:
            self.store = await open_store(self.settings)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.store is not None:
            await self.store.close()

    async def send(self, body: bytes, lines: int) -> None:
        if self.store is not None:
            await self.store.insert(
                Batch(
                    tenant=self.tenant,
                    source="ndjson",
                    format="json_lines",
                    payload=body,
                    lines=lines,
                )
            )
            return
        assert self.http is not None
        while True:
            response = await self.http.post(
                INGEST_PATH,
                content=gzip.compress(body, compresslevel=1),
                headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
            )
            if response.status_code in (429, 503):
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code >= 400:
                raise typer.BadParameter(f"{response.status_code}: {response.text[:500]}")
            return


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return Path(path).open("rb")


@logs_app.command("ingest")
def ingest_command(
    file: Annotated[
        str, typer.Argument(help="NDJSON or plain-text lines ('-' for stdin, .gz ok).")
    ],
    url: UrlOption = None,
    key: KeyOption = None,
    service: Annotated[
        str | None, typer.Option(help="Service of plain-text lines (JSON lines name their own).")
    ] = None,
    tenant: Annotated[str, typer.Option(help="Local store only: the tenant written.")] = "default",
) -> None:
    """Send a file's lines to the local store or a server, with a progress bar."""
    settings = get_settings()
    size = Path(file).stat().st_size if file != "-" else None
    total_lines = asyncio.run(_ingest(settings, file, url, key, tenant, service, size))
    console.print(f"[green]ingested {total_lines} lines[/green]")


async def _ingest(
    settings: Settings,
    file: str,
    url: str | None,
    key: str | None,
    tenant: str,
    service: str | None,
    size: int | None,
) -> int:
    total = 0
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[lines]} lines"),
        TransferSpeedColumn(),
        console=console,
    )
    with _open(file) as source, progress:
        task = progress.add_task("ingest", total=size, lines=0)
        async with Destination(settings, url, key, tenant) as destination:
            lines = (as_json_line(line, service) for line in source if line.strip())
            for body, count in chunks(lines):
                await destination.send(body, count)
                total += count
                progress.update(task, advance=len(body), lines=total)
    return total


@logs_app.command("generate")
def generate_command(
    lines: Annotated[int | None, typer.Option(help="How many lines; default: forever.")] = 10_000,
    rate: Annotated[
        float,
        typer.Option(help="Lines per second (0: as fast as possible, timestamps ~1ms apart)."),
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed, the same stream.")] = 1,
    url: UrlOption = None,
    key: KeyOption = None,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="Print NDJSON instead of storing it.")
    ] = False,
    tenant: Annotated[str, typer.Option(help="Local store only: the tenant written.")] = "default",
) -> None:
    """A realistic synthetic stream (requests across services sharing trace ids) as NDJSON on
    stdout, into a server (--url), or into the local store."""
    stream = ndjson(synthetic_lines(lines, seed=seed, rate=rate))
    if rate:
        stream = _paced(stream, rate)
    if stdout:
        out = sys.stdout.buffer
        for line in stream:
            out.write(line)
        out.flush()
        return
    total = asyncio.run(_generate(get_settings(), stream, url, key, tenant, rate))
    console.print(f"[green]generated {total} lines[/green]")


def _paced(lines: Iterator[bytes], rate: float) -> Iterator[bytes]:
    started = time.monotonic()
    for number, line in enumerate(lines):
        delay = started + number / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield line


async def _generate(
    settings: Settings,
    lines: Iterator[bytes],
    url: str | None,
    key: str | None,
    tenant: str,
    rate: float,
) -> int:
    total = 0
    # Paced streams go out in small bodies so that they are searchable as they happen.
    size = max(4096, int(rate * 200 * 0.5)) if rate else CHUNK_BYTES
    async with Destination(settings, url, key, tenant) as destination:
        for body, count in chunks(lines, size):
            await destination.send(body, count)
            total += count
    return total


MetricsPort = Annotated[
    int | None, typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port")
]
MetricsHost = Annotated[str, typer.Option(help="Interface of the metrics endpoint")]


def _serve_metrics(host: str, port: int | None) -> None:
    if port is not None:
        from shopkeeper.core.observability import start_metrics_server

        start_metrics_server(host, port)


@logs_app.command("writer")
def writer_command(
    idle_exit: Annotated[
        float | None,
        typer.Option(help="Exit once the buffer has been drained and quiet this many seconds."),
    ] = None,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Store what the ingest buffer (SHOPKEEPER_LOGS_BUFFER_URL) holds, acknowledging the
    buffer only after ClickHouse confirms; run one per buffer stream."""
    from shopkeeper.logs.writer import run_writer

    settings = get_settings()
    if not settings.logs_buffer_url:
        console.print(
            "[red]SHOPKEEPER_LOGS_BUFFER_URL is not set: there is no buffer to read[/red]"
        )
        raise typer.Exit(2)
    _serve_metrics(metrics_host, metrics_port or settings.metrics_port)
    stored = _run_until_signal(run_writer(settings, idle_exit_seconds=idle_exit))
    if stored is not None:
        console.print(f"stored {stored} lines")


@logs_app.command("chdb-server")
def chdb_server_command(
    path: Annotated[
        Path | None, typer.Option(help="chDB data directory; default SHOPKEEPER_LOGS_DIR")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port")] = 8123,
) -> None:
    """Own the chDB directory and answer ClickHouse's HTTP interface on it, so that several
    processes share one embedded store (SHOPKEEPER_LOGS_CLICKHOUSE_URL=http://HOST:PORT)."""
    from shopkeeper.logs.store.chdb_http import serve

    serve(path or get_settings().logs_path, port, host)


@logs_app.command("syslog")
def syslog_command(
    host: Annotated[str | None, typer.Option(help="Default SHOPKEEPER_LOGS_SYSLOG_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default SHOPKEEPER_LOGS_SYSLOG_PORT.")] = None,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """A standalone syslog receiver (UDP and TCP) writing to the buffer when one is configured,
    else to the local store."""
    settings = get_settings()
    update: dict[str, object] = {}
    if host is not None:
        update["logs_syslog_host"] = host
    if port is not None:
        update["logs_syslog_port"] = port
    _serve_metrics(metrics_host, metrics_port or settings.metrics_port)
    _run_until_signal(_syslog(settings.model_copy(update=update)))


async def _syslog(settings: Settings) -> None:
    from shopkeeper.logs.ingest.syslog_server import start_syslog_from_settings
    from shopkeeper.logs.runtime import LogsRuntime

    runtime = await LogsRuntime.start(settings.model_copy(update={"logs_syslog_port": 0}))
    try:
        servers = await start_syslog_from_settings(settings, runtime.sink)
        if servers is None:
            console.print("[red]syslog port is 0: nothing to do[/red]")
            return
        console.print(f"syslog on {settings.logs_syslog_host}:{servers.port} (UDP and TCP)")
        try:
            await asyncio.Event().wait()
        finally:
            await servers.stop()
    finally:
        await runtime.stop()


def _run_until_signal(work: Coroutine[Any, Any, T]) -> T | None:
    """Runs a coroutine until it returns or SIGINT/SIGTERM arrives (then cancels it cleanly)."""

    async def main() -> T | None:
        task = asyncio.ensure_future(work)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            return None

    return asyncio.run(main())
