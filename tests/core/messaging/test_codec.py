"""Events survive the trip to a JSON payload and back as the same frozen dataclass."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import pkgutil
import typing
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shopkeeper
from shopkeeper.core.mail import MailQueued
from shopkeeper.core.messaging.codec import EventDecodeError, decode, encode
from shopkeeper.shop.inventory.events import StockLow


class Tier(enum.StrEnum):
    GOLD = "gold"
    SILVER = "silver"


@dataclass(frozen=True)
class Price:
    amount: int
    currency: str


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    price: Price


@dataclass(frozen=True, slots=True)
class Probed:
    """One field of each shape an event may hold."""

    id: uuid.UUID
    at: datetime
    day: date
    lines: tuple[Line, ...]
    pair: tuple[int, str]
    tags: list[str]
    counts: dict[str, int]
    keyed: dict[uuid.UUID, Price]
    total: Decimal
    tier: Tier
    flag: bool
    ratio: float
    note: str | None
    discount: Price | None
    code: int | str
    seen: frozenset[str] = frozenset()


# What a JSON number carries without loss (orjson, like PostgreSQL's bigint, stops at 64 bits).
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
prices = st.builds(Price, amount=int64, currency=st.sampled_from(["EUR", "USD", "JPY"]))
probes = st.builds(
    Probed,
    lines=st.lists(st.builds(Line, quantity=int64, price=prices), max_size=4).map(tuple),
    keyed=st.dictionaries(st.uuids(), prices, max_size=3),
    total=st.decimals(allow_nan=False, allow_infinity=False),
    ratio=st.floats(allow_nan=False, allow_infinity=False),
    pair=st.tuples(int64, st.text()),
    counts=st.dictionaries(st.text(), int64),
    code=int64 | st.text(),
    at=st.datetimes(timezones=st.none() | st.just(UTC)),
    discount=st.none() | prices,
    seen=st.frozensets(st.text(max_size=5), max_size=4),
)


def _through_json(event: object) -> Any:
    """As the database hands the payload back (orjson in, JSON out)."""
    return json.loads(orjson.dumps(encode(event)))


@settings(deadline=None)
@given(probes)
def test_every_shape_round_trips(event: Probed) -> None:
    assert decode(Probed, _through_json(event)) == event


def _shop_event_classes() -> list[type]:
    """Every event class of every system: the dataclasses of each `events` module."""
    found: list[type] = [MailQueued]
    for info in pkgutil.walk_packages(shopkeeper.__path__, "shopkeeper."):
        if info.name.rsplit(".", 1)[1] != "events" or info.name.startswith("shopkeeper.core."):
            continue
        module = importlib.import_module(info.name)
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and dataclasses.is_dataclass(value)
            and value.__module__ == module.__name__
        ]
    return found


EVENT_CLASSES = _shop_event_classes()


def _events_of(event_type: type) -> st.SearchStrategy[Any]:
    """`st.builds` of the class, with 64-bit ints where it has ints."""
    hints = typing.get_type_hints(event_type)
    overrides: dict[str, st.SearchStrategy[Any]] = {}
    for field in dataclasses.fields(event_type):
        if hints[field.name] is int:
            overrides[field.name] = int64
        elif hints[field.name] == int | None:
            overrides[field.name] = st.none() | int64
        # Infinities round-trip; NaN does too, but is never equal to itself.
        elif hints[field.name] is float:
            overrides[field.name] = st.floats(allow_nan=False)
        elif hints[field.name] == float | None:
            overrides[field.name] = st.none() | st.floats(allow_nan=False)
        elif dataclasses.is_dataclass(hints[field.name]):
            overrides[field.name] = _events_of(hints[field.name])
    return st.builds(event_type, **overrides)


def test_the_walk_finds_the_shops_events() -> None:
    names = {cls.__name__ for cls in EVENT_CLASSES}
    assert {"OrderPlaced", "PaymentRefunded", "StockLow", "UserRegistered"} <= names


@pytest.mark.parametrize("event_type", EVENT_CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_each_real_event_round_trips(event_type: type, data: st.DataObject) -> None:
    event = data.draw(_events_of(event_type))
    assert decode(event_type, _through_json(event)) == event


def test_fields_a_newer_producer_added_are_ignored() -> None:
    payload = {"sku": "A-1", "available": 2, "threshold": 5, "warehouse": "north"}
    assert decode(StockLow, payload) == StockLow(sku="A-1", available=2, threshold=5)


def test_a_field_an_older_producer_lacked_takes_its_default() -> None:
    assert decode(StockLow, {"sku": "A-1", "available": 2}) == StockLow(sku="A-1", available=2)


def test_a_missing_required_field_is_named() -> None:
    with pytest.raises(EventDecodeError, match=r"StockLow\.available: missing"):
        decode(StockLow, {"sku": "A-1"})


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"amount": "12", "currency": "EUR"}, "Price.amount"),
        ({"amount": True, "currency": "EUR"}, "Price.amount"),  # a bool is no amount
        ({"amount": 1.5, "currency": "EUR"}, "Price.amount"),
        ({"amount": 1, "currency": None}, "Price.currency"),
        ([1, "EUR"], "Price"),
    ],
)
def test_a_value_of_the_wrong_shape_is_refused_with_its_path(payload: Any, where: str) -> None:
    with pytest.raises(EventDecodeError, match=rf"^{where}\b"):
        decode(Price, payload)


def test_nested_errors_carry_the_whole_path() -> None:
    good = Line(sku="A", quantity=1, price=Price(amount=1, currency="EUR"))
    payload = _through_json(good)
    payload["price"]["amount"] = "lots"
    with pytest.raises(EventDecodeError, match=r"Line\.price\.amount"):
        decode(Line, payload)


def _probe(**changes: Any) -> Probed:
    fields: dict[str, Any] = {
        "id": uuid.UUID(int=1),
        "at": datetime(2026, 12, 4, 12, 0, tzinfo=UTC),
        "day": date(2026, 12, 4),
        "lines": (),
        "pair": (1, "a"),
        "tags": ["x"],
        "counts": {"a": 1},
        "keyed": {},
        "total": Decimal("1.10"),
        "tier": Tier.SILVER,
        "flag": True,
        "ratio": 1.0,
        "note": "n",
        "discount": None,
        "code": 1,
    }
    return Probed(**{**fields, **changes})


@pytest.mark.parametrize(
    ("field", "bad"),
    [("id", "nope"), ("at", "yesterday"), ("day", 20261204), ("tier", "bronze"), ("pair", [1])],
)
def test_ill_formed_ids_dates_enums_and_tuples_are_refused(field: str, bad: Any) -> None:
    with pytest.raises(EventDecodeError, match=rf"Probed\.{field}"):
        decode(Probed, {**_through_json(_probe()), field: bad})


def test_a_union_keeps_a_value_that_already_has_one_of_its_types() -> None:
    price = Price(amount=1, currency="EUR")
    decoded = decode(Probed, _through_json(_probe(code="7", discount=price)))
    assert decoded.code == "7"
    assert decoded.discount == price


def test_encode_refuses_what_is_not_a_dataclass_instance() -> None:
    with pytest.raises(TypeError):
        encode({"order_id": "1"})
    with pytest.raises(TypeError):
        encode(Price)
