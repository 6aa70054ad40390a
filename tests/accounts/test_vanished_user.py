"""Issue 18 item 9: a valid token whose user no longer exists is a 401 on
every endpoint that reads credentials, never a 500 from a foreign key."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import delete

from shopkeeper.accounts.liveness import forget
from shopkeeper.accounts.models import User
from shopkeeper.accounts.roles import ROLES
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import create_access_token
from tests.support.shop import make_user


def _token_for(runtime: Runtime, user_id: uuid.UUID, staff: bool) -> dict[str, str]:
    permissions = ROLES["shop_staff"] if staff else frozenset()
    token = create_access_token(settings=runtime.settings, user_id=user_id, permissions=permissions)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("how", ["deleted", "never-existed"])
async def test_token_of_a_vanished_user_is_401_everywhere(
    client: httpx.AsyncClient, runtime: Runtime, how: str
) -> None:
    headers = await make_user(runtime, staff=True)
    if how == "never-existed":
        headers = _token_for(runtime, uuid.uuid4(), staff=True)
    else:
        me = await client.get("/api/v1/users/me", headers=headers)
        assert me.status_code == 200, me.text
        user_id = uuid.UUID(me.json()["id"])
        async with runtime.db.session() as session:
            await session.execute(delete(User).where(User.id == user_id))
            await session.commit()
        forget(user_id)  # what deleting an account calls; else seen for up to 10 s
    assert (await client.post("/api/v1/carts", headers=headers)).status_code == 401
    document = (await client.get("/openapi.json")).json()
    checked = 0
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if not operation.get("security"):
                continue
            url = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    url = url.replace("{" + parameter["name"] + "}", str(uuid.uuid4()))
            response = await client.request(
                method, url, headers={**headers, "Idempotency-Key": "k"}, json={}
            )
            assert response.status_code in (401, 422), (method, path, response.text)
            if response.status_code == 401:
                checked += 1
    assert checked > 10
