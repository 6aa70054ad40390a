"""Idempotency-Key edge cases: a request still running, a claim abandoned by a dead process,
and the 24-hour retention."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text, update

from shopkeeper.core.db import utcnow
from shopkeeper.core.idempotency import (
    IdempotencyKey,
    idempotency_scope,
    key_lock_number,
    purge_idempotency_keys,
    request_fingerprint,
)
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import decode_access_token
from shopkeeper.shop.orders.jobs import purge_idempotency
from tests.shop.orders.conftest import ADDRESS, checkout, create_cart, create_sku, problem_slug


async def claim_as_running(
    runtime: Runtime, headers: dict[str, str], key: str, cart_id: str, *, age: timedelta
) -> None:
    """The row a request that started `age` ago and has not answered yet leaves behind."""
    principal = decode_access_token(headers["Authorization"].split()[1], runtime.settings)
    body = {"cart_id": cart_id, "email": None, "shipping_address": {**ADDRESS, "line2": None}}
    body["shipping_address"].update(latitude=None, longitude=None)
    started = utcnow() - age
    async with runtime.db.session() as session:
        session.add(
            IdempotencyKey(
                scope=idempotency_scope(principal),
                key=key,
                fingerprint=request_fingerprint("POST", "/api/v1/orders", body),
                status="in_progress",
                locked_at=started,
                created_at=started,
            )
        )
        await session.commit()


async def test_a_retry_while_the_first_runs_is_409(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    await claim_as_running(runtime, customer_headers, "busy", cart_id, age=timedelta(seconds=1))

    response = await checkout(client, customer_headers, cart_id, key="busy")

    assert response.status_code == 409
    assert problem_slug(response) == "idempotency-key-in-progress"
    assert (await client.get("/api/v1/orders", headers=customer_headers)).json()["items"] == []


async def test_a_checkout_holding_the_key_makes_a_concurrent_retry_409_at_once(
    backend: str,
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
) -> None:
    """On PostgreSQL a running checkout holds a transaction-scoped advisory lock on its key; a
    retry that cannot take it answers 409 at once instead of queueing on the unique index."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: a retry waits and then replays")
    sku = await create_sku(client, staff_headers)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    principal = decode_access_token(customer_headers["Authorization"].split()[1], runtime.settings)
    lock = key_lock_number(idempotency_scope(principal), "held")
    async with runtime.db.engine.connect() as running:  # stands in for the first request
        await running.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": lock})

        response = await checkout(client, customer_headers, cart_id, key="held")

        assert response.status_code == 409
        assert problem_slug(response) == "idempotency-key-in-progress"
        assert (await client.get("/api/v1/orders", headers=customer_headers)).json()["items"] == []
        await running.rollback()

    # Once the lock is gone the same key runs.
    assert (await checkout(client, customer_headers, cart_id, key="held")).status_code == 201


async def test_a_claim_abandoned_by_a_dead_process_is_taken_over(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    await claim_as_running(runtime, customer_headers, "orphan", cart_id, age=timedelta(minutes=5))

    response = await checkout(client, customer_headers, cart_id, key="orphan")

    assert response.status_code == 201, response.text
    replay = await checkout(client, customer_headers, cart_id, key="orphan")
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == response.json()["id"]


async def test_keys_are_kept_a_day_then_purged(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
) -> None:
    sku = await create_sku(client, staff_headers)
    for key in ("old", "recent"):
        cart_id = await create_cart(client, customer_headers, [(sku, 1)])
        assert (await checkout(client, customer_headers, cart_id, key=key)).status_code == 201
    async with runtime.db.session() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(created_at=utcnow() - timedelta(hours=24, minutes=1))
        )
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "recent")
            .values(created_at=utcnow() - timedelta(hours=23, minutes=59))
        )
        await session.commit()

    await purge_idempotency(runtime)

    async with runtime.db.session() as session:
        kept = (await session.scalars(select(IdempotencyKey.key))).all()
    assert kept == ["recent"]
    assert await purge_idempotency_keys(runtime.db) == 0
