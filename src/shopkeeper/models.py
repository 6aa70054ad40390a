"""Every table of every domain, imported in one place for Alembic, the admin and tests."""

from shopkeeper.accounts.models import ApiKey, RefreshToken, User, UserRole
from shopkeeper.core.idempotency import IdempotencyKey
from shopkeeper.core.mail import OutboundMail
from shopkeeper.core.messaging.events import OutboxEvent, ProcessedEvent
from shopkeeper.core.messaging.periodic import JobLease
from shopkeeper.crawl.frontier.models import CrawlHost, CrawlHostPolicy, CrawlURL, FrontierCrawl
from shopkeeper.crawl.jobs.models import Job as CrawlJob
from shopkeeper.crawl.jobs.models import JobItem as CrawlJobItem
from shopkeeper.crawl.models import Crawl
from shopkeeper.crawl.models import Page as CrawlPage
from shopkeeper.crawl.models import Worker as CrawlWorker
from shopkeeper.crawl.robots_models import CrawlRobots
from shopkeeper.crawl.schedules.models import Schedule as CrawlSchedule
from shopkeeper.logs.alerts.models import AlertRule, AlertTransition
from shopkeeper.shop.carts.models import Cart, CartItem
from shopkeeper.shop.catalog.models import Category, Product, Variant
from shopkeeper.shop.inventory.models import StockAllocation, StockLevel, Warehouse
from shopkeeper.shop.orders.models import Order, OrderLine, OrderNumberCounter, OrderTransition
from shopkeeper.shop.payments.models import AppliedProviderEvent, Payment, PaymentCallback, Refund
from shopkeeper.shop.promotions.models import Voucher, VoucherCategory, VoucherCustomerUse
from shopkeeper.shop.shipping.models import ShippingMethod, ShippingZone, TaxRate

__all__ = [
    "AlertRule",
    "AlertTransition",
    "ApiKey",
    "AppliedProviderEvent",
    "Cart",
    "CartItem",
    "Category",
    "Crawl",
    "CrawlHost",
    "CrawlHostPolicy",
    "CrawlJob",
    "CrawlJobItem",
    "CrawlPage",
    "CrawlRobots",
    "CrawlSchedule",
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
    "ShippingMethod",
    "ShippingZone",
    "StockAllocation",
    "StockLevel",
    "TaxRate",
    "User",
    "UserRole",
    "Variant",
    "Voucher",
    "VoucherCategory",
    "VoucherCustomerUse",
    "Warehouse",
]
