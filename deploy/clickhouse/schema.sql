-- The log tables on the compose/k8s ClickHouse cluster 'shopkeeper' (one shard, two replicas).
-- Generated: shopkeeper logs ddl --cluster shopkeeper > deploy/clickhouse/schema.sql
-- (tests/deploy/test_manifests.py fails when it no longer matches the code).
CREATE DATABASE IF NOT EXISTS shopkeeper_logs ON CLUSTER shopkeeper;

CREATE TABLE IF NOT EXISTS shopkeeper_logs.logs_local ON CLUSTER shopkeeper
(
    tenant LowCardinality(String) CODEC(ZSTD(1)),
    service LowCardinality(String) CODEC(ZSTD(1)),
    host LowCardinality(String) CODEC(ZSTD(1)),
    level LowCardinality(String) CODEC(ZSTD(1)),
    source LowCardinality(String) CODEC(ZSTD(1)),
    timestamp DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    observed_at DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    message String CODEC(Default),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    attributes Map(LowCardinality(String), String) CODEC(Default),
    label_keys Array(LowCardinality(String)) CODEC(ZSTD(3)),
    INDEX message_text message TYPE text(tokenizer = splitByNonAlpha, preprocessor = arrayStringConcat(arrayFilter(t -> NOT ((length(t) >= 5 AND match(t, '^[0-9]+$')) OR (length(t) >= 16 AND match(t, '^[0-9A-Fa-f]+$'))), splitByNonAlpha(message)), ' '), posting_list_codec = 'bitpacking'),
    INDEX message_numbers arrayFilter(t -> (length(t) >= 5 AND match(t, '^[0-9]+$')) OR (length(t) >= 16 AND match(t, '^[0-9A-Fa-f]+$')), splitByNonAlpha(message)) TYPE bloom_filter(0.05) GRANULARITY 1,
    INDEX trace_id_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX attribute_keys_bloom mapKeys(attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX attribute_values_bloom mapValues(attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/shopkeeper_logs/logs_local', '{replica}')
PARTITION BY toDate(timestamp)
ORDER BY (tenant, service, timestamp)
TTL toDateTime(timestamp) + toIntervalDay(14), toDateTime(toDate(timestamp), 'UTC') + toIntervalHour(25) RECOMPRESS CODEC(ZSTD(12))
SETTINGS ttl_only_drop_parts = 1, replicated_deduplication_window = 10000, merge_selector_base = 20, vertical_merge_algorithm_min_columns_to_activate = 1, default_compression_codec = 'ZSTD(3)';

CREATE TABLE IF NOT EXISTS shopkeeper_logs.logs ON CLUSTER shopkeeper AS shopkeeper_logs.logs_local
ENGINE = Distributed(shopkeeper, shopkeeper_logs, logs_local, cityHash64(tenant, service));
