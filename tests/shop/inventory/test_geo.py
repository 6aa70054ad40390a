"""Warehouse distances: PostGIS on the WGS84 spheroid on PostgreSQL, the haversine formula on
SQLite; `GET /warehouses?near=` shows them and checkout allocates by them."""

from __future__ import annotations

import math
import secrets
import uuid
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from shopkeeper.core.db import Database
from shopkeeper.core.migrate import alembic_config, upgrade_database
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.inventory import geo
from shopkeeper.shop.inventory.allocation import Source, haversine_km, rank_sources
from tests.conftest import IN_CI, POSTGRES_ADMIN_URL, make_settings
from tests.shop.inventory.conftest import create_product
from tests.shop.orders.conftest import ADDRESS, checkout, create_cart, make_user

API = "/api/v1"
EQUATOR = (0.0, 0.0)
NORTH_60 = (60.0, 0.0)
# The meridian arc from the equator to 60°N on the WGS84 ellipsoid (Karney's GeographicLib:
# 6654.072 km); a sphere of mean radius says 6671.705 km, 17.6 km more.
MERIDIAN_ARC_60_KM = 6654.073
# Along the equator the geodesic is the equator itself: a * Δλ on the spheroid (6663.0 km here),
# but 6655.6 km on the mean sphere. So from (0, 0) this warehouse is farther than NORTH_60 on
# the spheroid and nearer on the sphere: the two methods pick different warehouses.
EAST_59_856 = (0.0, 59.856)
WGS84_SEMI_MAJOR_KM = 6378.137


async def require_postgis(runtime: Runtime) -> None:
    async with runtime.db.session() as session:
        schema = await geo.postgis_schema(session)
    if schema is not None:
        return
    message = (
        "PostGIS is not installed in the test database "
        "(Debian: apt-get install postgresql-$(ls /etc/postgresql)-postgis-3)"
    )
    if IN_CI:
        pytest.fail(message + " (CI=true: the PostGIS path must be tested)")
    pytest.skip(message)


async def add_warehouse(
    client: httpx.AsyncClient,
    staff: dict[str, str],
    code: str,
    at: tuple[float, float] | None,
) -> None:
    coordinates = {} if at is None else {"latitude": at[0], "longitude": at[1]}
    response = await client.post(
        f"{API}/warehouses", headers=staff, json={"code": code, "name": code, **coordinates}
    )
    assert response.status_code == 201, response.text


async def listed_near(
    client: httpx.AsyncClient, staff: dict[str, str], near: str | None
) -> list[tuple[str, float | None]]:
    params = {} if near is None else {"near": near}
    response = await client.get(f"{API}/warehouses", headers=staff, params=params)
    assert response.status_code == 200, response.text
    return [(entry["code"], entry["distance_km"]) for entry in response.json()]


def test_ranking_puts_warehouses_without_a_distance_last_by_code() -> None:
    ids = [uuid.uuid4() for _ in range(4)]
    sources = [Source(ids[0], "D", 1), Source(ids[1], "C", 1), Source(ids[2], "B", 1)]
    sources.append(Source(ids[3], "A", 1))
    ranked = rank_sources(sources, {ids[0]: 50.0, ids[1]: 10.0})
    assert [source.code for source in ranked] == ["C", "D", "A", "B"]


async def test_warehouses_near_a_point_are_listed_nearest_first(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    await add_warehouse(client, staff_headers, "BER", (52.52, 13.405))
    await add_warehouse(client, staff_headers, "MAD", (40.4168, -3.7038))
    await add_warehouse(client, staff_headers, "AAA-NOWHERE", None)
    await add_warehouse(client, staff_headers, "PAR", (48.8566, 2.3522))

    listed = await listed_near(client, staff_headers, "38.7223,-9.1393")  # Lisbon
    assert [code for code, _ in listed] == ["MAD", "PAR", "BER", "AAA-NOWHERE"]
    distances = dict(listed)
    assert distances["AAA-NOWHERE"] is None
    # Either method: Lisbon-Madrid is ~503 km, Lisbon-Berlin ~2311 km.
    assert distances["MAD"] == pytest.approx(503, rel=0.01)
    assert distances["BER"] == pytest.approx(2311, rel=0.01)

    assert await listed_near(client, staff_headers, None) == [
        ("AAA-NOWHERE", None),
        ("BER", None),
        ("MAD", None),
        ("PAR", None),
    ]


async def test_postgis_measures_on_the_wgs84_spheroid(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str], backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("PostGIS is a PostgreSQL extension")
    await require_postgis(runtime)
    await add_warehouse(client, staff_headers, "N60", NORTH_60)

    [(_, distance)] = await listed_near(client, staff_headers, "0,0")
    assert distance == pytest.approx(MERIDIAN_ARC_60_KM, abs=0.05)
    # What the formula would have said: the assertion above tells the two apart.
    assert abs(haversine_km(EQUATOR, NORTH_60) - MERIDIAN_ARC_60_KM) > 15


async def test_without_postgis_distances_come_from_the_haversine_formula(
    client: httpx.AsyncClient, staff_headers: dict[str, str], backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("on PostgreSQL the PostGIS path is tested instead")
    await add_warehouse(client, staff_headers, "N60", NORTH_60)

    [(_, distance)] = await listed_near(client, staff_headers, "0,0")
    assert distance == pytest.approx(haversine_km(EQUATOR, NORTH_60), abs=1e-6)


async def test_checkout_reserves_from_the_warehouse_nearest_the_shipping_address(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str]
) -> None:
    await create_product(runtime, "MUG-GEO")
    await add_warehouse(client, staff_headers, "A-PARIS", (48.8566, 2.3522))
    await add_warehouse(client, staff_headers, "B-LISBON", (38.7223, -9.1393))
    for code in ("A-PARIS", "B-LISBON"):
        stocked = await client.put(
            f"{API}/stock/MUG-GEO/{code}", headers=staff_headers, json={"on_hand": 10}
        )
        assert stocked.status_code == 200, stocked.text

    customer = await make_user(runtime)
    cart_id = await create_cart(client, customer, [("MUG-GEO", 2)])
    porto = {**ADDRESS, "city": "Porto", "latitude": 41.1579, "longitude": -8.6291}
    placed = await checkout(client, customer, cart_id, shipping_address=porto)
    assert placed.status_code == 201, placed.text

    assert await reserved_by_warehouse(client, staff_headers, "MUG-GEO") == {
        "A-PARIS": 0,
        "B-LISBON": 2,
    }


async def test_allocation_follows_the_spheroid_where_it_disagrees_with_the_sphere(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str], backend: str
) -> None:
    if backend == "postgresql":
        await require_postgis(runtime)
    await create_product(runtime, "MUG-FAR")
    await add_warehouse(client, staff_headers, "NORTH", NORTH_60)
    await add_warehouse(client, staff_headers, "EAST", EAST_59_856)
    for code in ("NORTH", "EAST"):
        stocked = await client.put(
            f"{API}/stock/MUG-FAR/{code}", headers=staff_headers, json={"on_hand": 5}
        )
        assert stocked.status_code == 200, stocked.text
    east_on_spheroid = WGS84_SEMI_MAJOR_KM * math.radians(EAST_59_856[1])
    assert east_on_spheroid > MERIDIAN_ARC_60_KM
    assert haversine_km(EQUATOR, EAST_59_856) < haversine_km(EQUATOR, NORTH_60)

    customer = await make_user(runtime)
    cart_id = await create_cart(client, customer, [("MUG-FAR", 1)])
    at_origin = {**ADDRESS, "latitude": 0.0, "longitude": 0.0}
    placed = await checkout(client, customer, cart_id, shipping_address=at_origin)
    assert placed.status_code == 201, placed.text

    nearest = "NORTH" if backend == "postgresql" else "EAST"
    reserved = await reserved_by_warehouse(client, staff_headers, "MUG-FAR")
    assert reserved == {"NORTH": 0, "EAST": 0, nearest: 1}


@pytest.mark.parametrize("near", ["48.8,", "abc", "1,2,3", "91,0", "0,181", "nan,0", ""])
async def test_a_malformed_near_is_a_validation_problem(
    client: httpx.AsyncClient, staff_headers: dict[str, str], near: str
) -> None:
    response = await client.get(f"{API}/warehouses", headers=staff_headers, params={"near": near})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/validation-error")
    assert problem["errors"][0]["loc"] == ["query", "near"]


async def test_only_staff_list_warehouses(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str]
) -> None:
    assert (await client.get(f"{API}/warehouses")).status_code == 401
    customer = await make_user(runtime)
    assert (await client.get(f"{API}/warehouses", headers=customer)).status_code == 403


async def test_a_role_that_may_not_create_extensions_still_migrates(
    backend: str, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("extensions are a PostgreSQL matter")
    name = f"shopkeeper_geo_{secrets.token_hex(4)}"
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER'))
            await connection.execute(text(f'CREATE DATABASE "{name}" OWNER "{name}"'))
        url = make_url(POSTGRES_ADMIN_URL).set(username=name, password=None, database=name)
        database = Database(make_settings(url.render_as_string(hide_password=False), tmp_path))
        try:
            await upgrade_database(database)
        finally:
            await database.dispose()

        owned = create_async_engine(url)
        try:
            async with owned.connect() as connection:
                head = await connection.scalar(text("SELECT version_num FROM alembic_version"))
                postgis = await connection.scalar(
                    text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")
                )
        finally:
            await owned.dispose()
        newest = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert (head, postgis) == (newest, 0)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        await admin.dispose()


async def reserved_by_warehouse(
    client: httpx.AsyncClient, staff: dict[str, str], sku: str
) -> dict[str, int]:
    response = await client.get(f"{API}/stock/{sku}", headers=staff)
    assert response.status_code == 200, response.text
    return {level["warehouse"]: level["reserved"] for level in response.json()["warehouses"]}
