"""`python -m bench.logs_alerts`: alert rules evaluated on schedule over 10 million stored lines
(embedded chDB), the way `shopkeeper scheduler` evaluates them.

Steps: generate `--lines` lines over 24 h into a fresh chDB directory with the generator of
`bench.logs_query` (the newest line `--ahead` minutes in the future, so every rule's window
holds lines while the bench runs); create `--rules` rules (`every` = `--every`) on a SQLite
database; as the reference, run the 100 queries once back to back through the query engine
alone; then run the scheduler's claim-and-evaluate loop (`evaluate_due_alerts` on a 1 s tick)
for `--duration` seconds and report how many slots were evaluated against how many fell due,
the largest lag between a slot's due time and its evaluation, the evaluation times, and the
share of each interval spent evaluating. Appends a dated section to bench/RESULTS.md unless
`--no-record`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
NS = 1_000_000_000
DAY_NS = 86_400 * NS
SERVICES = ("shop", "checkout", "payments", "search", "crawler", "worker", "api", "shopkeeper")
WORDS = ("timeout", "declined", "failed", "retry", "deadlock", "refused", "expired", "slow")


def rule_queries(count: int) -> list[str]:
    """A mix of the metric queries people alert on, over different services and words."""
    shapes = (
        'sum(count_over_time({{service="{s}"}} |= "{w}" [5m]))',
        'sum by (level) (count_over_time({{service="{s}"}}[5m]))',
        'sum(rate({{service="{s}", level="error"}}[1m]))',
        'sum(count_over_time({{service="{s}"}} |= "{w}" [15m]))',
        'sum(bytes_over_time({{service="{s}"}}[5m]))',
    )
    return [
        shapes[n % len(shapes)].format(s=SERVICES[n % len(SERVICES)], w=WORDS[n % len(WORDS)])
        for n in range(count)
    ]


def generate(logs_dir: Path, lines: int, end_ns: int) -> float:
    from chdb import session

    from bench.logs_query import _WORDS, generate_sql
    from shopkeeper.logs.store import schema

    db = session.Session(str(logs_dir))
    table = f"{schema.DEFAULT_DATABASE}.{schema.TABLE}"
    try:
        for statement in schema.create_table_sql(schema.DEFAULT_DATABASE, 14):
            db.query(statement)
        started = time.perf_counter()
        db.query(
            generate_sql(table, len(_WORDS)),
            params={"now": end_ns, "lines": lines, "spacing": DAY_NS // lines,
                    "words": " ".join(_WORDS)},
        )  # fmt: skip
        db.query(f"OPTIMIZE TABLE {table} FINAL")
        return time.perf_counter() - started
    finally:
        db.close()


async def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from shopkeeper.core.db import Database, utcnow
    from shopkeeper.core.migrate import upgrade_database
    from shopkeeper.core.observability import configure_logging
    from shopkeeper.core.settings import Settings
    from shopkeeper.logs.alerts import service
    from shopkeeper.logs.alerts.evaluator import claim_due, evaluate_claim, metric_values
    from shopkeeper.logs.alerts.models import AlertRule
    from shopkeeper.logs.alerts.schemas import AlertCreate
    from shopkeeper.logs.store.embedded import EmbeddedStore

    configure_logging("WARNING", True)
    work = Path(tempfile.mkdtemp(prefix="logs-alerts-bench-"))
    try:
        logs_dir = Path(args.keep) if args.keep else work / "logs"
        stamp = logs_dir.parent / f"{logs_dir.name}-generated-until"
        if stamp.exists():
            generated_s = 0.0
            print(f"reusing the lines in {logs_dir}")
        else:
            end_ns = time.time_ns() + args.ahead * 60 * NS
            generated_s = generate(logs_dir, args.lines, end_ns)
            stamp.write_text(str(end_ns))
            print(f"generated {args.lines:,} lines in {generated_s:.1f} s")
        settings = Settings(
            environment="embedded",
            var_dir=work,
            database_url=f"sqlite+aiosqlite:///{work / 'bench.db'}",
            logs_dir=logs_dir,
            log_level="WARNING",
        )
        db = Database(settings)
        await upgrade_database(db)
        store = EmbeddedStore(logs_dir, database="shopkeeper_logs", retention_days=14)
        await store.open()
        queries = rule_queries(args.rules)

        started = time.perf_counter()
        for query in queries:
            await metric_values(store, tenant="default", query=query, at=utcnow())
        reference_s = time.perf_counter() - started
        print(f"engine alone: the {len(queries)} queries back to back in {reference_s:.2f} s")

        async with db.session() as session:
            for n, query in enumerate(queries):
                body = {"name": f"rule {n}", "query": query, "op": ">", "threshold": 1e12,
                        "every": f"{args.every}s"}  # fmt: skip
                await service.create_alert(
                    session, tenant="default", body=AlertCreate.model_validate(body)
                )
        lags: list[float] = []
        durations: list[float] = []
        outcomes: dict[str, int] = {}
        per_rule: Counter[uuid.UUID] = Counter()
        begin = time.monotonic()
        while time.monotonic() - begin < args.duration:
            claims = await claim_due(db, now=utcnow())
            for claim in claims:
                lags.append((utcnow() - claim.due_at).total_seconds())
                per_rule[claim.rule_id] += 1
                t0 = time.perf_counter()
                outcome = await evaluate_claim(db, store, claim)
                durations.append(time.perf_counter() - t0)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if not claims:
                await asyncio.sleep(1.0)
        elapsed = time.monotonic() - begin
        async with db.session() as session:
            oldest_due = await session.scalar(select(func.min(AlertRule.next_evaluation_at)))
        assert oldest_due is not None
        overdue = (utcnow() - oldest_due).total_seconds()
        await store.close()
        await db.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    busy = sum(durations) / (elapsed / args.every)
    ms = sorted(d * 1000 for d in durations)
    summary = (
        f"{len(durations)} evaluations of {args.rules} rules in {elapsed:.0f} s, "
        f"{min(per_rule.values())} to {max(per_rule.values())} per rule "
        f"(outcomes {outcomes}); largest lag between a slot's due time and its evaluation "
        f"**{max(lags):.1f} s** (limit: the {args.every} s interval); at the end the most "
        f"overdue rule was {max(overdue, 0):.1f} s past due; per evaluation p50 "
        f"{statistics.median(ms):.0f} ms, p99 {ms[int(len(ms) * 0.99) - 1]:.0f} ms; "
        f"**{busy:.1f} s of evaluation per {args.every} s interval**; reference: the same "
        f"{args.rules} queries back to back through the query engine alone {reference_s:.1f} s"
    )
    print(summary)
    if args.record:
        load1 = os.getloadavg()[0]
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = "python -m bench.logs_alerts " + " ".join(sys.argv[1:])
        with RESULTS.open("a") as results:
            results.write(
                f"\n### Logs alerts: {args.rules} rules every {args.every} s over "
                f"{args.lines:,} lines, {stamp}\n\n"
                f"Machine: {platform.node()}, {os.cpu_count()} CPUs, load average {load1:.1f} "
                f"at the end. Command: `{command}`. One process: the scheduler's claim-and-"
                "evaluate loop on SQLite and embedded chDB "
                f"(lines generated in {generated_s:.0f} s; 0: reused).\n\n"
                f"{summary}.\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logs_alerts", description=__doc__)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--every", type=int, default=15)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--ahead", type=int, default=30, help="minutes the newest line is ahead")
    parser.add_argument(
        "--keep", metavar="DIR", help="generate the lines into DIR once, reuse them after"
    )
    parser.add_argument("--no-record", dest="record", action="store_false")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
