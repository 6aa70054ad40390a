"""What the users domain tells others. Frozen dataclasses, past tense, ids not objects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class UserRegistered:
    user_id: uuid.UUID
    email: str
    full_name: str | None
