"""Request and response models of the catalog."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shopkeeper.core.bounds import bounded_json
from shopkeeper.core.money import Money, Price

Slug = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ProductName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Sku = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^\S+$")
]
ATTRIBUTES_MAX_DEPTH = 4
ATTRIBUTES_MAX_BYTES = 16 * 1024
Attributes = Annotated[
    dict[str, Any],
    Field(
        max_length=50,
        description=f"Free-form JSON: at most 50 keys, {ATTRIBUTES_MAX_DEPTH} levels deep and "
        f"{ATTRIBUTES_MAX_BYTES} bytes encoded",
    ),
    bounded_json(max_depth=ATTRIBUTES_MAX_DEPTH, max_bytes=ATTRIBUTES_MAX_BYTES),
]


WeightGrams = Annotated[int, Field(ge=0, le=10_000_000, strict=True)]


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    slug: Slug | None = None
    parent_id: uuid.UUID | None = None


class CategoryOut(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    parent_id: uuid.UUID | None
    created_at: datetime


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    name: Name | None = None
    price: Price
    attributes: Attributes = Field(default_factory=dict)
    weight_grams: WeightGrams = 0
    """Shipping weight of one unit; shipping methods with `max_weight_grams` compare the cart's."""


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ProductName
    slug: Slug | None = None
    description: Annotated[str, Field(max_length=20_000)] = ""
    category_id: uuid.UUID | None = None
    attributes: Attributes = Field(default_factory=dict)
    variants: Annotated[list[VariantIn], Field(min_length=1, max_length=100)]


class ProductPatch(BaseModel):
    """Only the fields present change; variants are not edited here."""

    model_config = ConfigDict(extra="forbid")

    name: ProductName | None = None
    """An explicit null is refused by the service (422); absent means unchanged."""
    slug: Slug | None = None
    description: Annotated[str, Field(max_length=20_000)] | None = None
    category_id: uuid.UUID | None = None
    attributes: Attributes | None = None


class VariantOut(BaseModel):
    id: uuid.UUID
    sku: str
    name: str | None
    price: Money
    attributes: dict[str, Any]
    available: int
    weight_grams: int


class VariantPatch(BaseModel):
    """Only the fields present change. A new price applies to carts from now on; orders already
    placed keep the price they were placed at."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    price: Price | None = None
    attributes: Attributes | None = None
    weight_grams: WeightGrams | None = None


class CategoryPatch(BaseModel):
    """Only the fields present change; `parent_id: null` makes it a top-level category."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    slug: Slug | None = None
    parent_id: uuid.UUID | None = None


class ProductOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    description: str
    category_id: uuid.UUID | None
    attributes: dict[str, Any]
    variants: list[VariantOut]
    created_at: datetime
    updated_at: datetime


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None
