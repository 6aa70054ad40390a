"""Request and response bodies of the alerts API (API.md, "Alerts and retention")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, EmailStr, Field, field_validator

from shopkeeper.logs.query.lexer import parse_duration_seconds

AlertOp = Literal[">", ">=", "<", "<="]
AlertState = Literal["inactive", "pending", "firing"]
TransitionKind = Literal["pending", "firing", "resolved", "cancelled"]

MIN_EVERY_SECONDS = 1.0
MAX_DURATION_SECONDS = 7 * 24 * 3600.0


class EmailTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["email"]
    to: EmailStr


class WebhookTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook"]
    url: AnyHttpUrl


NotifyTarget = Annotated[EmailTarget | WebhookTarget, Field(discriminator="type")]


def _duration(value: str, *, minimum: float) -> str:
    seconds = parse_duration_seconds(value)
    if seconds is None:
        raise ValueError(f"{value!r} is not a duration such as 30s, 5m or 1h")
    if not minimum <= seconds <= MAX_DURATION_SECONDS:
        raise ValueError(f"must be between {minimum:g}s and 7d")
    return value


class _Durations(BaseModel):
    @field_validator("for_", check_fields=False)
    @classmethod
    def _for(cls, value: str | None) -> str | None:
        return None if value is None else _duration(value, minimum=0)

    @field_validator("every", check_fields=False)
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        return None if value is None else _duration(value, minimum=MIN_EVERY_SECONDS)


class AlertCreate(_Durations):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=200)
    query: str = Field(min_length=1, max_length=10_000, description="A LogQL metric query")
    op: AlertOp
    threshold: float
    for_: str = Field(default="0s", alias="for", max_length=32, examples=["1m"])
    every: str = Field(default="1m", max_length=32, examples=["15s"])
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)
    notify: list[NotifyTarget] = Field(default_factory=list, max_length=20)


class AlertUpdate(_Durations):
    """PATCH: the fields given replace the rule's; the change applies from its next evaluation."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    query: str | None = Field(default=None, min_length=1, max_length=10_000)
    op: AlertOp | None = None
    threshold: float | None = None
    for_: str | None = Field(default=None, alias="for", max_length=32)
    every: str | None = Field(default=None, max_length=32)
    labels: dict[str, str] | None = Field(default=None, max_length=50)
    notify: list[NotifyTarget] | None = Field(default=None, max_length=20)


class AlertOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: uuid.UUID
    name: str
    query: str
    op: AlertOp
    threshold: float
    for_: str = Field(alias="for")
    every: str
    labels: dict[str, str]
    notify: list[NotifyTarget]
    state: AlertState
    last_evaluated_at: datetime | None
    last_value: float | None
    last_error: str | None
    active_since: datetime | None
    created_at: datetime
    updated_at: datetime


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class TransitionOut(BaseModel):
    id: uuid.UUID
    kind: TransitionKind
    from_state: AlertState
    to_state: AlertState
    value: float | None
    at: datetime


class TransitionPage(BaseModel):
    items: list[TransitionOut]
    next_cursor: str | None
