"""Searches a user saved in the logs UI: a name, a LogQL query and a time range."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, UTCDateTime, new_id, utcnow


class SavedSearch(Base):
    __tablename__ = "logs_saved_searches"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    query: Mapped[str] = mapped_column(Text(), nullable=False)
    range: Mapped[str] = mapped_column(String(32), nullable=False)
    """A preset like `1h`, or `<from ns>-<to ns>` for a fixed window."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
