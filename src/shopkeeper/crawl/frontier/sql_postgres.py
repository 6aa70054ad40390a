"""The SQL frontier's statements on PostgreSQL (see `sql` for how the frontier uses them).

Each of lease, complete, retry, renew and reap is one statement, run alone (autocommit): one
round trip. Statements that free slots lock host rows in host order, so two cannot deadlock.
"""

from __future__ import annotations

from sqlalchemy import text

NOW = text("SELECT extract(epoch FROM clock_timestamp())::float8")

# One statement reserves hosts and leases their URLs. Hosts are walked in `next_start_at` order
# through a partial index holding only hosts with queued URLs (`queued` counts them over all
# crawls), and locked as they are reached, so a call touches only the hosts it uses. The CASE: a
# host with a delay gives one URL per call (its next start is `delay` away), a host without one
# as many as its free slots. A host whose queued URLs are not leasable now (inactive crawls,
# retries not yet due) moves to the back of the order (`idle`), which changes no politeness:
# its next start was already due.
LEASE = text("""
WITH clock AS MATERIALIZED (SELECT extract(epoch FROM clock_timestamp())::float8 AS now),
active AS MATERIALIZED (SELECT crawl_id FROM crawl_frontier_crawls WHERE active),
ready AS (
    SELECT h.host, h.delay_ms, h.max_inflight - h.in_flight AS free
    FROM crawl_hosts h, clock
    WHERE h.queued > 0 AND h.next_start_at <= clock.now AND h.paused_until <= clock.now
      AND h.in_flight < h.max_inflight
    ORDER BY h.next_start_at
    LIMIT :limit
    FOR UPDATE OF h SKIP LOCKED
),
picked AS (
    SELECT r.host, p.crawl_id, p.fingerprint
    FROM ready r LEFT JOIN LATERAL (
        SELECT u.crawl_id, u.fingerprint FROM crawl_urls u, clock
        WHERE u.host = r.host AND u.state = 'queued' AND u.not_before <= clock.now
          AND u.crawl_id IN (SELECT crawl_id FROM active)
        ORDER BY u.not_before
        LIMIT CASE WHEN r.delay_ms = 0 THEN r.free ELSE 1 END
        FOR UPDATE OF u SKIP LOCKED
    ) p ON true
    LIMIT :limit
),
leased AS (
    UPDATE crawl_urls u
    SET state = 'leased', lease_token = gen_random_uuid()::text,
        lease_expires_at = clock.now + :lease_seconds, worker = :worker
    FROM picked p, clock
    WHERE p.fingerprint IS NOT NULL
      AND u.crawl_id = p.crawl_id AND u.fingerprint = p.fingerprint
    RETURNING u.crawl_id, u.url, u.fingerprint, u.host, u.depth, u.attempts,
              u.lease_token, u.lease_expires_at
),
per_host AS (SELECT host, count(*) AS n FROM leased GROUP BY host),
reserved AS (
    UPDATE crawl_hosts h
    SET in_flight = h.in_flight + per_host.n, queued = h.queued - per_host.n,
        next_start_at = clock.now + h.delay_ms / 1000.0
    FROM per_host, clock
    WHERE h.host = per_host.host
),
idle AS (
    UPDATE crawl_hosts h SET next_start_at = clock.now
    FROM picked p, clock
    WHERE p.fingerprint IS NULL AND h.host = p.host
)
SELECT * FROM leased
""")

# One crawl's URLs only, active or not: its hosts are those with a due URL of the crawl.
LEASE_CRAWL = text(
    LEASE.text.replace(
        "active AS MATERIALIZED (SELECT crawl_id FROM crawl_frontier_crawls WHERE active),",
        "active AS MATERIALIZED (SELECT CAST(:crawl_id AS uuid) AS crawl_id),",
    ).replace(
        "      AND h.in_flight < h.max_inflight\n",
        "      AND h.in_flight < h.max_inflight\n"
        "      AND EXISTS (SELECT 1 FROM crawl_urls q WHERE q.host = h.host\n"
        "                  AND q.crawl_id = CAST(:crawl_id AS uuid) AND q.state = 'queued'\n"
        "                  AND q.not_before <= clock.now)\n",
    )
)
assert LEASE_CRAWL.text.count(":crawl_id") == 2, "LEASE changed: update its one-crawl form"

# complete, retry and reap free their hosts' slots in the same statement, locking the host rows
# in host order first (two such statements could otherwise lock two hosts in opposite orders).
# A lease is found by primary key and token only (a token is set exactly while the URL is leased):
# a `state = 'leased'` condition would let the planner scan every leased URL through the partial
# index, once per URL of the batch, which it did with the prepared (generic) plan.
COMPLETE = text("""
WITH targets AS MATERIALIZED (
    SELECT u.crawl_id, u.fingerprint, t.token
    FROM unnest(CAST(:crawl_ids AS uuid[]), CAST(:fingerprints AS bigint[]),
                CAST(:tokens AS text[])) AS t(crawl_id, fingerprint, token)
    CROSS JOIN LATERAL (
        SELECT u.crawl_id, u.fingerprint FROM crawl_urls u
        WHERE u.crawl_id = t.crawl_id AND u.fingerprint = t.fingerprint
          AND u.lease_token = t.token
        FOR UPDATE
    ) u
),
changed AS (
    UPDATE crawl_urls u
    SET state = 'done', lease_token = NULL, lease_expires_at = NULL, worker = NULL
    FROM targets
    WHERE u.crawl_id = targets.crawl_id AND u.fingerprint = targets.fingerprint
    RETURNING u.host, targets.token
),
per_host AS (SELECT host, count(*) AS n FROM changed GROUP BY host),
locked AS (
    SELECT h.host FROM crawl_hosts h
    WHERE h.host IN (SELECT host FROM per_host) ORDER BY h.host FOR UPDATE
),
released AS (
    UPDATE crawl_hosts h SET in_flight = greatest(h.in_flight - per_host.n, 0)
    FROM per_host, locked WHERE h.host = per_host.host AND locked.host = per_host.host
)
SELECT token FROM changed
""")

RETRY = text("""
WITH changed AS (
    UPDATE crawl_urls u
    SET state = 'queued', lease_token = NULL, lease_expires_at = NULL, worker = NULL,
        attempts = u.attempts + :spent, not_before = :not_before
    WHERE u.crawl_id = :crawl_id AND u.fingerprint = :fingerprint AND u.lease_token = :token
    RETURNING u.host
),
per_host AS (SELECT host, count(*) AS n FROM changed GROUP BY host),
locked AS (
    SELECT h.host FROM crawl_hosts h
    WHERE h.host IN (SELECT host FROM per_host) ORDER BY h.host FOR UPDATE
),
released AS (
    UPDATE crawl_hosts h
    SET in_flight = greatest(h.in_flight - per_host.n, 0), queued = h.queued + per_host.n
    FROM per_host, locked WHERE h.host = per_host.host AND locked.host = per_host.host
)
SELECT count(*) FROM changed
""")

REAP = text("""
WITH clock AS MATERIALIZED (SELECT extract(epoch FROM clock_timestamp())::float8 AS now),
expired AS (
    SELECT u.crawl_id, u.fingerprint FROM crawl_urls u, clock
    WHERE u.state = 'leased' AND u.lease_expires_at <= clock.now
    ORDER BY u.lease_expires_at
    LIMIT :batch
    FOR UPDATE OF u SKIP LOCKED
),
changed AS (
    UPDATE crawl_urls u
    SET state = 'queued', lease_token = NULL, lease_expires_at = NULL, worker = NULL,
        attempts = u.attempts + 1, not_before = clock.now
    FROM expired e, clock
    WHERE u.crawl_id = e.crawl_id AND u.fingerprint = e.fingerprint
    RETURNING u.host
),
per_host AS (SELECT host, count(*) AS n FROM changed GROUP BY host),
locked AS (
    SELECT h.host FROM crawl_hosts h
    WHERE h.host IN (SELECT host FROM per_host) ORDER BY h.host FOR UPDATE
),
released AS (
    UPDATE crawl_hosts h
    SET in_flight = greatest(h.in_flight - per_host.n, 0), queued = h.queued + per_host.n
    FROM per_host, locked WHERE h.host = per_host.host AND locked.host = per_host.host
)
SELECT count(*) FROM changed
""")

RENEW = text("""
WITH targets AS MATERIALIZED (
    SELECT u.crawl_id, u.fingerprint, t.token
    FROM unnest(CAST(:crawl_ids AS uuid[]), CAST(:fingerprints AS bigint[]),
                CAST(:tokens AS text[])) AS t(crawl_id, fingerprint, token)
    CROSS JOIN LATERAL (
        SELECT u.crawl_id, u.fingerprint FROM crawl_urls u
        WHERE u.crawl_id = t.crawl_id AND u.fingerprint = t.fingerprint
          AND u.lease_token = t.token
        FOR UPDATE
    ) u
)
UPDATE crawl_urls u
SET lease_expires_at = extract(epoch FROM clock_timestamp())::float8 + :lease_seconds
FROM targets
WHERE u.crawl_id = targets.crawl_id AND u.fingerprint = targets.fingerprint
RETURNING targets.token
""")

# Adding on PostgreSQL binds whole arrays: one prepared statement whatever the batch size (a
# multi-row VALUES of a thousand rows is compiled and planned afresh every time: 1,700 URLs/s).
ENSURE_HOSTS = text("""
INSERT INTO crawl_hosts
    (host, delay_ms, max_inflight, in_flight, queued, next_start_at, paused_until)
SELECT host, :delay_ms, :max_inflight, 0, 0, 0, 0 FROM unnest(CAST(:hosts AS text[])) AS host
ON CONFLICT DO NOTHING
""")
ADD = text("""
INSERT INTO crawl_urls
    (crawl_id, fingerprint, url, host, depth, state, attempts, not_before)
SELECT :crawl_id, t.fingerprint, t.url, t.host, t.depth, 'queued', 0, 0
FROM unnest(CAST(:fingerprints AS bigint[]), CAST(:urls AS text[]), CAST(:hosts AS text[]),
            CAST(:depths AS integer[])) AS t(fingerprint, url, host, depth)
ON CONFLICT DO NOTHING
RETURNING host
""")
LOCK_HOSTS = text("""
SELECT host FROM crawl_hosts WHERE host = ANY(CAST(:hosts AS text[])) ORDER BY host FOR UPDATE
""")
# RETURNING: whether the host had nothing queued before (its queue just started: idle workers
# are told, see WORK_CHANNEL).
COUNT_QUEUED = text("""
UPDATE crawl_hosts h SET queued = h.queued + t.n
FROM unnest(CAST(:hosts AS text[]), CAST(:counts AS integer[])) AS t(host, n)
WHERE h.host = t.host
RETURNING h.queued - t.n <= 0 AND t.n > 0
""")

WORK_CHANNEL = "shopkeeper_crawl_work"
"""LISTEN/NOTIFY channel: a host's queue went from empty to not, or a crawl was activated."""
NOTIFY_WORK = text(f"SELECT pg_notify('{WORK_CHANNEL}', '')")

LOCK_POLICY_HOSTS = """
SELECT host FROM crawl_hosts
WHERE host IN (SELECT host FROM crawl_host_policies WHERE crawl_id = :crawl_id)
ORDER BY host FOR UPDATE
"""
