"""Events as JSON: a frozen dataclass becomes a JSON object in `outbox_events.payload`, and the
dispatcher rebuilds the dataclass from it for the handler, guided by the class's type hints.

Decoding is lenient where versions meet: fields the class does not know are ignored (a newer
producer), missing fields with a default take it (an older producer). A missing field without a
default, or a value of the wrong shape, raises `EventDecodeError` naming the field.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


class EventDecodeError(ValueError):
    """A stored payload does not fit its event class."""


def encode(event: object) -> dict[str, Any]:
    """The JSON object for a dataclass instance: UUIDs, dates, times and Decimals as strings,
    enums as their values, tuples and sets as lists, nested dataclasses as objects."""
    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        raise TypeError(f"events are dataclass instances, not {type(event).__name__}")
    encoded: dict[str, Any] = _jsonable(event)
    return encoded


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no Infinity or NaN (orjson writes null); a metric can be either.
        return str(value)  # "inf", "-inf", "nan": float() reads them back
    if isinstance(value, Mapping):
        return {str(_jsonable(key)): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(item) for item in value]
        # A set has no order; sorting makes the payload of equal sets equal.
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return value


def decode(cls: type[T], payload: Any) -> T:
    """Rebuild `cls` (a dataclass) from its JSON object."""
    return typing.cast(T, _decode_dataclass(cls, payload, cls.__name__))


@cache
def _fields_of(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, resolved type, has a default) of each `__init__` field; cached per class."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (
            field.name,
            hints[field.name],
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING,
        )
        for field in dataclasses.fields(cls)
        if field.init
    )


def _decode_dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise EventDecodeError(f"{path}: expected an object, got {type(value).__name__}")
    arguments: dict[str, Any] = {}
    for name, hint, has_default in _fields_of(cls):
        if name in value:
            arguments[name] = _convert(hint, value[name], f"{path}.{name}")
        elif not has_default:
            raise EventDecodeError(f"{path}.{name}: missing")
    return cls(**arguments)


def _convert(hint: Any, value: Any, path: str) -> Any:
    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return _convert_union(typing.get_args(hint), value, path)
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise EventDecodeError(f"{path}: {value!r} is not one of {typing.get_args(hint)}")
        return value
    if origin is not None:
        return _convert_generic(origin, typing.get_args(hint), value, path)
    if hint is type(None):
        if value is not None:
            raise EventDecodeError(f"{path}: expected null, got {value!r}")
        return None
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return _decode_dataclass(hint, value, path)
        return _convert_scalar(hint, value, path)
    raise EventDecodeError(f"{path}: cannot decode into {hint!r}")


def _convert_union(options: tuple[Any, ...], value: Any, path: str) -> Any:
    if value is None and type(None) in options:
        return None
    candidates = [option for option in options if option is not type(None)]
    # A value already of one of the plain types wins (`int | str` keeps "7" a str).
    for option in candidates:
        if isinstance(option, type) and type(value) is option:
            return value
    errors = []
    for option in candidates:
        try:
            return _convert(option, value, path)
        except (EventDecodeError, ValueError, TypeError) as exc:
            errors.append(str(exc))
    raise EventDecodeError(f"{path}: {value!r} fits none of {options}: {'; '.join(errors)}")


def _convert_generic(origin: Any, args: tuple[Any, ...], value: Any, path: str) -> Any:
    if origin in (dict, Mapping) or origin is typing.get_origin(Mapping[str, Any]):
        if not isinstance(value, Mapping):
            raise EventDecodeError(f"{path}: expected an object, got {type(value).__name__}")
        key_type, item_type = args if args else (Any, Any)
        return {
            _convert(key_type, key, f"{path}[{key!r}]"): _convert(
                item_type, item, f"{path}[{key!r}]"
            )
            for key, item in value.items()
        }
    if not isinstance(value, list | tuple):
        raise EventDecodeError(f"{path}: expected an array, got {type(value).__name__}")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], item, f"{path}[{i}]") for i, item in enumerate(value))
        if not args:
            return tuple(value)
        if len(args) != len(value):
            raise EventDecodeError(f"{path}: expected {len(args)} items, got {len(value)}")
        return tuple(
            _convert(arg, item, f"{path}[{i}]")
            for i, (arg, item) in enumerate(zip(args, value, strict=True))
        )
    item_type = args[0] if args else Any
    items = [_convert(item_type, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if origin in (set, frozenset):
        return origin(items)
    # list, Sequence, Collection, Iterable: a list.
    return items


_NON_FINITE = frozenset({"inf", "-inf", "nan"})
_PARSERS: dict[type, Callable[[Any], Any]] = {
    uuid.UUID: lambda value: uuid.UUID(value),
    datetime: datetime.fromisoformat,
    date: date.fromisoformat,
    time: time.fromisoformat,
    Decimal: lambda value: Decimal(str(value)),
}


def _convert_scalar(hint: type, value: Any, path: str) -> Any:
    # bool is an int and datetime a date to isinstance, not to a payload's reader.
    if isinstance(value, hint) and not (
        (hint is int and isinstance(value, bool)) or (hint is date and isinstance(value, datetime))
    ):
        return value
    try:
        if hint in _PARSERS and isinstance(value, str | int | float):
            return _PARSERS[hint](value)
        if issubclass(hint, enum.Enum):
            return hint(value)
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if hint is float and value in _NON_FINITE:
            return float(value)
    except (ValueError, TypeError) as exc:
        raise EventDecodeError(f"{path}: {value!r} is not a valid {hint.__name__}: {exc}") from exc
    raise EventDecodeError(f"{path}: expected {hint.__name__}, got {type(value).__name__}")
