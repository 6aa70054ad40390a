"""Every table of every domain, imported in one place for Alembic, the admin and tests."""

from shopkeeper.carts.models import Cart, CartItem
from shopkeeper.catalog.models import Category, Product, Variant
from shopkeeper.core.events import OutboxEvent, ProcessedEvent
from shopkeeper.core.idempotency import IdempotencyKey
from shopkeeper.core.jobs import JobLease
from shopkeeper.core.mail import OutboundMail
from shopkeeper.crawl.frontier.models import CrawlHost, CrawlHostPolicy, CrawlURL, FrontierCrawl
from shopkeeper.crawl.models import Crawl
from shopkeeper.crawl.models import Page as CrawlPage
from shopkeeper.crawl.models import Worker as CrawlWorker
from shopkeeper.crawl.robots_models import CrawlRobots
from shopkeeper.inventory.models import StockAllocation, StockLevel, Warehouse
from shopkeeper.orders.models import Order, OrderLine, OrderNumberCounter, OrderTransition
from shopkeeper.payments.models import AppliedProviderEvent, Payment, PaymentCallback, Refund
from shopkeeper.users.models import RefreshToken, User

__all__ = [
    "AppliedProviderEvent",
    "Cart",
    "CartItem",
    "Category",
    "Crawl",
    "CrawlHost",
    "CrawlHostPolicy",
    "CrawlPage",
    "CrawlRobots",
    "CrawlURL",
    "CrawlWorker",
    "FrontierCrawl",
    "IdempotencyKey",
    "JobLease",
    "Order",
    "OrderLine",
    "OrderNumberCounter",
    "OrderTransition",
    "OutboundMail",
    "OutboxEvent",
    "Payment",
    "PaymentCallback",
    "ProcessedEvent",
    "Product",
    "RefreshToken",
    "Refund",
    "StockAllocation",
    "StockLevel",
    "User",
    "Variant",
    "Warehouse",
]
