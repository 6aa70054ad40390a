"""Extraction from the site's pages (three product markups) and from hand-written edge cases."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urljoin

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.core.money import Money
from shopkeeper.crawl.extract import (
    Product,
    extract,
    extract_product,
    normalise_availability,
    to_minor_units,
    to_money,
)
from tests.support.crawl_site import PRODUCTS, CrawlSite, SiteProduct, product_html


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda p: f"{p.markup}-{p.currency}")
def test_products_in_every_markup_and_currency(product: SiteProduct) -> None:
    url = f"http://127.0.0.2:8080{product.path}"
    found = extract(product_html(product), base_url=url, product=True)
    assert found.product == Product(
        name=product.name,
        sku=product.sku,
        price=Money(amount=product.amount, currency=product.currency),
        availability=product.availability,
    )
    assert found.title == product.name


def test_the_three_markups_and_currencies_are_all_covered() -> None:
    pairs = {(p.markup, p.currency) for p in PRODUCTS}
    assert len(pairs) == 9


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("19.99", "USD", 1999),
        ("1234.50", "EUR", 123450),
        ("1.234,50 €", "EUR", 123450),
        ("1,234.50", "USD", 123450),
        ("1980", "JPY", 1980),
        ("¥1,980", "JPY", 1980),
        ("1.234", "KWD", 1234),
        ("0.5", "USD", 50),
        (1980, "JPY", 1980),
        (19.5, "usd", 1950),
    ],
)
def test_prices_become_minor_units(amount: object, currency: str, minor: int) -> None:
    assert to_money(amount, currency) == Money(amount=minor, currency=currency.upper())


def test_currency_from_symbol_when_none_is_given() -> None:
    assert to_money("€ 12,50", None) == Money(amount=1250, currency="EUR")
    assert to_money("12.50", None) is None
    assert to_money("call us", "USD") is None


def test_minor_units_round_half_even() -> None:
    assert to_minor_units(Decimal("0.125"), "USD") == 12
    assert to_minor_units(Decimal("0.135"), "USD") == 14
    assert to_minor_units(Decimal("1980.4"), "JPY") == 1980


@pytest.mark.parametrize(
    ("raw", "short"),
    [
        ("https://schema.org/InStock", "InStock"),
        ("http://schema.org/OutOfStock", "OutOfStock"),
        ("instock", "InStock"),
        ("oos", "OutOfStock"),
        ("preorder", "PreOrder"),
        (None, None),
    ],
)
def test_availability(raw: str | None, short: str | None) -> None:
    assert normalise_availability(raw) == short


def test_links_resolved_against_base_href_each_once_http_only() -> None:
    page = b"""<html><head><base href="https://shop.example/catalog/"></head><body>
    <a href="item/1">one</a> <a href="/about">about</a> <a href="item/1">again</a>
    <a href="#top">top</a> <a href="mailto:a@b.c">mail</a> <a href="javascript:void(0)">js</a>
    <a href="//cdn.example/x">cdn</a> <a href=" https://other.example/y ">other</a>
    <link rel="next" href="?page=2"><a>no href</a>
    </body></html>"""
    found = extract(page, base_url="http://shop.example/start")
    assert found.links == [
        "https://shop.example/catalog/item/1",
        "https://shop.example/about",
        "https://cdn.example/x",
        "https://other.example/y",
        "https://shop.example/catalog/?page=2",
    ]


def test_links_relative_to_the_page_without_base() -> None:
    found = extract(b'<a href="b">b</a><a href="../c">c</a>', base_url="http://h/a/x.html")
    assert found.links == ["http://h/a/b", "http://h/c"]


def test_css_fields() -> None:
    product = PRODUCTS[0]
    found = extract(
        product_html(product),
        base_url="http://h/",
        links=False,
        fields={"stock": "p.stock-count", "h1": "h1", "missing": ".nope", "lang": "meta@charset"},
    )
    assert found.fields == {"stock": "7", "h1": product.name, "missing": None, "lang": "utf-8"}
    assert found.links == []


def test_page_without_product() -> None:
    assert extract_product(b"<html><title>x</title></html>", url="http://h/") is None
    assert extract(b"<p>hi</p>", base_url="http://h/", product=True).product is None


def test_json_ld_graph_list_offers_and_aggregate_offer() -> None:
    page = b"""<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
      {"@type": "WebPage", "name": "page"},
      {"@type": "Product", "name": "Kettle", "sku": "K1",
       "offers": {"@type": "AggregateOffer", "lowPrice": "29.90", "priceCurrency": "GBP"}}]}
    </script>"""
    assert extract_product(page, url="http://h/") == Product(
        name="Kettle", sku="K1", price=Money(amount=2990, currency="GBP"), availability=None
    )
    listed = b"""<script type="application/ld+json">{"@type": "Product", "name": "Pan",
      "offers": [{"@type": "Offer"}, {"@type": "Offer", "price": 5000, "priceCurrency": "JPY",
      "availability": "https://schema.org/PreOrder"}]}</script>"""
    assert extract_product(listed, url="http://h/") == Product(
        name="Pan", sku=None, price=Money(amount=5000, currency="JPY"), availability="PreOrder"
    )


def test_broken_json_ld_is_ignored() -> None:
    page = b'<script type="application/ld+json">{"@type": "Product", </script><title>t</title>'
    assert extract(page, base_url="http://h/", product=True).title == "t"


async def test_sitemap_and_pages_served_by_the_site(crawl_site: CrawlSite) -> None:
    async with httpx.AsyncClient() as client:
        sitemap = await client.get(crawl_site.url("shop", "/sitemap.xml"))
        home = await client.get(crawl_site.url("shop", "/"))
    from_sitemap = extract(
        sitemap.content, base_url=str(sitemap.url), content_type="application/xml"
    )
    assert from_sitemap.links == [crawl_site.url("shop", p.path) for p in PRODUCTS]
    links = extract(home.content, base_url=str(home.url)).links
    assert crawl_site.url("shop", "/product/1?utm_source=home&utm_medium=web") in links
    assert crawl_site.url("shop", "/calendar/2026/01") in links


@given(
    st.text("ab/.?=&#%:;@-_~ ", min_size=1, max_size=12).map(lambda tail: "/" + tail),
    st.sampled_from(["http://h/a/b", "https://h:8443/x/", "http://h/", "http://h/q?z=1"]),
)
def test_absolute_path_shortcut_agrees_with_urljoin(href: str, base: str) -> None:
    found = extract(f'<a href="{href}">x</a>'.encode(), base_url=base).links
    expected = urljoin(base, href.strip())
    assert found == [expected]


def test_shift_jis_page_from_its_meta_charset() -> None:
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">'
        "<title>急須</title>"
        '<script type="application/ld+json">{"@type": "Product", "name": "急須", '
        '"offers": {"price": "3,980", "priceCurrency": "JPY"}}</script></head></html>'
    ).encode("shift_jis")
    found = extract(page, base_url="http://h/", product=True)
    assert found.title == "急須"
    assert found.product == Product(
        name="急須", sku=None, price=Money(amount=3980, currency="JPY"), availability=None
    )


def test_declared_encoding_wins_and_unknown_ones_fall_back() -> None:
    page = "<title>café</title>".encode("latin-1")
    assert extract(page, base_url="http://h/", encoding="latin-1").title == "café"
    assert extract(b"<title>x</title>", base_url="http://h/", encoding="nope").title == "x"


_href_pieces = st.sampled_from(
    ["http://", "https:", "//", "[", "]", "::1", "@", ":", "99999", "/", "..", "?", "#", "%zz", "é",
     "javascript:", " ", "a", "\\\\", "xn--"]
)  # fmt: skip


@given(st.lists(_href_pieces, max_size=10).map("".join))
def test_a_broken_link_is_skipped_not_the_page(href: str) -> None:
    page = f'<base href="{href}"><a href="{href}">x</a><a href="/fine">y</a>'.encode()
    links = extract(page, base_url="http://h/dir/page").links
    assert links[-1].endswith("/fine")


def test_malformed_ipv6_link() -> None:
    page = b'<a href="http://[::1/x">x</a><a href="/ok">ok</a>'
    assert extract(page, base_url="http://h/").links == ["http://h/ok"]
