"""Against real `shopkeeper serve` processes: duplicate callbacks racing across two processes on
PostgreSQL apply once, and the sandbox delivers its own signed callbacks over HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.shop.payments.conftest import OrderFactory, order_status, start_payment
from tests.shop.payments.helpers import WEBHOOKS, mails, paid_transitions, sandbox_callback


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("cross-process races are proved on PostgreSQL")


async def test_same_callback_ten_times_across_two_processes_pays_once(
    postgres_only: None,
    client: httpx.AsyncClient,
    runtime: Runtime,
    settings: Settings,
    server_factory: Any,
    customer_headers: dict[str, str],
    new_order: OrderFactory,
    drained: Any,
) -> None:
    first, second = await asyncio.gather(server_factory(settings), server_factory(settings))
    order = await new_order(customer_headers)
    payment = await start_payment(client, customer_headers, order["id"], "sandbox")
    headers, body = sandbox_callback(payment)

    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    f"{(first, second)[i % 2]}{WEBHOOKS}/sandbox", headers=headers, content=body
                )
                for i in range(10)
            )
        )
    assert [a.status_code for a in answers] == [200] * 10
    assert all(a.json() == {"received": True} for a in answers)
    assert await order_status(client, customer_headers, order["id"]) == "paid"
    assert await paid_transitions(runtime, order["id"]) == 1
    await drained()
    assert await mails(runtime, "payment_received") == [order["email"]]


async def test_sandbox_flow_over_http_from_order_to_paid(
    client: httpx.AsyncClient,
    runtime: Runtime,
    settings: Settings,
    server_factory: Any,
    customer_headers: dict[str, str],
    new_order: OrderFactory,
) -> None:
    server = await server_factory(settings)
    order = await new_order(customer_headers)
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        payment = await start_payment(http, customer_headers, order["id"], "sandbox")
        assert payment["action"]["type"] == "none"
        asked = await http.post(
            f"/api/v1/payments/{payment['id']}/sandbox/succeed",
            headers=customer_headers,
            json={"duplicates": 3},
        )
        assert asked.status_code == 202, asked.text
        deadline = time.monotonic() + 20
        status = "pending_payment"
        while status != "paid" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            status = await order_status(http, customer_headers, order["id"])
        assert status == "paid"
        current = await http.get(f"/api/v1/payments/{payment['id']}", headers=customer_headers)
        assert current.json()["status"] == "succeeded"
    assert await paid_transitions(runtime, order["id"]) == 1


async def test_concurrent_refunds_never_exceed_the_captured_amount(
    postgres_only: None,
    client: httpx.AsyncClient,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
) -> None:
    from tests.shop.payments.helpers import deliver, refund_headers

    order = await new_order(customer_headers, price=1_000, quantity=3)
    payment = await start_payment(client, customer_headers, order["id"], "sandbox")
    await deliver(client, "sandbox", *sandbox_callback(payment))
    total = payment["amount"]["amount"]
    piece = total // 4
    answers = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/payments/{payment['id']}/refunds",
                headers=refund_headers(staff_headers),
                json={"amount": piece},
            )
            for _ in range(12)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == total // piece
    assert all(
        a.json()["type"].endswith("/refund-exceeds-captured")
        for a in answers
        if a.status_code != 201
    )
    final = await client.get(f"/api/v1/payments/{payment['id']}", headers=staff_headers)
    assert final.json()["refunded"]["amount"] == piece * (total // piece) <= total
