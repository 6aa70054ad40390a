"""One embedded `shopkeeper serve` does it all: lines ingested over HTTP, an alert created over
the API, evaluated by the process's own scheduler and mailed through its own outbox."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from shopkeeper.core.settings import Settings
from tests.logs.alerts.conftest import KeyFactory
from tests.support.platform import SmtpSink, eventually


async def test_embedded_serve_evaluates_alerts_and_mails_them(
    alerts_settings: Settings,
    server_factory: Callable[..., Any],
    key_headers: KeyFactory,
    smtp_server: SmtpSink,
    tmp_path: Path,
    tenant: str,
) -> None:
    settings = alerts_settings.model_copy(
        update={
            "run_background_in_process": True,
            "logs_dir": tmp_path / "serve-logs",  # the child process owns its own chDB directory
            "scheduler_tick_seconds": 0.1,
            "outbox_poll_seconds": 0.1,
        }
    )
    base = await server_factory(settings)
    headers = await key_headers(["logs:write", "logs:read", "logs:admin"], tenant)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        now = time.time()
        lines = "".join(
            json.dumps({"ts": now, "service": "checkout", "message": f"payment {n} failed"}) + "\n"
            for n in range(5)
        )
        ingested = await http.post(
            "/api/v1/logs/ingest",
            content=lines,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert ingested.status_code == 200, ingested.text
        created = await http.post(
            "/api/v1/logs/alerts",
            json={
                "name": "payments failing",
                "query": 'sum(count_over_time({service="checkout"} |= "failed" [10m]))',
                "op": ">=",
                "threshold": 5,
                "for": "0s",
                "every": "1s",
                "notify": [{"type": "email", "to": "oncall@example.com"}],
            },
        )
        assert created.status_code == 201, created.text
        url = f"/api/v1/logs/alerts/{created.json()['id']}"

        async def firing() -> bool:
            return bool((await http.get(url)).json()["state"] == "firing")

        await eventually(firing, timeout=60, what="the alert to fire")
        await eventually(lambda: len(smtp_server.messages) == 1, what="the mail")
        assert smtp_server.messages[0]["Subject"] == "[FIRING] payments failing"
        assert smtp_server.messages[0]["To"] == "oncall@example.com"
        alert = (await http.get(url)).json()
        assert alert["last_value"] == 5
