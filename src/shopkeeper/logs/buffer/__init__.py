"""The production ingest buffer: a RabbitMQ stream between stateless ingest gateways
(publishers) and the writers that store into ClickHouse (`shopkeeper logs writer`)."""
