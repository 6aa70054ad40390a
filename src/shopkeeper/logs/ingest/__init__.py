"""Ingest: the protocols shippers speak, each mapped to `Batch`es handed to one `BatchSink`."""
