"""What the crawl test site serves: its products in three markups, and plain pages."""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SiteProduct:
    path: str
    name: str
    sku: str
    amount: int
    """Minor units by the currency's ISO 4217 exponent."""
    currency: str
    availability: str
    markup: str
    """`jsonld`, `microdata` or `opengraph`."""


def _products() -> list[SiteProduct]:
    prices = {"USD": (1999, "19.99"), "EUR": (123450, "1234.50"), "JPY": (1980, "1980")}
    result = []
    for i in range(1, 13):
        markup = ("jsonld", "microdata", "opengraph")[(i - 1) % 3]
        currency = ("USD", "EUR", "JPY")[((i - 1) // 3) % 3]
        amount = prices[currency][0] + i
        result.append(
            SiteProduct(
                path=f"/product/{i}",
                name=f"Product {i}",
                sku=f"SKU-{i:03d}",
                amount=amount,
                currency=currency,
                availability="InStock" if i % 2 else "OutOfStock",
                markup=markup,
            )
        )
    return result


PRODUCTS = _products()
PRODUCTS_PER_LIST_PAGE = 4


def major_units(amount: int, currency: str) -> str:
    if currency == "JPY":
        return str(amount)
    return f"{amount // 100}.{amount % 100:02d}"


def page_html(title: str, links: list[str], extra_head: str = "", body: str = "") -> bytes:
    anchors = "\n".join(f'<a href="{href}">{href}</a>' for href in links)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{extra_head}"
        f"</head><body><h1>{title}</h1>{body}\n{anchors}\n</body></html>"
    ).encode()


def product_html(product: SiteProduct) -> bytes:
    price = major_units(product.amount, product.currency)
    head = ""
    body = f'<p class="stock-count">{7 if product.availability == "InStock" else 0}</p>'
    if product.markup == "jsonld":
        document = {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": product.name,
            "sku": product.sku,
            "offers": {
                "@type": "Offer",
                # A number for yen, a string otherwise: both occur in the wild.
                "price": int(price) if product.currency == "JPY" else price,
                "priceCurrency": product.currency,
                "availability": f"https://schema.org/{product.availability}",
            },
        }
        head = f'<script type="application/ld+json">{json.dumps(document)}</script>'
    elif product.markup == "microdata":
        body += (
            f'<div itemscope itemtype="https://schema.org/Product">'
            f'<span itemprop="name">{product.name}</span>'
            f'<span itemprop="sku">{product.sku}</span>'
            f'<div itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
            f'<meta itemprop="priceCurrency" content="{product.currency}">'
            f'<span itemprop="price" content="{price}">{price} {product.currency}</span>'
            f'<link itemprop="availability" href="https://schema.org/{product.availability}">'
            f"</div></div>"
        )
    else:
        availability = "instock" if product.availability == "InStock" else "oos"
        head = (
            f'<meta property="og:type" content="product">'
            f'<meta property="og:title" content="{product.name}">'
            f'<meta property="product:retailer_item_id" content="{product.sku}">'
            f'<meta property="product:price:amount" content="{price}">'
            f'<meta property="product:price:currency" content="{product.currency}">'
            f'<meta property="product:availability" content="{availability}">'
        )
    return page_html(product.name, ["/", "/products?page=1"], head, body)


def http_date(epoch_seconds: float) -> str:
    return email.utils.formatdate(epoch_seconds, usegmt=True)
