"""Shared platform: settings, database, errors, security, events, jobs. Knows no domain."""
