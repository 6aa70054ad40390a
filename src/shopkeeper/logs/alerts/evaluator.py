"""Evaluating alert rules: claim a due rule, run its metric query through the LogQL engine,
and record the outcome (state, history, notification event) in one transaction.

However many schedulers run, a rule's evaluation is claimed by one of them: the claim is a
conditional UPDATE moving `next_evaluation_at` one interval on and stamping a fresh `claim`
token, and only the holder of the latest token (for the rule's current `version`) may record a
result. A scheduler killed mid-way leaves its claim unrecorded; the next interval's evaluation
goes on from the last recorded state, so a transition is committed, and notified, once.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import Database, affected_rows, new_id, utcnow
from shopkeeper.core.messaging.events import record_event
from shopkeeper.logs.alerts.events import AlertStatusChanged
from shopkeeper.logs.alerts.models import AlertRule, AlertTransition
from shopkeeper.logs.query import ast
from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.evaluate import check_series_count
from shopkeeper.logs.query.metrics import MetricContext, evaluate
from shopkeeper.logs.query.parser import parse
from shopkeeper.logs.query.results import Stats
from shopkeeper.logs.store import LogStore

log = structlog.get_logger(__name__)

ALERT_EVALUATIONS = Counter(
    "shopkeeper_logs_alert_evaluations_total",
    "Alert rule evaluations by outcome (ok, error, stale: the rule changed meanwhile)",
    ["outcome"],
)
ALERT_TRANSITIONS = Counter(
    "shopkeeper_logs_alert_transitions_total", "Alert state transitions", ["kind"]
)
ALERT_EVALUATION_SECONDS = Histogram(
    "shopkeeper_logs_alert_evaluation_seconds", "Time to run one alert rule's query"
)

CLAIM_BATCH = 20


@dataclass(frozen=True, slots=True)
class Claim:
    """One evaluation a scheduler won, with the rule as it was when claimed."""

    token: uuid.UUID
    rule_id: uuid.UUID
    version: int
    tenant: str
    query: str
    op: str
    threshold: float
    for_seconds: float
    due_at: datetime


async def any_due(db: Database, *, now: datetime) -> bool:
    """Whether some rule is due: a cheap look before opening the log store."""
    async with db.session() as session:
        found = await session.scalar(
            select(AlertRule.id).where(AlertRule.next_evaluation_at <= now).limit(1)
        )
        return found is not None


async def claim_due(db: Database, *, now: datetime, limit: int = CLAIM_BATCH) -> list[Claim]:
    """Claim up to `limit` rules due at `now`; each is claimed by one caller only."""
    claims: list[Claim] = []
    async with db.session() as session:
        due = (
            await session.scalars(
                select(AlertRule)
                .where(AlertRule.next_evaluation_at <= now)
                .order_by(AlertRule.next_evaluation_at)
                .limit(limit)
            )
        ).all()
        for rule in due:
            token = new_id()
            won = await session.execute(
                update(AlertRule)
                .where(
                    AlertRule.id == rule.id,
                    AlertRule.next_evaluation_at <= now,
                    AlertRule.version == rule.version,
                )
                .values(
                    next_evaluation_at=_next_slot(rule.next_evaluation_at, rule.every_seconds, now),
                    claim=token,
                )
                .execution_options(synchronize_session=False)
            )
            if affected_rows(won) == 1:
                claims.append(
                    Claim(
                        token=token,
                        rule_id=rule.id,
                        version=rule.version,
                        tenant=rule.tenant,
                        query=rule.query,
                        op=rule.op,
                        threshold=rule.threshold,
                        for_seconds=rule.for_seconds,
                        due_at=rule.next_evaluation_at,
                    )
                )
        await session.commit()
    return claims


def _next_slot(due_at: datetime, every_seconds: float, now: datetime) -> datetime:
    """The first slot of the rule's rhythm after `now`: a scheduler that fell behind skips the
    missed slots instead of evaluating them all at once."""
    every = timedelta(seconds=every_seconds)
    missed = max(0, math.floor((now - due_at) / every))
    return due_at + every * (missed + 1)


async def metric_values(store: LogStore, *, tenant: str, query: str, at: datetime) -> list[float]:
    """Every series' value of the metric `query` at instant `at`, through the LogQL engine."""
    expr = parse(query)
    if isinstance(expr, ast.LogQuery):
        raise QueryError("an alert needs a metric query")
    at_ns = int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1_000
    value = await evaluate(MetricContext(store, tenant, [at_ns], Stats()), expr)
    if isinstance(value, float):
        return [value]
    check_series_count(value)
    return [series[at_ns] for series in value.values() if at_ns in series]


def condition_holds(op: str, value: float | None, threshold: float) -> bool:
    if value is None or math.isnan(value):
        return False
    return {
        ">": value > threshold,
        ">=": value >= threshold,
        "<": value < threshold,
        "<=": value <= threshold,
    }[op]


def worst_value(op: str, values: list[float]) -> float | None:
    """The value an alert reports: among its series, the one farthest past the threshold's
    side (the largest for `>`/`>=`, the smallest for `<`/`<=`)."""
    numbers = [v for v in values if not math.isnan(v)]
    if not numbers:
        return None
    return max(numbers) if op in (">", ">=") else min(numbers)


@dataclass(frozen=True, slots=True)
class Outcome:
    state: str
    active_since: datetime | None
    kind: str | None
    """The transition made (pending, firing, resolved, cancelled), or None."""


def next_state(
    *, state: str, active_since: datetime | None, holds: bool, for_seconds: float, now: datetime
) -> Outcome:
    """inactive -> pending -> firing -> (resolved) inactive; `for` 0 fires at once."""
    if holds:
        since = active_since if state != "inactive" and active_since is not None else now
        if state == "firing":
            return Outcome("firing", since, None)
        if (now - since).total_seconds() >= for_seconds:
            return Outcome("firing", since, "firing")
        return Outcome("pending", since, None if state == "pending" else "pending")
    if state == "firing":
        return Outcome("inactive", None, "resolved")
    if state == "pending":
        return Outcome("inactive", None, "cancelled")
    return Outcome("inactive", None, None)


async def evaluate_claim(db: Database, store: LogStore, claim: Claim) -> str:
    """Run one claimed evaluation and record it; returns the outcome counted in metrics."""
    now = utcnow()
    started = time.perf_counter()
    value: float | None = None
    error: str | None = None
    try:
        value = worst_value(
            claim.op, await metric_values(store, tenant=claim.tenant, query=claim.query, at=now)
        )
    except QueryError as exc:
        error = str(exc)
    except Exception as exc:  # the store is down or refused: the state waits for a real answer
        error = f"the log store did not answer: {exc}"
    ALERT_EVALUATION_SECONDS.observe(time.perf_counter() - started)
    async with db.session() as session:
        outcome = await _record(session, claim, now=now, value=value, error=error)
    ALERT_EVALUATIONS.labels(outcome).inc()
    log.info(
        "alert_evaluated",
        alert_id=str(claim.rule_id),
        due_at=claim.due_at.isoformat(),
        outcome=outcome,
        value=value,
        error=error,
    )
    return outcome


async def _record(
    session: AsyncSession, claim: Claim, *, now: datetime, value: float | None, error: str | None
) -> str:
    rule = await session.scalar(
        select(AlertRule).where(
            AlertRule.id == claim.rule_id,
            AlertRule.claim == claim.token,
            AlertRule.version == claim.version,
        )
    )
    if rule is None:  # changed, deleted or re-claimed since: this result is not the latest
        return "stale"
    if error is not None:
        done = await session.execute(
            update(AlertRule)
            .where(AlertRule.id == rule.id, AlertRule.claim == claim.token)
            .values(last_evaluated_at=now, last_error=error)
        )
        await session.commit()
        return "error" if affected_rows(done) == 1 else "stale"
    holds = condition_holds(claim.op, value, claim.threshold)
    outcome = next_state(
        state=rule.state,
        active_since=rule.active_since,
        holds=holds,
        for_seconds=claim.for_seconds,
        now=now,
    )
    # Conditional on the claim and on the state read: a transition commits once.
    done = await session.execute(
        update(AlertRule)
        .where(
            AlertRule.id == rule.id,
            AlertRule.claim == claim.token,
            AlertRule.version == claim.version,
            AlertRule.state == rule.state,
        )
        .values(
            state=outcome.state,
            active_since=outcome.active_since,
            last_evaluated_at=now,
            last_value=value,
            last_error=None,
        )
        .execution_options(synchronize_session=False)
    )
    if affected_rows(done) != 1:
        await session.rollback()
        return "stale"
    if outcome.kind is not None:
        transition = AlertTransition(
            id=new_id(),
            alert_id=rule.id,
            from_state=rule.state,
            to_state=outcome.state,
            kind=outcome.kind,
            value=value,
            at=now,
        )
        session.add(transition)
        ALERT_TRANSITIONS.labels(outcome.kind).inc()
        if outcome.kind in ("firing", "resolved"):
            starts_at = rule.active_since if outcome.kind == "resolved" else outcome.active_since
            record_event(
                session,
                AlertStatusChanged(
                    alert_id=rule.id,
                    transition_id=transition.id,
                    tenant=rule.tenant,
                    name=rule.name,
                    status=outcome.kind,
                    query=claim.query,
                    op=claim.op,
                    threshold=claim.threshold,
                    value=value,
                    starts_at=starts_at or now,
                    ends_at=now if outcome.kind == "resolved" else None,
                    labels=dict(rule.labels),
                    notify=[dict(target) for target in rule.notify],
                ),
            )
    await session.commit()
    return "ok"


async def evaluate_due_alerts(db: Database, store: LogStore, *, max_batches: int = 50) -> int:
    """Claim and evaluate due rules until none is due (or `max_batches` are done); returns how
    many evaluations ran here. Other schedulers running this at once take other rules."""
    total = 0
    for _ in range(max_batches):
        claims = await claim_due(db, now=utcnow())
        if not claims:
            break
        for claim in claims:
            await evaluate_claim(db, store, claim)
            total += 1
    return total
