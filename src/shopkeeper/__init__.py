"""shopkeeper: a production-grade e-commerce backend."""

__version__ = "0.1.0"
