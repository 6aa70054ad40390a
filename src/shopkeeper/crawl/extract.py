"""What a fetched page yields: its links, title, product offer and the crawl's CSS `fields`.

Links and fields use selectolax's lexbor parser (a C HTML5 parser, tens of times faster than
lxml for this); product markup uses extruct (JSON-LD, microdata, Open Graph), which parses with
lxml and is only run when a crawl asks for products. Prices become Money: price-parser reads the
number in whatever notation the page uses ("1.234,50"), `priceCurrency` gives the currency, and
the currency's ISO 4217 exponent gives the minor units (yen are whole, dinars have three).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin, urlsplit

import extruct
from price_parser import Price
from selectolax.lexbor import LexborHTMLParser

from shopkeeper.core.money import Money, minor_unit_exponent

XML_TYPES = frozenset({"application/xml", "text/xml"})
_MACHINE_NUMBER = re.compile(r"\d+(\.\d+)?")
_PLAIN_ABSOLUTE_PATH = re.compile(r"/(?!/)[A-Za-z0-9._~/%+,=:@!$&'()*-]*(\?[^#\s]+)?")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_LOC = re.compile(rb"<loc>\s*([^<\s]+)\s*</loc>", re.IGNORECASE)
_SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₩": "KRW", "₹": "INR"}
_AVAILABILITY = {
    "instock": "InStock",
    "in stock": "InStock",
    "in_stock": "InStock",
    "outofstock": "OutOfStock",
    "out of stock": "OutOfStock",
    "out_of_stock": "OutOfStock",
    "oos": "OutOfStock",
    "preorder": "PreOrder",
    "pre-order": "PreOrder",
    "backorder": "BackOrder",
    "discontinued": "Discontinued",
    "limitedavailability": "LimitedAvailability",
    "soldout": "SoldOut",
    "instoreonly": "InStoreOnly",
    "onlineonly": "OnlineOnly",
}


@dataclass(frozen=True, slots=True)
class Product:
    name: str | None
    sku: str | None
    price: Money | None
    availability: str | None
    """schema.org ItemAvailability short name: "InStock", "OutOfStock", "PreOrder"..."""


@dataclass(frozen=True, slots=True)
class Extracted:
    title: str | None = None
    links: list[str] = field(default_factory=list)
    """Absolute http(s) URLs in page order, each once; not canonicalised, not scope-checked."""
    product: Product | None = None
    fields: dict[str, str | None] = field(default_factory=dict)


def extract(
    body: bytes,
    *,
    base_url: str,
    content_type: str | None = "text/html",
    links: bool = True,
    product: bool = False,
    fields: Mapping[str, str] | None = None,
    encoding: str | None = None,
) -> Extracted:
    """Everything asked for from one page. A sitemap (XML) gives its `<loc>` URLs as links.
    `encoding` is the Content-Type header's charset; without it the page's own `<meta>`
    declaration is used, else UTF-8."""
    if content_type in XML_TYPES or (content_type is None and body.lstrip()[:5] == b"<?xml"):
        return Extracted(links=sitemap_links(body) if links else [])
    text = decode_html(body, encoding)
    tree = LexborHTMLParser(text)
    title_node = tree.css_first("title")
    title = (title_node.text(strip=True) or None) if title_node is not None else None
    base = _base_href(tree, base_url)
    return Extracted(
        title=title,
        links=_links(tree, base) if links else [],
        product=extract_product(text, url=base_url) if product else None,
        fields=_fields(tree, fields) if fields else {},
    )


def extract_links(body: bytes, *, base_url: str) -> list[str]:
    tree = LexborHTMLParser(decode_html(body, None))
    return _links(tree, _base_href(tree, base_url))


def decode_html(body: bytes, encoding: str | None) -> str:
    """Text of a page: the declared charset, else a `<meta charset>` in its first 2 kB (how a
    browser finds it, HTML section 13.2.3.2), else UTF-8; undecodable bytes are replaced."""
    if encoding is None:
        found = _META_CHARSET.search(body[:2048])
        encoding = found.group(1).decode("ascii") if found else "utf-8"
    try:
        return body.decode(encoding, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def sitemap_links(body: bytes) -> list[str]:
    found = (html.unescape(m.decode("utf-8", errors="replace")) for m in _LOC.findall(body))
    return _unique(url for url in found if _is_http(url))


def _base_href(tree: LexborHTMLParser, page_url: str) -> str:
    node = tree.css_first("base[href]")
    href = node.attributes.get("href") if node is not None else None
    if not href:
        return page_url
    try:
        base = urljoin(page_url, href.strip())
    except ValueError:
        return page_url
    return base if _is_http(base) else page_url


def _links(tree: LexborHTMLParser, base: str) -> list[str]:
    found = []
    base_parts = urlsplit(base)
    origin = f"{base_parts.scheme}://{base_parts.netloc}"
    for node in tree.css("a[href], area[href], link[rel=next][href], link[rel=prev][href]"):
        href = (node.attributes.get("href") or "").strip()
        if not href or href.startswith("#"):
            continue
        if _PLAIN_ABSOLUTE_PATH.fullmatch(href) and "/." not in href:
            # urljoin's answer for "/a/b" without dot segments, at a tenth of its cost.
            found.append(origin + href)
            continue
        try:
            absolute = urljoin(base, href)
        except ValueError:  # "http://[::1/x": a broken link is skipped, not the page
            continue
        if _is_http(absolute):
            found.append(absolute)
    return _unique(found)


def _fields(tree: LexborHTMLParser, selectors: Mapping[str, str]) -> dict[str, str | None]:
    """`selector` gives the first match's text; `selector@attr` its attribute."""
    values: dict[str, str | None] = {}
    for name, selector in selectors.items():
        css, _, attribute = selector.rpartition("@") if "@" in selector else (selector, "", "")
        node = tree.css_first(css)
        if node is None:
            values[name] = None
        elif attribute:
            values[name] = node.attributes.get(attribute)
        else:
            values[name] = node.text(strip=True)
    return values


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def _unique(urls: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(urls))


# --- products ---------------------------------------------------------------------------------


def extract_product(body: bytes | str, *, url: str) -> Product | None:
    """The page's product, from JSON-LD, else microdata, else Open Graph."""
    document = decode_html(body, None) if isinstance(body, bytes) else body
    try:
        data = extruct.extract(
            document,
            base_url=url,
            syntaxes=["json-ld", "microdata", "opengraph"],
            uniform=True,
            errors="ignore",
        )
    except Exception:  # extruct raises whatever lxml or json raise on broken markup
        return None
    for item in _flatten(data.get("json-ld", [])) + _flatten(data.get("microdata", [])):
        if _is_product(item):
            return _schema_product(item)
    for item in data.get("opengraph", []):
        if str(item.get("@type", "")).lower() in {"product", "og:product", "product.item"}:
            return _opengraph_product(item)
    return None


def _flatten(items: Iterable[Any]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, list):
            flat.extend(_flatten(item))
        elif isinstance(item, dict):
            flat.append(item)
            if isinstance(item.get("@graph"), list):
                flat.extend(_flatten(item["@graph"]))
    return flat


def _is_product(item: Mapping[str, Any]) -> bool:
    kinds = item.get("@type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return any(str(kind).rsplit("/", 1)[-1] in {"Product", "ProductGroup"} for kind in kinds)


def _schema_product(item: Mapping[str, Any]) -> Product:
    offer = _first_offer(item.get("offers"))
    price = None
    availability = None
    if offer is not None:
        amount = offer.get("price", offer.get("lowPrice"))
        currency = offer.get("priceCurrency")
        specification = offer.get("priceSpecification")
        if amount is None and isinstance(specification, Mapping):
            amount = specification.get("price")
            currency = currency or specification.get("priceCurrency")
        price = to_money(amount, currency)
        availability = normalise_availability(offer.get("availability"))
    return Product(
        name=_text(item.get("name")),
        sku=_text(item.get("sku") or item.get("productID") or item.get("mpn")),
        price=price,
        availability=availability,
    )


def _first_offer(offers: Any) -> Mapping[str, Any] | None:
    candidates = offers if isinstance(offers, list) else [offers]
    mappings = [offer for offer in candidates if isinstance(offer, Mapping)]
    for offer in mappings:
        if any(key in offer for key in ("price", "lowPrice", "priceSpecification")):
            return offer
    return mappings[0] if mappings else None


def _opengraph_product(item: Mapping[str, Any]) -> Product:
    amount = item.get("product:price:amount", item.get("og:price:amount"))
    currency = item.get("product:price:currency", item.get("og:price:currency"))
    return Product(
        name=_text(item.get("og:title")),
        sku=_text(item.get("product:retailer_item_id") or item.get("product:sku")),
        price=to_money(amount, currency),
        availability=normalise_availability(
            item.get("product:availability", item.get("og:availability"))
        ),
    )


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    return str(value).strip() or None


def normalise_availability(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    short = text.rstrip("/").rsplit("/", 1)[-1]
    return _AVAILABILITY.get(short.lower(), short)


def to_money(amount: Any, currency: Any) -> Money | None:
    """A page's price and currency as Money, or None when either cannot be read."""
    amount_text = _text(amount)
    if amount_text is None:
        return None
    code = (_text(currency) or "").upper()
    value: Decimal | None
    if _MACHINE_NUMBER.fullmatch(amount_text):
        # schema.org and Open Graph values use "." for decimals whatever the locale; price-parser
        # would read "1.234" as a thousand.
        value = Decimal(amount_text)
    else:
        parsed = Price.fromstring(amount_text, currency_hint=code or None)
        value = parsed.amount
        if not code:
            code = _SYMBOLS.get((parsed.currency or "").strip(), "")
    if value is None or len(code) != 3 or not code.isalpha():
        return None
    try:
        return Money(amount=to_minor_units(value, code), currency=code)
    except (InvalidOperation, ValueError):
        return None


def to_minor_units(amount: Decimal, currency: str) -> int:
    """12.34 USD -> 1234; 1980 JPY -> 1980; 1.2345 KWD -> 1235 (half-even to the exponent)."""
    exponent = minor_unit_exponent(currency)
    return int((amount * (10**exponent)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
