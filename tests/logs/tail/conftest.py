"""The buffer tests' own RabbitMQ stream, for the tail test that runs the production path."""

from tests.logs.buffer.conftest import stream_name

__all__ = ["stream_name"]
