"""Property: any sequence of reserve, release, ship and restock keeps 0 <= reserved <= on_hand
in every warehouse, and the totals agree with a plain model of what should have happened."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.inventory import service
from tests.shop.inventory.conftest import create_product

WAREHOUSES = ("P-A", "P-B")

operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(1, 12)),
        st.tuples(st.just("release"), st.integers(0, 7)),
        st.tuples(st.just("ship"), st.integers(0, 7)),
        st.tuples(st.just("restock"), st.integers(0, 1), st.integers(0, 15)),
    ),
    min_size=1,
    max_size=14,
)


@dataclass
class Model:
    reserved: dict[uuid.UUID, int] = field(default_factory=dict)
    """Open reservations and their size."""
    settled: set[uuid.UUID] = field(default_factory=set)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
async def test_any_sequence_keeps_reserved_within_on_hand(
    runtime: Runtime, ops: list[tuple[Any, ...]]
) -> None:
    sku = f"PROP-{uuid.uuid4().hex[:10]}"
    await create_product(runtime, sku)
    for code in WAREHOUSES:  # made by the first example, found by the others
        async with runtime.db.session() as session:
            with contextlib.suppress(service.WarehouseCodeTaken):
                await service.create_warehouse(session, code=code, name=code)
    model = Model()
    references: list[uuid.UUID] = []

    for op in ops:
        async with runtime.db.session() as session:
            before = await service.get_stock(session, sku=sku)
            if op[0] == "reserve":
                quantity = op[1]
                reference = uuid.uuid4()
                try:
                    await service.reserve_stock(
                        session, reference=reference, lines=[(sku, quantity)]
                    )
                except service.InsufficientStock:
                    assert quantity > before.available
                else:
                    assert quantity <= before.available
                    model.reserved[reference] = quantity
                    references.append(reference)
            elif op[0] in {"release", "ship"}:
                index = op[1]
                reference = references[index % len(references)] if references else uuid.uuid4()
                settle = service.release_stock if op[0] == "release" else service.ship_stock
                done = await settle(session, reference=reference)
                assert done is (reference in model.reserved)
                if done:
                    model.reserved.pop(reference)
                    model.settled.add(reference)
            else:
                code, on_hand = WAREHOUSES[op[1]], op[2]
                held = next((lv.reserved for lv in before.warehouses if lv.warehouse == code), 0)
                try:
                    await service.set_stock_level(
                        session, sku=sku, warehouse_code=code, on_hand=on_hand
                    )
                except service.StockBelowReserved:
                    assert on_hand < held
                else:
                    assert on_hand >= held
            await session.commit()

        async with runtime.db.session() as session:
            after = await service.get_stock(session, sku=sku)
        for level in after.warehouses:
            assert 0 <= level.reserved <= level.on_hand
        assert after.reserved == sum(model.reserved.values())
