"""Cron expressions in a time zone: five fields, or six with seconds first (croniter)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter


class InvalidCron(ValueError):
    pass


def validate(expression: str, timezone: str) -> None:
    """InvalidCron naming what is wrong."""
    zone(timezone)
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise InvalidCron(f"{expression!r}: five fields, or six with seconds first")
    if not croniter.is_valid(expression, second_at_beginning=len(fields) == 6):
        raise InvalidCron(f"{expression!r} is not a cron expression")


def zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidCron(f"{timezone!r} is not a time zone") from exc


def times_after(expression: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """The fire times strictly after `after`, in UTC, in order (wall-clock times of the zone,
    so "0 9 * * *" in Europe/Paris is 08:00 or 07:00 UTC across daylight saving)."""
    seconds = len(expression.split()) == 6
    start = after.astimezone(zone(timezone))
    iterator = croniter(expression, start, second_at_beginning=seconds)
    while True:
        yield iterator.get_next(datetime).astimezone(UTC)


def next_after(expression: str, timezone: str, after: datetime) -> datetime:
    return next(times_after(expression, timezone, after))
