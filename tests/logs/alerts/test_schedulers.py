"""Alert evaluation by real `shopkeeper scheduler` processes: two of them share the rules
without evaluating one twice, and an alert that fires and resolves across a SIGKILL of one of
them is notified exactly once each way.

chDB opens a directory from one process only, so each scheduler reads its own directory holding
the same lines (in production they share a ClickHouse server); the rules, their claims and the
outbox are in the one database both use."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopkeeper.core.runtime import Runtime
from shopkeeper.logs.alerts import service
from shopkeeper.logs.alerts.schemas import AlertCreate
from tests.conftest import ServerProcess, settings_env
from tests.logs.alerts.conftest import WebhookReceiver
from tests.support.events import drain_events
from tests.support.platform import eventually

PREPARE = """
import asyncio, sys, time
from pathlib import Path
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.store import records_batch
from shopkeeper.logs.store.embedded import EmbeddedStore

async def main(path, tenant, start_ns, end_ns):
    store = EmbeddedStore(Path(path), database="shopkeeper_logs", retention_days=14)
    await store.open()
    step = 100_000_000
    records = [
        LogRecord(message="payment failed", timestamp_ns=ts, service="checkout")
        for ts in range(start_ns, end_ns, step)
    ]
    await store.insert(records_batch(records, tenant=tenant, source="ndjson"))
    await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""

NS = 1_000_000_000


def prepare_lines(directory: Path, tenant: str, start_ns: int, end_ns: int) -> None:
    subprocess.run(
        [sys.executable, "-c", PREPARE, str(directory), tenant, str(start_ns), str(end_ns)],
        check=True,
        timeout=120,
    )


def evaluations(process: ServerProcess) -> list[tuple[str, str]]:
    found = []
    for line in process.output().splitlines():
        if '"alert_evaluated"' in line:
            record: dict[str, Any] = json.loads(line[line.index("{") :])
            found.append((record["alert_id"], record["due_at"]))
    return found


async def rule_state(runtime: Runtime, tenant: str, alert_id: uuid.UUID) -> str:
    async with runtime.db.session() as session:
        return (await service.get_alert(session, tenant=tenant, alert_id=alert_id)).state


async def test_two_schedulers_share_rules_and_notify_once_across_a_sigkill(
    alerts_runtime: Runtime,
    process_factory: Callable[..., ServerProcess],
    webhook_receiver: WebhookReceiver,
    tmp_path: Path,
    tenant: str,
) -> None:
    # Lines that enter the rule's 3-second window ~15 s from now and leave it ~10 s later:
    # the alert fires and then resolves with no one touching it.
    start_ns = time.time_ns() + 15 * NS
    copies = [tmp_path / "chdb-a", tmp_path / "chdb-b"]
    for copy in copies:
        prepare_lines(copy, tenant, start_ns, start_ns + 10 * NS)

    async with alerts_runtime.db.session() as session:
        watched = await service.create_alert(
            session,
            tenant=tenant,
            body=AlertCreate.model_validate(
                {
                    "name": "payments failing",
                    "query": 'sum(count_over_time({service="checkout"} |= "failed" [3s]))',
                    "op": ">",
                    "threshold": 0,
                    "for": "0s",
                    "every": "1s",
                    "notify": [{"type": "webhook", "url": webhook_receiver.url}],
                }
            ),
        )
        for n in range(20):  # more rules to share out
            await service.create_alert(
                session,
                tenant=tenant,
                body=AlertCreate.model_validate(
                    {
                        "name": f"quiet {n}",
                        "query": 'count_over_time({service="none"}[1m])',
                        "op": ">",
                        "threshold": 100,
                        "every": "1s",
                    }
                ),
            )

    base = alerts_runtime.settings.model_copy(
        update={"scheduler_tick_seconds": 0.1, "log_level": "INFO", "log_json": True}
    )
    schedulers = [
        process_factory(
            ["scheduler"],
            settings_env(base, SHOPKEEPER_LOGS_DIR=str(copy), SHOPKEEPER_LOGS_ENABLED="true"),
        )
        for copy in copies
    ]
    a, b = schedulers

    async def firing() -> bool:
        return await rule_state(alerts_runtime, tenant, watched.id) == "firing"

    try:
        await eventually(firing, timeout=60, what="the alert to fire")
    except AssertionError as exc:
        raise AssertionError(a.output()[-4000:]) from exc
    a.stop(9)  # SIGKILL, whatever it was doing
    a_evaluations = evaluations(a)

    async def resolved() -> bool:
        async with alerts_runtime.db.session() as session:
            rows, _ = await service.alert_history(session, tenant=tenant, alert_id=watched.id)
        return [row.kind for row in rows] == ["resolved", "firing"]

    await eventually(resolved, timeout=60, what="the alert to resolve")
    b.stop()

    await drain_events(alerts_runtime)
    await drain_events(alerts_runtime)
    assert [body["status"] for body in webhook_receiver.bodies()] == ["firing", "resolved"]

    # No (rule, slot) was evaluated twice, and both schedulers took a share.
    b_evaluations = evaluations(b)
    every = Counter(a_evaluations + b_evaluations)
    assert every and max(every.values()) == 1, every.most_common(3)
    assert a_evaluations and b_evaluations
