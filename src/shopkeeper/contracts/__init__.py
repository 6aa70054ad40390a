"""The messages one system sends another: frozen dataclasses, no logic, importing nothing but the
standard library and `shopkeeper.core`. A system records them on the outbox; another handles
them. Nothing here may import a system."""
