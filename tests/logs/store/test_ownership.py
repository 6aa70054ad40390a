"""chDB opens its directory from one process only; a second process is told so plainly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shopkeeper.logs.store import StoreUnavailable
from shopkeeper.logs.store.embedded import EmbeddedStore


def test_a_second_process_cannot_open_an_owned_directory(log_store: object, logs_dir: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from shopkeeper.logs.store import StoreUnavailable\n"
        "from shopkeeper.logs.store.embedded import EmbeddedStore\n"
        "async def main():\n"
        "    store = EmbeddedStore("
        "Path(sys.argv[1]), database='shopkeeper_logs', retention_days=14)\n"
        "    try:\n"
        "        await store.open()\n"
        "    except StoreUnavailable as exc:\n"
        "        print(exc)\n"
        "        return\n"
        "    print('opened')\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(logs_dir)], capture_output=True, text=True, timeout=60
    )
    assert "another process owns the chDB directory" in result.stdout, result.stderr[-2000:]


async def test_one_process_opens_one_directory(log_store: object, tmp_path: Path) -> None:
    other = EmbeddedStore(tmp_path, database="shopkeeper_logs", retention_days=14)
    with pytest.raises(StoreUnavailable, match="one directory per process"):
        await other.open()


async def test_a_missing_chdb_configuration_file_is_refused_plainly(tmp_path: Path) -> None:
    # chDB itself would start without it and say nothing.
    store = EmbeddedStore(
        tmp_path / "logs",
        database="shopkeeper_logs",
        retention_days=14,
        config_file=tmp_path / "clickhouse.xml",
    )
    with pytest.raises(StoreUnavailable, match=r"clickhouse\.xml \(SHOPKEEPER_LOGS_CHDB_CONFIG\)"):
        await store.open()
