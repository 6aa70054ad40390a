"""The tail hub across processes: what one process's writer stores reaches the sessions of
another through real Redis pub/sub, decoded as a query would read it back; tenants nobody tails
are not published at all."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence

import orjson
import pytest

from shopkeeper.core.settings import Settings
from shopkeeper.logs.query.parser import parse
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.store import Batch, records_batch
from shopkeeper.logs.store.syslog_transform import escape_frame, row_prefix
from shopkeeper.logs.tail import candidates, feed
from shopkeeper.logs.tail.decode import batch_rows
from shopkeeper.logs.tail.feed import REGION_BYTES
from shopkeeper.logs.tail.hub import TailHub, batch_message, message_batch, pieces
from shopkeeper.logs.tail.session import TailFilter, TailSession, row_entries


def session_for(tenant: str, query: str) -> TailSession:
    expr = parse(query)
    return TailSession(tenant=tenant, filter=TailFilter.compile(expr))  # type: ignore[arg-type]


async def lines(session: TailSession) -> list[str]:
    await asyncio.wait_for(session.wait(), timeout=10)
    entries, _ = session.take()
    return [entry.line for entry in entries]


async def test_lines_stored_by_one_process_reach_sessions_of_another_through_redis(
    logs_settings: Settings, tenant: str
) -> None:
    settings = logs_settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:6379/0", "redis_namespace": secrets.token_hex(4)}
    )
    writer_side = TailHub(settings, listen=False)  # as in `logs writer`
    gateway = TailHub(settings)
    await writer_side.start()
    await gateway.start()
    try:
        session = session_for(tenant, '{service="api"} |= "boom" | json | code >= 500')
        await gateway.subscribe(session)
        ndjson = b"".join(
            orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE)
            for d in [
                {
                    "service": "api",
                    "ts": "2026-12-04T10:00:00.5Z",
                    "msg": '{"code": 503, "boom": 1}',
                },
                {"service": "api", "msg": '{"code": 200, "boom": 1}'},
                {"service": "web", "msg": '{"code": 503, "boom": 1}'},
            ]
        )
        writer_side.stored(
            [
                Batch(tenant=tenant, source="ndjson", format="json_lines", payload=ndjson, lines=3),
                records_batch(
                    [LogRecord(message='{"code": 500} boom', service="api")],
                    tenant=tenant,
                    source="loki",
                ),
                records_batch(
                    [LogRecord(message='{"code": 500} boom', service="api")],
                    tenant=tenant + "x",
                    source="loki",
                ),
            ]
        )
        received = await lines(session)
        while len(received) < 2:
            received += await lines(session)
        assert received == ['{"code": 503, "boom": 1}', '{"code": 500} boom']
    finally:
        await gateway.stop()
        await writer_side.stop()


async def test_sessions_with_different_filters_each_get_exactly_their_lines(
    logs_settings: Settings, tenant: str
) -> None:
    """In one process: lines no session can match are skipped before decoding, yet a line that
    spells its service or word through a JSON escape still reaches the session it matches."""
    hub = TailHub(logs_settings.model_copy(update={"redis_url": None}))
    await hub.start()
    try:
        api_boom = session_for(tenant, '{service="api"} |= "boom"')
        web = session_for(tenant, '{service="web"}')
        everything = session_for(tenant, '{service=~".+"} |= "boom"')
        for session in (api_boom, web, everything):
            await hub.subscribe(session)
        documents = [
            {"service": "api", "msg": "boom 1"},
            {"service": "api", "msg": "quiet 2"},
            {"service": "web", "msg": "boom 3"},
            {"service": "db", "msg": "api boom 4"},
        ]
        ndjson = b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in documents)
        # "api" and "boom" written as escapes: only a full decode can tell this line matches.
        ndjson += b'{"service": "\\u0061pi", "msg": "b\\u006fom 5"}\n'
        hub.stored(
            [Batch(tenant=tenant, source="ndjson", format="json_lines", payload=ndjson, lines=5)]
        )
        assert await lines(api_boom) == ["boom 1", "boom 5"]
        assert await lines(web) == ["boom 3"]
        assert await lines(everything) == ["boom 1", "boom 3", "api boom 4", "boom 5"]
    finally:
        await hub.stop()


async def test_a_label_the_line_does_not_spell_still_selects_it(
    logs_settings: Settings, tenant: str
) -> None:
    """Only `service` and `host` are looked for in a line's raw bytes: syslog's `facility` comes
    from the priority number and a JSON number may be re-spelled, so those lines are decoded."""
    hub = TailHub(logs_settings.model_copy(update={"redis_url": None}))
    await hub.start()
    try:
        local0 = session_for(tenant, '{facility="local0"}')
        retries = session_for(tenant, '{retries="3.0"}')
        for session in (local0, retries):
            await hub.subscribe(session)
        # <134> is facility local0 (16 * 8), severity info; <14> is user.
        rows = row_prefix("10.0.0.9", 1_764_842_400_000_000_000) + escape_frame(
            b"<134>1 2026-12-04T10:00:00Z web-1 nginx 77 - - GET /cart 200"
        )
        rows += b"\n" + row_prefix("10.0.0.9", 1_764_842_400_000_000_000)
        rows += escape_frame(b"<14>1 2026-12-04T10:00:01Z web-1 nginx 77 - - from user")
        ndjson = b'{"service": "api", "msg": "slow", "retries": 3e0}\n'
        hub.stored(
            [
                Batch(tenant=tenant, source="syslog", format="syslog", payload=rows, lines=2),
                Batch(tenant=tenant, source="ndjson", format="json_lines", payload=ndjson, lines=1),
            ]
        )
        assert await lines(local0) == ["GET /cart 200"]
        assert await lines(retries) == ["slow"]
    finally:
        await hub.stop()


def flood_batch(tenant: str, lines: int, tag: str) -> Batch:
    """`lines` lines of service "flood", ~1 KB each of random hex (which never spells "probe")."""
    payload = b"".join(
        orjson.dumps(
            {"service": "flood", "msg": f"{tag} {n} {secrets.token_hex(500)}"},
            option=orjson.OPT_APPEND_NEWLINE,
        )
        for n in range(lines)
    )
    return Batch(tenant=tenant, source="ndjson", format="json_lines", payload=payload, lines=lines)


def flood_round(tenant: str, batches_each_side: int) -> list[Batch]:
    """One group-commit round: megabyte batches of the flood on either side of the probe's
    one-line batch ("probe 1")."""
    probe_line = b'{"service": "probe", "msg": "probe 1"}\n'
    return [
        *(flood_batch(tenant, 1000, f"early {b}") for b in range(batches_each_side)),
        Batch(tenant=tenant, source="ndjson", format="json_lines", payload=probe_line, lines=1),
        *(flood_batch(tenant, 1000, f"late {b}") for b in range(batches_each_side)),
    ]


async def test_a_flood_for_other_sessions_costs_a_selective_session_neither_lines_nor_markers(
    logs_settings: Settings, tenant: str
) -> None:
    """Issue 14: a session whose filter matches one line among megabytes that other sessions
    match gets that line, and is not told of lines dropped that it could never have matched;
    the flooded session is sampled, with the rest reported dropped."""
    hub = TailHub(logs_settings.model_copy(update={"redis_url": None}))
    await hub.start()
    try:
        flooded = session_for(tenant, '{service="flood"}')
        probe = session_for(tenant, '{service="probe"}')
        for session in (flooded, probe):
            await hub.subscribe(session)
        # 20 MiB for the flooded session (more than the feed holds).
        hub.stored(flood_round(tenant, 10))
        assert await lines(probe) == ["probe 1"]
        await asyncio.sleep(0.5)  # the feed goes on with the flood meanwhile
        assert probe.take() == ([], [])
        assert probe.dropped_total == 0
        await asyncio.wait_for(flooded.wait(), timeout=10)
        _, dropped = flooded.take()
        assert dropped
        assert flooded.dropped_total > 0
    finally:
        await hub.stop()


async def test_every_session_gets_exactly_what_its_query_matches_across_a_large_batch(
    logs_settings: Settings, tenant: str
) -> None:
    """The feed searches a batch region by region and decodes only candidate lines: each
    session still gets exactly the lines its whole query matches, in order."""
    hub = TailHub(logs_settings.model_copy(update={"redis_url": None}))
    await hub.start()
    queries = [
        '{service="api"}',
        '{service="api", host="web-2"} |= "boom"',
        '{host="web-1"}',
        '{service=~"api|db"} |= "boom"',
        '{service="db"} != "boom"',
    ]
    try:
        sessions = [session_for(tenant, query) for query in queries]
        for session in sessions:
            session.capacity = 100_000
            await hub.subscribe(session)
        documents = [
            {
                "service": ("api", "db", "web")[n % 3],
                "host": f"web-{n % 4}",
                "ts": 1_764_842_400_000_000_000 + n,
                "msg": f"{'boom' if n % 5 == 0 else 'calm'} {n} {'x' * (n % 90)}",
            }
            for n in range(400)
        ]
        payload = b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in documents)
        assert len(payload) > REGION_BYTES  # more than one of the feed's regions
        batch = Batch(
            tenant=tenant, source="ndjson", format="json_lines", payload=payload, lines=400
        )
        hub.stored([batch])
        for session in sessions:
            expected = [
                entry.line
                for entry in row_entries(batch_rows(batch))
                if session.filter.run(entry) is not None
            ]
            assert expected
            received: list[str] = []
            while len(received) < len(expected):
                received += await lines(session)
            assert received == expected
    finally:
        await hub.stop()


async def test_handing_a_flood_past_the_cap_to_the_feed_searches_nothing_on_ingests_path(
    logs_settings: Settings, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer hands a round over between its INSERT's end and its requests' answers:
    shedding what is past the feed's cap, with the searches that tell which sessions lose lines,
    happens in the feed's own turns. The sessions still learn exactly what they lost."""
    searched: list[int] = []

    def counting(batch: Batch, sessions: Sequence[TailSession]) -> tuple[TailSession, ...]:
        searched.append(len(batch.payload))
        return candidates.sessions_for(batch, sessions)

    monkeypatch.setattr(feed, "sessions_for", counting)
    hub = TailHub(logs_settings.model_copy(update={"redis_url": None}))
    await hub.start()
    try:
        flooded = session_for(tenant, '{service="flood"}')
        probe = session_for(tenant, '{service="probe"}')
        for session in (flooded, probe):
            await hub.subscribe(session)
        flood = [flood_batch(tenant, 1000, f"batch {b}") for b in range(24)]
        assert sum(len(batch.payload) for batch in flood) > feed.OUTBOX_BYTES
        hub.stored(flood)
        assert searched == []
        await asyncio.wait_for(flooded.wait(), timeout=10)
        for _ in range(100):  # the feed sheds in its own turns, a batch at a time
            if flooded.dropped_total:
                break
            await asyncio.sleep(0.1)
        assert flooded.dropped_total > 0
        assert any(size > feed.SMALL_BATCH_BYTES for size in searched)
        assert probe.dropped_total == 0
    finally:
        await hub.stop()


async def test_across_processes_a_flood_for_one_session_costs_a_selective_one_nothing(
    logs_settings: Settings, tenant: str
) -> None:
    """Distributed, the writer publishes stored batches as they are and the listening process's
    own feed serves its sessions fairly: a session whose filter matches one line among
    megabytes that another session matches gets that line, and no marker for lines it could
    never have matched."""
    settings = logs_settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:6379/0", "redis_namespace": secrets.token_hex(4)}
    )
    writer_side = TailHub(settings, listen=False)  # as in `logs writer`
    gateway = TailHub(settings)
    await writer_side.start()
    await gateway.start()
    try:
        flooded = session_for(tenant, '{service="flood"}')
        probe = session_for(tenant, '{service="probe"}')
        for session in (flooded, probe):
            await gateway.subscribe(session)
        # 12 MiB for the flooded session (the writer's outbox holds it all).
        writer_side.stored(flood_round(tenant, 6))
        assert await lines(probe) == ["probe 1"]
        await asyncio.wait_for(flooded.wait(), timeout=10)
        await asyncio.sleep(1)  # the feed goes on with the flood meanwhile
        assert probe.take() == ([], [])
        assert probe.dropped_total == 0
        entries, _ = flooded.take()
        assert entries
        assert all(entry.line.startswith(("early", "late")) for entry in entries)
    finally:
        await gateway.stop()
        await writer_side.stop()


def test_a_batch_is_published_in_pieces_of_whole_lines_that_read_back_as_it() -> None:
    batch = flood_batch("t", 1500, "piece")
    parts = pieces(batch, size=256 * 1024)
    assert len(parts) > 4
    assert b"".join(part.payload for part in parts) == batch.payload
    assert sum(part.lines for part in parts) == 1500
    assert all(part.payload.endswith(b"\n") for part in parts)
    again = message_batch("t", batch_message(parts[1]))
    assert isinstance(again, Batch)
    assert (again.payload, again.lines, again.format) == (
        parts[1].payload,
        parts[1].lines,
        "json_lines",
    )
    assert message_batch("t", b'{"missed": 42}') == 42
