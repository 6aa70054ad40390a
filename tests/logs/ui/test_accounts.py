"""The UI's own database work on SQLite and PostgreSQL: signing in with the shop's accounts
(the `log_reader` role), and saved searches kept per user."""

from __future__ import annotations

import uuid

import pytest

from shopkeeper.accounts import service as accounts
from shopkeeper.core.errors import RateLimited
from shopkeeper.core.runtime import Runtime
from shopkeeper.logs.ui import service
from shopkeeper.logs.ui.auth import sign_in


async def make_user(runtime: Runtime, email: str, *roles: str) -> uuid.UUID:
    async with runtime.db.session() as session:
        user = await accounts.register_user(
            session, email=email, password="reader-password-1", roles=roles
        )
        return user.id


async def test_only_users_who_may_read_logs_sign_in(runtime: Runtime) -> None:
    await make_user(runtime, "reader@example.com", "log_reader")
    await make_user(runtime, "staff@example.com", "shop_staff")
    signed = await sign_in(
        runtime, email="Reader@Example.com", password="reader-password-1", address="a"
    )
    assert signed is not None and signed[0].email == "reader@example.com" and signed[1]
    assert (
        await sign_in(runtime, email="staff@example.com", password="reader-password-1", address="a")
        is None
    )
    assert await sign_in(runtime, email="reader@example.com", password="wrong", address="a") is None
    assert await sign_in(runtime, email="nobody@example.com", password="x", address="a") is None


async def test_failed_sign_ins_spend_the_login_budget(runtime: Runtime) -> None:
    await make_user(runtime, "target@example.com", "log_reader")
    with pytest.raises(RateLimited):
        for attempt in range(100):
            await sign_in(
                runtime, email="target@example.com", password=f"guess-{attempt}", address="b"
            )
    # Locked out now even with the right password.
    with pytest.raises(RateLimited):
        await sign_in(
            runtime, email="target@example.com", password="reader-password-1", address="c"
        )


async def test_saved_searches_are_per_user_and_replaced_by_name(runtime: Runtime) -> None:
    mine = await make_user(runtime, "mine@example.com", "log_reader")
    theirs = await make_user(runtime, "theirs@example.com", "log_reader")
    async with runtime.db.session() as session:
        first = await service.save_search(
            session,
            user_id=mine,
            name="timeouts",
            query='{service="shop"} |= "timeout"',
            range_="1h",
        )
        await service.save_search(
            session,
            user_id=mine,
            name="timeouts",
            query='{service="api"} |= "timeout"',
            range_="15m",
        )
        await service.save_search(
            session, user_id=theirs, name="timeouts", query='{a="b"}', range_="5m"
        )
        with pytest.raises(service.InvalidSavedSearch):
            await service.save_search(session, user_id=mine, name="x", query='{a="b"}', range_="3y")

    async with runtime.db.session() as session:
        saved = await service.saved_searches(session, user_id=mine)
        assert [(s.id, s.query, s.range) for s in saved] == [
            (first.id, '{service="api"} |= "timeout"', "15m")
        ]
        with pytest.raises(service.SavedSearchNotFound):
            await service.delete_search(session, user_id=theirs, search_id=first.id)
        await service.delete_search(session, user_id=mine, search_id=first.id)
        assert await service.saved_searches(session, user_id=mine) == []
        assert len(await service.saved_searches(session, user_id=theirs)) == 1
