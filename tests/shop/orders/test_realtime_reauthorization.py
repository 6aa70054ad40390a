"""Issue 18 item 6: a socket is authorised for as long as its token and its user's account and
roles allow, not just at connect: expiry closes it with 4401, deactivation with 4401, a lost
role with 4403."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from shopkeeper.accounts import service as accounts_service
from shopkeeper.accounts.models import User
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import create_access_token
from shopkeeper.shop.access import READ
from tests.shop.orders.wsclient import ASGIWebSocket
from tests.support.shop import PlaceOrder, create_sku, make_user


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def user_id_of(client: httpx.AsyncClient, headers: dict[str, str]) -> uuid.UUID:
    me = await client.get("/api/v1/users/me", headers=headers)
    assert me.status_code == 200, me.text
    return uuid.UUID(me.json()["id"])


async def test_an_expired_token_closes_the_socket_with_4401(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    staff = await make_user(runtime, staff=True)
    user_id = await user_id_of(client, staff)
    short = runtime.settings.model_copy(update={"access_token_ttl_seconds": 1})
    token = create_access_token(settings=short, user_id=user_id, permissions={READ})
    async with ASGIWebSocket(app, f"/api/v1/ws/admin?token={token}") as socket:
        assert await socket.expect_close(timeout=10) == 4401


async def test_a_deactivated_customer_stops_receiving_order_updates(
    app: FastAPI,
    client: httpx.AsyncClient,
    runtime: Runtime,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    place_order: PlaceOrder,
) -> None:
    sku = await create_sku(client, staff_headers)
    order = await place_order(customer_headers, [(sku, 1)])
    user_id = await user_id_of(client, customer_headers)
    path = f"/api/v1/ws/orders/{order['id']}?token={token_of(customer_headers)}"
    async with ASGIWebSocket(app, path) as socket:
        async with runtime.db.session() as session:
            await session.execute(update(User).where(User.id == user_id).values(is_active=False))
            await session.commit()
        await runtime.realtime.principal_changed(user_id)
        assert await socket.expect_close() == 4401


async def test_a_demoted_staff_member_leaves_the_staff_channel(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str]
) -> None:
    user_id = await user_id_of(client, staff_headers)
    colleague = await make_user(runtime, staff=True)
    path = "/api/v1/ws/admin?token="
    async with (
        ASGIWebSocket(app, path + token_of(staff_headers)) as demoted,
        ASGIWebSocket(app, path + token_of(colleague)) as kept,
    ):
        async with runtime.db.session() as session:
            await accounts_service.set_user_roles(session, user_id=user_id, roles=[])
        await runtime.realtime.principal_changed(user_id)
        assert await demoted.expect_close() == 4403
        # Only the changed user's sockets are affected.
        await runtime.realtime.publish("admin", {"type": "ping"})
        assert (await kept.receive_json())["type"] == "ping"


async def test_deactivating_in_the_admin_closes_the_users_staff_socket(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    from tests.shop.admin.test_admin import STAFF_PASSWORD, admin_login, make_staff

    staff = await make_user(runtime, staff=True)
    user_id = await user_id_of(client, staff)
    await admin_login(client, await make_staff(runtime), STAFF_PASSWORD)
    async with ASGIWebSocket(app, f"/api/v1/ws/admin?token={token_of(staff)}") as socket:
        edited = await client.post(
            f"/admin/user/edit/{user_id}", data={"full_name": "Gone", "save": "Save"}
        )
        assert edited.status_code == 302, edited.text
        assert await socket.expect_close() == 4401  # unchecked is_active: deactivated
