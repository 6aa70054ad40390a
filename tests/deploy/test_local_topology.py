"""The production topology on this machine, end to end: deploy/local/run.sh brings up nginx,
gunicorn, the job worker and scheduler, crawl workers, the log platform (chDB served over
ClickHouse's HTTP interface, the RabbitMQ stream buffer, its writer, the syslog receiver) and
Prometheus; deploy/local/check.sh then checks from the outside what a client and an operator
see (a checkout, a logs line through nginx -> buffer -> writer found by query, tail and syslog,
crawl workers alive and scraped); deploy/local/stop.sh stops it all."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, free_port

LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "local"


def _run(script: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LOCAL / script)], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.services
@pytest.mark.timeout(1200)
def test_the_local_production_topology_passes_its_smoke_test(tmp_path: Path) -> None:
    if os.geteuid() != 0 and shutil.which("prometheus") is None:
        message = "run.sh installs nginx and Prometheus with apt-get: needs root or them installed"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    run_id = random.randrange(10**6, 10**7)
    crawl_metrics_base = random.randrange(20_000, 30_000)
    env = {
        **os.environ,
        "SHOPKEEPER_LOCAL_DIR": str(tmp_path / "deploy"),
        "SHOPKEEPER_LOCAL_DB": f"shopkeeper_topology_{run_id}",
        "SHOPKEEPER_LOCAL_HTTP_PORT": str(free_port()),
        "SHOPKEEPER_LOCAL_APP_PORT": str(free_port()),
        "SHOPKEEPER_LOCAL_PROMETHEUS_PORT": str(free_port()),
        "SHOPKEEPER_LOCAL_CHDB_PORT": str(free_port()),
        "SHOPKEEPER_LOCAL_SYSLOG_PORT": str(free_port()),
        "SHOPKEEPER_LOCAL_EDGE_SYSLOG_PORT": str(free_port()),
        "SHOPKEEPER_LOCAL_CRAWL_METRICS_PORT": str(crawl_metrics_base),
        "SHOPKEEPER_LOCAL_LOGS_METRICS_PORT": str(crawl_metrics_base + 50),
        "SHOPKEEPER_LOCAL_CRAWL_WORKERS": "2",
        # A stream of its own: the writer of this run reads it from its start.
        "SHOPKEEPER_LOGS_BUFFER_STREAM": f"shopkeeper.logs.topology-{run_id}",
        "SHOPKEEPER_BIN": str(Path(sys.executable).parent / "shopkeeper"),
        "SHOPKEEPER_PYTHON": sys.executable,
    }
    try:
        started = _run("run.sh", env, timeout=900)
        assert started.returncode == 0, started.stderr[-4000:]
        checked = _run("check.sh", env, timeout=300)
        failed = [line for line in checked.stdout.splitlines() if line.startswith("FAIL")]
        assert checked.returncode == 0 and not failed, checked.stdout + checked.stderr[-2000:]
        # The checks a reader of this test relies on ran, and passed.
        for check in (
            "a customer's cart becomes an order",
            "logs: NDJSON through nginx",
            "the crawl workers are alive",
        ):
            assert any(
                line.startswith("PASS") and check in line for line in checked.stdout.splitlines()
            ), check
    finally:
        _run("stop.sh", env, timeout=300)
        subprocess.run(
            [
                "dropdb",
                "--if-exists",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                env["SHOPKEEPER_LOCAL_DB"],
            ],
            capture_output=True,
            check=False,
        )
