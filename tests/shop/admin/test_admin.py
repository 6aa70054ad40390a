from __future__ import annotations

import functools
import secrets
from collections.abc import Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import delete, select

from shopkeeper.accounts.models import RefreshToken, User, UserRole
from shopkeeper.app import create_app
from shopkeeper.core.ratelimit import RateLimiter
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import hash_password, hash_token
from shopkeeper.core.settings import Settings
from shopkeeper.shop.admin.views import ReadOnlyView
from tests.conftest import TEST_SECRET, register_and_login

STAFF_PASSWORD = "staff-password-1"


@functools.cache
def password_hash(password: str) -> str:
    # argon2 is slow by design; one hash per password keeps these tests fast.
    return hash_password(password)


async def add_user(
    runtime: Runtime, *, staff: bool, password: str = STAFF_PASSWORD, email: str | None = None
) -> str:
    email = email or f"{'admin' if staff else 'shopper'}-{secrets.token_hex(4)}@example.com"
    async with runtime.db.session() as session:
        user = User(email=email, password_hash=password_hash(password), is_staff=staff)
        user.role_rows = [UserRole(role="shop_staff")] if staff else []
        session.add(user)
        await session.commit()
    return email


async def make_staff(runtime: Runtime) -> str:
    return await add_user(runtime, staff=True)


async def admin_login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/admin/login", data={"username": email, "password": password})


async def test_admin_sends_anonymous_visitors_to_the_login_page(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/admin/", "/admin/user/list"):
        response = await client.get(path)
        assert response.status_code == 302
        assert response.headers["location"].endswith("/admin/login")
    login_page = await client.get("/admin/login")
    assert login_page.status_code == 200
    assert 'name="password"' in login_page.text


async def test_customer_cannot_log_in(client: httpx.AsyncClient, runtime: Runtime) -> None:
    email = await add_user(runtime, staff=False, password="customer-pass-1")

    response = await admin_login(client, email, "customer-pass-1")

    assert response.status_code == 400
    assert "Invalid credentials" in response.text
    assert (await client.get("/admin/user/list")).status_code == 302


async def test_wrong_password_and_unknown_account_are_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    email = await make_staff(runtime)

    assert (await admin_login(client, email, "not-the-password")).status_code == 400
    assert (await admin_login(client, "nobody@example.com", STAFF_PASSWORD)).status_code == 400
    assert (await client.get("/admin/")).status_code == 302


async def test_staff_logs_in_and_sees_the_users_without_secrets(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    email = await make_staff(runtime)
    customer = f"listed-{secrets.token_hex(4)}@example.com"
    await register_and_login(client, customer)  # also stores a refresh token hash

    response = await admin_login(client, email.upper(), STAFF_PASSWORD)
    assert response.status_code == 302
    assert response.headers["location"].endswith("/admin/")

    listing = await client.get("/admin/user/list")
    assert listing.status_code == 200
    assert email in listing.text
    assert customer in listing.text

    async with runtime.db.session() as session:
        user = await session.scalar(select(User).where(User.email == customer))
        token_hashes = list(await session.scalars(select(RefreshToken.token_hash)))
    assert user is not None and token_hashes
    details = await client.get(f"/admin/user/details/{user.id}")
    export = await client.get("/admin/user/export/csv")
    edit = await client.get(f"/admin/user/edit/{user.id}")
    for page in (listing, details, export, edit):
        assert page.status_code == 200
        assert user.password_hash not in page.text
        assert "$argon2" not in page.text
        assert TEST_SECRET not in page.text
        assert not any(token_hash in page.text for token_hash in token_hashes)
    assert customer in details.text and customer in export.text
    # Only the safe subset is editable: no password hash, no e-mail.
    assert 'name="full_name"' in edit.text and 'name="is_staff"' in edit.text
    assert 'name="password_hash"' not in edit.text and 'name="email"' not in edit.text


async def test_users_cannot_be_created_or_deleted_from_the_admin(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await admin_login(client, await make_staff(runtime), STAFF_PASSWORD)
    form = {"email": "planted@example.com", "password_hash": "$argon2id$forged", "is_staff": "y"}

    assert (await client.get("/admin/user/create")).status_code == 403
    assert (await client.post("/admin/user/create", data=form)).status_code == 403
    async with runtime.db.session() as session:
        users = list(await session.scalars(select(User.email)))
        assert "planted@example.com" not in users
        some_id = await session.scalar(select(User.id))
    assert (await client.delete(f"/admin/user/delete?pks={some_id}")).status_code == 403


async def test_staff_edits_a_user_but_not_the_password_hash(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await admin_login(client, await make_staff(runtime), STAFF_PASSWORD)
    email = await add_user(runtime, staff=False)
    async with runtime.db.session() as session:
        user = await session.scalar(select(User).where(User.email == email))
    assert user is not None

    response = await client.post(
        f"/admin/user/edit/{user.id}",
        data={
            "full_name": "Grace Hopper",
            "is_active": "y",
            "password_hash": "forged",
            "email": "stolen@example.com",
            "save": "Save",
        },
    )

    assert response.status_code == 302
    async with runtime.db.session() as session:
        changed = await session.get(User, user.id)
    assert changed is not None
    assert changed.full_name == "Grace Hopper"
    assert changed.email == email
    assert changed.password_hash == user.password_hash
    assert changed.is_staff is False


async def test_revoking_staff_rights_ends_the_admin_session_at_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    email = await make_staff(runtime)
    await admin_login(client, email, STAFF_PASSWORD)
    assert (await client.get("/admin/user/list")).status_code == 200

    async with runtime.db.session() as session:
        staff = await session.scalar(select(User).where(User.email == email))
        assert staff is not None
        await session.execute(delete(UserRole).where(UserRole.user_id == staff.id))
        await session.commit()

    assert (await client.get("/admin/user/list")).status_code == 302


async def test_a_forged_session_cookie_is_ignored(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    email = await make_staff(runtime)
    await admin_login(client, email, STAFF_PASSWORD)
    cookie = client.cookies.get("shopkeeper_admin")
    assert cookie
    payload, _, signature = cookie.partition(".")
    client.cookies.clear()
    client.cookies.set("shopkeeper_admin", payload + "." + signature[::-1], path="/admin")

    assert (await client.get("/admin/user/list")).status_code == 302


async def test_admin_login_shares_the_login_rate_limit(
    runtime: Runtime, settings_factory: Callable[..., Settings]
) -> None:
    email = await make_staff(runtime)
    strict = Runtime(
        settings=settings_factory(login_attempts_per_account="2/minute"),
        db=runtime.db,
        ratelimiter=RateLimiter(runtime.settings),
    )
    app = create_app(runtime=strict)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        for _ in range(2):
            assert (await admin_login(client, email, "wrong-password")).status_code == 400
        refused = await admin_login(client, email, STAFF_PASSWORD)
        # The API's token endpoint counts the same failures against the same account.
        api_refused = await client.post(
            "/api/v1/auth/token", data={"username": email, "password": STAFF_PASSWORD}
        )

    assert refused.status_code == 429
    assert "Too many attempts" in refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert api_refused.status_code == 429


async def test_domain_views_are_read_only(
    client: httpx.AsyncClient, runtime: Runtime, app: FastAPI
) -> None:
    await admin_login(client, await make_staff(runtime), STAFF_PASSWORD)
    read_only = [view for view in app.state.admin.views if isinstance(view, ReadOnlyView)]
    identities = {view.identity for view in read_only}
    assert "outbox-event" in identities

    for view in read_only:
        listing = await client.get(f"/admin/{view.identity}/list")
        assert listing.status_code == 200, view.identity
        assert (await client.get(f"/admin/{view.identity}/create")).status_code == 403
        assert (await client.post(f"/admin/{view.identity}/create", data={})).status_code == 403


@pytest.mark.parametrize("path", ["/admin/statics/css/main.css"])
async def test_admin_static_files_are_served(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200


async def test_domain_rows_show_money_and_hide_bearer_tokens(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str]
) -> None:
    product = await client.post(
        "/api/v1/products",
        json={
            "name": "Desk lamp",
            "variants": [{"sku": "LAMP-ADMIN-1", "price": {"amount": 1999, "currency": "USD"}}],
        },
        headers=staff_headers,
    )
    assert product.status_code == 201, product.text
    cart = await client.post("/api/v1/carts")
    assert cart.status_code == 201, cart.text
    cart_token = cart.headers["x-cart-token"]
    await admin_login(client, await make_staff(runtime), STAFF_PASSWORD)

    variants = await client.get("/admin/variant/list")
    assert variants.status_code == 200
    assert "LAMP-ADMIN-1" in variants.text and "19.99 USD" in variants.text
    carts = await client.get("/admin/cart/list")
    details = await client.get(f"/admin/cart/details/{cart.json()['id']}")
    export = await client.get("/admin/cart/export/csv")
    for page in (carts, details, export):
        assert page.status_code == 200
        assert cart_token not in page.text
        assert hash_token(cart_token) not in page.text
    assert (await client.get(f"/admin/cart/edit/{cart.json()['id']}")).status_code == 403


async def test_admin_requests_are_labelled_as_admin_routes_in_metrics(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await admin_login(client, await make_staff(runtime), STAFF_PASSWORD)
    assert (await client.get("/admin/user/list")).status_code == 200

    metrics = (await client.get("/metrics")).text

    assert 'route="/admin/{identity}/list",status="200"' in metrics
    assert 'route="/admin/login",status="302"' in metrics
    assert 'route="/{identity}/list"' not in metrics
