"""`shopkeeper logs query 'LOGQL' --since 1h [--json]`: a LogQL query from the terminal, against
the local store (embedded) or a running server's Loki API (`--url`)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from shopkeeper.core.jsonutil import dumps
from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.params import (
    DEFAULT_LIMIT,
    parse_direction,
    parse_limit,
    parse_range,
    parse_step,
)
from shopkeeper.logs.query.params import max_range_ns as parse_max_range


def query_command(
    logql: Annotated[str, typer.Argument(help="A LogQL log or metric query.")],
    since: Annotated[str, typer.Option(help="How far back: a duration (15m, 1h, 2d).")] = "1h",
    limit: Annotated[int, typer.Option(help="Most lines to show (max 5000).")] = DEFAULT_LIMIT,
    direction: Annotated[str, typer.Option(help="backward (newest first) or forward.")] = (
        "backward"
    ),
    step: Annotated[str | None, typer.Option(help="Metric queries: the resolution.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print Loki's JSON answer.")] = False,
    url: Annotated[
        str | None,
        typer.Option(help="Ask a running server (its base URL) instead of the local store."),
    ] = None,
    key: Annotated[
        str | None, typer.Option(envvar="SHOPKEEPER_API_KEY", help="API key for --url.")
    ] = None,
    tenant: Annotated[str, typer.Option(help="Local store only: the tenant to read.")] = (
        "default"
    ),
) -> None:
    """Run a LogQL query over the last `--since` and print lines (or series) as a table."""
    params = {"query": logql, "since": since, "limit": str(limit), "direction": direction}
    if step:
        params["step"] = step
    try:
        body = asyncio.run(_remote(url, key, params) if url else _local(params, tenant=tenant))
    except QueryError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(dumps(body).decode() + "\n")
        return
    _print(body)


async def _local(params: dict[str, str], *, tenant: str) -> dict[str, Any]:
    from shopkeeper.core.settings import get_settings
    from shopkeeper.logs.query import service
    from shopkeeper.logs.store import open_store

    settings = get_settings()
    window = parse_range(params, parse_max_range(settings.logs_max_query_range))
    store = await open_store(settings)
    try:
        result = await service.query_range(
            store,
            tenant=tenant,
            query=params["query"],
            start=window.start,
            end=window.end,
            step=parse_step(params, window),
            limit=parse_limit(params),
            backward=parse_direction(params),
        )
    finally:
        await store.close()
    return result.as_loki()


async def _remote(url: str, key: str | None, params: dict[str, str]) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=60) as http:
        response = await http.get("/api/v1/logs/loki/api/v1/query_range", params=params)
    if response.status_code != 200:
        raise QueryError(f"{response.status_code}: {response.text.strip()}")
    body: dict[str, Any] = response.json()
    return body


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _print(body: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    data = body["data"]
    console = Console()
    if data["resultType"] == "streams":
        rows = [
            (int(value[0]), stream["stream"], value[1])
            for stream in data["result"]
            for value in stream["values"]
        ]
        rows.sort(key=lambda row: row[0], reverse=True)
        table = Table("time (UTC)", "labels", "line", show_lines=False)
        for ns, labels, line in rows:
            table.add_row(_time(ns), _labels(labels), line)
        console.print(table)
        console.print(f"{len(rows)} lines")
        return
    table = Table("series", "time (UTC)", "value")
    for series in data["result"]:
        for t, v in series["values"]:
            table.add_row(_labels(series["metric"]), _time(int(t * 1e9)), v)
    console.print(table)
