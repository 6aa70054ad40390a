"""Every table of every domain, imported in one place for Alembic, the admin and tests."""

from shopkeeper.core.events import OutboxEvent, ProcessedEvent
from shopkeeper.users.models import RefreshToken, User

__all__ = ["OutboxEvent", "ProcessedEvent", "RefreshToken", "User"]
