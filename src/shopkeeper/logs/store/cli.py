"""`shopkeeper logs ddl`: print the DDL of the log table, for one server or a cluster."""

from __future__ import annotations

from typing import Annotated

import typer

from shopkeeper.core.settings import get_settings
from shopkeeper.logs.store import schema


def ddl_command(
    cluster: Annotated[
        str | None, typer.Option(help="Cluster name: ReplicatedMergeTree + Distributed DDL")
    ] = None,
    database: Annotated[str | None, typer.Option(help="Default: SHOPKEEPER_LOGS_DATABASE")] = None,
    retention_days: Annotated[
        int | None, typer.Option(help="Default: SHOPKEEPER_LOGS_RETENTION_DAYS")
    ] = None,
) -> None:
    """Print the CREATE statements of the log table (run them with clickhouse-client)."""
    settings = get_settings()
    database = database or settings.logs_database
    days = retention_days or settings.logs_retention_days
    if cluster:
        typer.echo(schema.cluster_ddl(cluster, database, days), nl=False)
    else:
        typer.echo(";\n\n".join(schema.create_table_sql(database, days)) + ";")
