"""logs: a log analysis platform. Ingest from the shippers people run (NDJSON, Loki push,
Elasticsearch bulk, OTLP, syslog), store in ClickHouse (chDB embedded), query with LogQL."""
