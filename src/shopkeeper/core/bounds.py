"""Integer inputs with bounds checked before any SQL sees them.

PostgreSQL's INTEGER stops at 2^31-1 and BIGINT at 2^63-1; past those a query fails with a 500
or, from 2^64, the driver drops the connection. Every integer a client sends is therefore one of
these types, whose `ge`/`le` are in the OpenAPI document and enforced by validation
(`tests/hardening/test_integer_bounds.py` walks the document to keep it so).

Integer-valued JSON numbers (`35.0`) are integers in JSON Schema, so they are accepted as such;
strings, booleans and fractions are not.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import AfterValidator, BeforeValidator, Field
from pydantic.fields import FieldInfo

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def _whole_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = BeforeValidator(_whole_number)


def between(ge: int, le: int) -> FieldInfo:
    """Use as `Annotated[int, between(0, 100), WholeNumber]`, in that order (the other keeps
    `minimum`/`maximum` out of the JSON schema): strict, bounds inclusive."""
    field: FieldInfo = Field(strict=True, ge=ge, le=le)
    return field


def json_depth(value: Any) -> int:
    """Nesting depth of JSON-like data: a scalar is 0, `{"a": 1}` is 1."""
    if isinstance(value, dict):
        return 1 + max((json_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(item) for item in value), default=0)
    return 0


def bounded_json(*, max_depth: int, max_bytes: int) -> AfterValidator:
    """Free-form JSON (product attributes) whose nesting and encoded size are bounded at the
    door, so that nothing is stored that cannot be served back (orjson refuses depth > 254)."""

    def check(value: Any) -> Any:
        if json_depth(value) > max_depth:
            raise ValueError(f"nested deeper than {max_depth} levels")
        try:
            encoded = orjson.dumps(value)
        except TypeError as exc:  # e.g. an integer past 64 bits: it could not be served back
            raise ValueError(f"not storable as JSON: {exc}") from exc
        if len(encoded) > max_bytes:
            raise ValueError(f"larger than {max_bytes} bytes as JSON")
        return value

    return AfterValidator(check)
