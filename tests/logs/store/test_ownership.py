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


@pytest.mark.slow
def test_the_chdb_configuration_file_reaches_the_engine(tmp_path: Path) -> None:
    """docs/logs.md's example, in a process of its own (the first store of a process starts
    its engine)."""
    config = tmp_path / "chdb.xml"
    config.write_text(
        "<clickhouse>\n"
        "  <max_server_memory_usage_to_ram_ratio>0.5</max_server_memory_usage_to_ram_ratio>\n"
        "  <background_pool_size>4</background_pool_size>\n"
        "</clickhouse>\n"
    )
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from shopkeeper.logs.store.embedded import EmbeddedStore\n"
        "async def main():\n"
        "    store = EmbeddedStore(Path(sys.argv[1]), database='shopkeeper_logs',\n"
        "                          retention_days=14, config_file=Path(sys.argv[2]))\n"
        "    await store.open()\n"
        '    rows = await store.query("SELECT name, value FROM system.server_settings "\n'
        "        \"WHERE changed AND name IN ('background_pool_size', \"\n"
        "        \"'max_server_memory_usage_to_ram_ratio') ORDER BY name\")\n"
        "    print(';'.join(f\"{r['name']}={r['value']}\" for r in rows))\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "logs"), str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip().splitlines()[-1:] == [
        "background_pool_size=4;max_server_memory_usage_to_ram_ratio=0.5"
    ], result.stderr[-2000:]
