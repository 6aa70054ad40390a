from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

PASSWORD_MIN_LENGTH = 8
# argon2 hashes any length, but a megabyte password is only a way to burn our CPU.
PASSWORD_MAX_LENGTH = 256


class RegisterRequest(BaseModel):
    # Unknown fields are refused, so `is_staff` smuggled into a registration is a 422.
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
    full_name: str | None = Field(default=None, max_length=200)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str | None
    is_staff: bool
    roles: list[str]
    created_at: datetime


class RolesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[Annotated[str, Field(max_length=50)]] = Field(max_length=20)


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Annotated[str, Field(max_length=50)]] = Field(min_length=1, max_length=20)
    tenant: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[\w.-]+$")


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    scopes: list[str]
    tenant: str
    created_at: datetime


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown this once, stored only as a hash")


class ApiKeyPage(BaseModel):
    items: list[ApiKeyOut]
    next_cursor: str | None


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (OAuth2 token type, not a secret)
    expires_in: int


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=512)
