"""Helpers shared by tests of every domain."""
