"""The carts domain."""
