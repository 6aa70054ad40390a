"""What the store wrote and how long each INSERT took (any adapter: chDB or a server)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LINES_STORED = Counter(
    "shopkeeper_logs_lines_stored_total", "Lines written to ClickHouse (embedded or server)"
)
INSERT_SECONDS = Histogram(
    "shopkeeper_logs_insert_seconds",
    "Time of one INSERT of a batch group, until ClickHouse returned",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
