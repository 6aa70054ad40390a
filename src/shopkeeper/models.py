"""Every table of every domain, imported in one place for Alembic, the admin and tests."""

from shopkeeper.core.events import OutboxEvent, ProcessedEvent
from shopkeeper.inventory.models import StockAllocation, StockLevel, Warehouse
from shopkeeper.users.models import RefreshToken, User

__all__ = [
    "OutboxEvent",
    "ProcessedEvent",
    "RefreshToken",
    "StockAllocation",
    "StockLevel",
    "User",
    "Warehouse",
]
