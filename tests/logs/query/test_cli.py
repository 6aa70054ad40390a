"""`shopkeeper logs query`: the command on the local store (the test run's chDB directory)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from shopkeeper.core.settings import Settings, get_settings
from shopkeeper.logs.query.cli import query_command
from tests.logs.query.conftest import Dataset


@pytest.fixture
def cli(logs_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    assert isinstance(logs_settings.logs_dir, Path)
    monkeypatch.setenv("SHOPKEEPER_LOGS_DIR", str(logs_settings.logs_dir))
    monkeypatch.setenv("SHOPKEEPER_VAR_DIR", str(logs_settings.var_dir))
    get_settings.cache_clear()
    app = typer.Typer()
    app.command("query")(query_command)
    app.command("other")(lambda: None)  # two commands, so "query" is addressed by name
    yield app
    get_settings.cache_clear()


def test_query_prints_lines_as_a_table(cli: typer.Typer, dataset: Dataset) -> None:
    result = CliRunner().invoke(
        cli, ["query", '{service="shop"} |= "timeout"', "--tenant", dataset.tenant, "--limit", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "3 lines" in result.output
    assert 'service="shop"' in result.output


def test_query_json_is_lokis_answer(cli: typer.Typer, dataset: Dataset) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "query",
            'sum by (level) (count_over_time({service="shop"}[10m]))',
            "--since",
            "1h",
            "--step",
            "10m",
            "--tenant",
            dataset.tenant,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["data"]["resultType"] == "matrix"
    total = sum(float(v) for s in body["data"]["result"] for _, v in s["values"])
    assert total > 0


def test_bad_query_exits_with_the_reason(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["query", '{service="shop"} | unpack'])
    assert result.exit_code == 2
    assert "unpack" in result.output
