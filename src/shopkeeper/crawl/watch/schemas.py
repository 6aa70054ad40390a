"""Request and response bodies of the price-watch API (API.md, "Price watch")."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopkeeper.core.money import Money

MIN_EVERY_SECONDS = 5
DEFAULT_EVERY = "6h"
_DURATION = re.compile(r"(\d{1,7})([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """ "30s", "15m", "6h", "1d" -> seconds; ValueError for anything else or below 5 s."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError('a duration like "30s", "15m", "6h" or "1d"')
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < MIN_EVERY_SECONDS:
        raise ValueError(f"at least {MIN_EVERY_SECONDS}s")
    return seconds


class WatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=2000)
    selector: str | None = Field(default=None, min_length=1, max_length=500)
    """CSS selector of the price text (`css` or `css@attr`), read when the page has no product
    markup."""
    every: str = DEFAULT_EVERY

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        duration_seconds(value)
        return value


class WatchOut(BaseModel):
    id: uuid.UUID
    sku: str
    url: str
    selector: str | None
    every: str
    last_price: Money | None
    last_checked_at: datetime | None
    last_error: str | None


class PriceOut(BaseModel):
    price: Money
    previous: Money | None
    observed_at: datetime
