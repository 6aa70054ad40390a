"""reserve_stock / release_stock / ship_stock at the service level, on both databases."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from shopkeeper.core.errors import InvalidInput
from shopkeeper.core.events import OutboxEvent
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.inventory import service
from tests.shop.inventory.conftest import StockFactory

PARIS = (48.8566, 2.3522)
BERLIN = (52.52, 13.405)
MADRID = (40.4168, -3.7038)
LISBON = (38.7223, -9.1393)


async def _reserve(
    runtime: Runtime,
    reference: uuid.UUID,
    lines: list[tuple[str, int]],
    near: tuple[float, float] | None = None,
) -> None:
    async with runtime.db.session() as session:
        await service.reserve_stock(
            session, reference=reference, lines=lines, near=near, settings=runtime.settings
        )
        await session.commit()


async def _levels(runtime: Runtime, sku: str) -> dict[str, tuple[int, int]]:
    """warehouse code -> (on_hand, reserved)"""
    async with runtime.db.session() as session:
        stock = await service.get_stock(session, sku=sku)
    return {level.warehouse: (level.on_hand, level.reserved) for level in stock.warehouses}


async def test_reserve_takes_the_nearest_warehouse_that_can_fill_the_line(
    runtime: Runtime, stock: StockFactory
) -> None:
    await stock("SKU-A", {"BER": 10, "MAD": 10}, coords={"BER": BERLIN, "MAD": MADRID})
    await _reserve(runtime, uuid.uuid4(), [("SKU-A", 3)], near=PARIS)
    await _reserve(runtime, uuid.uuid4(), [("SKU-A", 2)], near=LISBON)
    assert await _levels(runtime, "SKU-A") == {"BER": (10, 3), "MAD": (10, 2)}


async def test_a_farther_warehouse_that_can_fill_the_line_beats_splitting(
    runtime: Runtime, stock: StockFactory
) -> None:
    await stock("SKU-B", {"MAD": 2, "BER": 8}, coords={"MAD": MADRID, "BER": BERLIN})
    await _reserve(runtime, uuid.uuid4(), [("SKU-B", 5)], near=LISBON)
    assert await _levels(runtime, "SKU-B") == {"BER": (8, 5), "MAD": (2, 0)}


async def test_a_line_no_warehouse_can_fill_alone_is_split_nearest_first(
    runtime: Runtime, stock: StockFactory
) -> None:
    await stock(
        "SKU-C",
        {"MAD": 3, "BER": 3, "PAR": 3},
        coords={"MAD": MADRID, "BER": BERLIN, "PAR": PARIS},
    )
    await _reserve(runtime, uuid.uuid4(), [("SKU-C", 7)], near=LISBON)
    # Lisbon: Madrid is nearest, then Paris, then Berlin.
    assert await _levels(runtime, "SKU-C") == {"MAD": (3, 3), "PAR": (3, 3), "BER": (3, 1)}


async def test_without_coordinates_allocation_is_still_deterministic(
    runtime: Runtime, stock: StockFactory
) -> None:
    await stock("SKU-D", {"B-WH": 5, "A-WH": 5})
    await _reserve(runtime, uuid.uuid4(), [("SKU-D", 2), ("SKU-D", 1)])
    assert await _levels(runtime, "SKU-D") == {"A-WH": (5, 3), "B-WH": (5, 0)}


async def test_insufficient_stock_reserves_nothing_of_any_line(
    runtime: Runtime, stock: StockFactory
) -> None:
    await stock("SKU-E", {"W1": 5})
    await stock("SKU-F", {"W1": 1})
    async with runtime.db.session() as session:
        with pytest.raises(service.InsufficientStock) as raised:
            await service.reserve_stock(
                session, reference=uuid.uuid4(), lines=[("SKU-E", 2), ("SKU-F", 2)]
            )
        assert raised.value.extensions["sku"] == "SKU-F"
        await session.commit()
    assert await _levels(runtime, "SKU-E") == {"W1": (5, 0)}
    assert await _levels(runtime, "SKU-F") == {"W1": (1, 0)}


async def test_unknown_sku_is_insufficient_stock(runtime: Runtime) -> None:
    async with runtime.db.session() as session:
        with pytest.raises(service.InsufficientStock):
            await service.reserve_stock(session, reference=uuid.uuid4(), lines=[("GHOST", 1)])


async def test_release_returns_stock_once(runtime: Runtime, stock: StockFactory) -> None:
    await stock("SKU-G", {"W1": 4, "W2": 4})
    order = uuid.uuid4()
    await _reserve(runtime, order, [("SKU-G", 6)])
    assert await _levels(runtime, "SKU-G") == {"W1": (4, 4), "W2": (4, 2)}
    for expected in (True, False):
        async with runtime.db.session() as session:
            assert await service.release_stock(session, reference=order) is expected
            assert await service.ship_stock(session, reference=order) is False
            await session.commit()
        assert await _levels(runtime, "SKU-G") == {"W1": (4, 0), "W2": (4, 0)}


async def test_ship_takes_units_off_the_shelf_once(runtime: Runtime, stock: StockFactory) -> None:
    await stock("SKU-H", {"W1": 4, "W2": 4})
    order = uuid.uuid4()
    await _reserve(runtime, order, [("SKU-H", 6)])
    for expected in (True, False):
        async with runtime.db.session() as session:
            assert await service.ship_stock(session, reference=order) is expected
            assert await service.release_stock(session, reference=order) is False
            await session.commit()
        assert await _levels(runtime, "SKU-H") == {"W1": (0, 0), "W2": (2, 0)}
    async with runtime.db.session() as session:
        assert await service.available_by_sku(session, ["SKU-H", "GHOST"]) == {
            "SKU-H": 2,
            "GHOST": 0,
        }


async def test_on_hand_cannot_be_set_below_reserved(runtime: Runtime, stock: StockFactory) -> None:
    await stock("SKU-I", {"W1": 5})
    await _reserve(runtime, uuid.uuid4(), [("SKU-I", 4)])
    with pytest.raises(service.StockBelowReserved) as raised:
        await stock("SKU-I", {"W1": 3})
    assert raised.value.extensions["reserved"] == 4
    await stock("SKU-I", {"W1": 4})
    assert await _levels(runtime, "SKU-I") == {"W1": (4, 4)}


@pytest.mark.parametrize(
    "assignment",
    ["reserved = on_hand + 1", "reserved = -1", "on_hand = -1, reserved = 0"],
)
async def test_the_database_refuses_negative_available(
    runtime: Runtime, stock: StockFactory, assignment: str
) -> None:
    await stock("SKU-J", {"W1": 2})
    async with runtime.db.session() as session:
        with pytest.raises(IntegrityError):
            await session.execute(text(f"UPDATE stock_levels SET {assignment}"))
    assert await _levels(runtime, "SKU-J") == {"W1": (2, 0)}


async def test_stock_low_is_recorded_when_a_reservation_crosses_the_threshold(
    runtime: Runtime, stock: StockFactory
) -> None:
    threshold = runtime.settings.stock_low_threshold
    await stock("SKU-K", {"W1": threshold + 3})
    await _reserve(runtime, uuid.uuid4(), [("SKU-K", 2)])  # still above
    await _reserve(runtime, uuid.uuid4(), [("SKU-K", 2)])  # crosses: threshold - 1 left
    await _reserve(runtime, uuid.uuid4(), [("SKU-K", 1)])  # already low: no second alert
    async with runtime.db.session() as session:
        payloads = list(
            await session.scalars(
                select(OutboxEvent.payload)
                .where(OutboxEvent.name == "StockLow")
                .order_by(OutboxEvent.created_at)
            )
        )
        changed = list(
            await session.scalars(
                select(OutboxEvent.payload).where(OutboxEvent.name == "StockChanged")
            )
        )
    assert payloads == [{"sku": "SKU-K", "available": threshold - 1, "threshold": threshold}]
    assert {"skus": ["SKU-K"]} in changed


async def test_a_skus_own_threshold_decides_when_stock_low_is_raised(
    runtime: Runtime, stock: StockFactory
) -> None:
    shop = runtime.settings.stock_low_threshold
    await stock("SKU-L", {"W1": shop + 20})  # its own threshold, well above the shop's
    await stock("SKU-M", {"W1": shop + 20})  # the shop's threshold
    async with runtime.db.session() as session:
        await service.set_low_stock_threshold(session, sku="SKU-L", threshold=shop + 15)
    # Both fall to shop + 14: below SKU-L's own threshold, still above the shop's.
    await _reserve(runtime, uuid.uuid4(), [("SKU-L", 6), ("SKU-M", 6)])
    async with runtime.db.session() as session:
        payloads = list(
            await session.scalars(select(OutboxEvent.payload).where(OutboxEvent.name == "StockLow"))
        )
    assert payloads == [{"sku": "SKU-L", "available": shop + 14, "threshold": shop + 15}]

    async with runtime.db.session() as session:
        await service.set_low_stock_threshold(session, sku="SKU-L", threshold=None)
        assert (await service.get_stock(session, sku="SKU-L")).low_stock_threshold is None


async def test_quantities_must_be_positive(runtime: Runtime) -> None:
    async with runtime.db.session() as session:
        with pytest.raises(InvalidInput):
            await service.reserve_stock(session, reference=uuid.uuid4(), lines=[("X", 0)])
