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
    migrate: Annotated[
        bool,
        typer.Option(help="Print the ALTERs that bring a table of the earlier DDL up to date"),
    ] = False,
) -> None:
    """Print the CREATE statements of the log table (run them with clickhouse-client)."""
    settings = get_settings()
    database = database or settings.logs_database
    days = retention_days or settings.logs_retention_days
    if migrate:
        # One node migrates itself when it opens the store; a cluster's nodes are altered here.
        if cluster:
            typer.echo(schema.cluster_migration_ddl(cluster, database, days), nl=False)
        else:
            table = f"{database}.{schema.TABLE}"
            statements = [
                schema.modify_ttl_sql(database, days),
                *schema.storage_migration_sql(table),
            ]
            typer.echo(";\n\n".join(statements) + ";")
    elif cluster:
        typer.echo(schema.cluster_ddl(cluster, database, days), nl=False)
    else:
        typer.echo(";\n\n".join(schema.create_table_sql(database, days)) + ";")
