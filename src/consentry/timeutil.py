"""UTC instants, parsed strictly: a cut-off time decides what trains a model."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from .errors import InputError

#: An ISO 8601 time whose fraction has a non-zero digit after the sixth (finer than a microsecond):
#: consentry keeps microseconds, and cutting such a time would move it (1 ns after a cut-off, onto it).
SUB_MICRO_RE = r"[.][0-9]{6}0*[1-9]"


def parse_instant(value: str | datetime, *, what: str = "time") -> datetime:
    """Parse an ISO 8601 instant; naive values are UTC (the contract's convention).

    Returns an aware UTC datetime. A bare date means midnight UTC of that day.
    """
    if isinstance(value, datetime):
        dt = value
    elif not isinstance(value, str):  # a number or None from users' code: said, not an AttributeError
        raise InputError(f"{value!r} is not a {what}: give an aware datetime or ISO 8601 text",
                         fix="write it like 2024-06-26T00:00:00Z (UTC) or 2024-06-26")
    else:
        text = value.strip()
        if re.search(SUB_MICRO_RE, text):
            raise InputError(
                f"'{value}' is a time finer than a microsecond, which consentry cannot keep: cut to the microsecond, "
                "a time 1 ns after the cut-off would count as at the cut-off",
                fix="write times to the microsecond at most (6 digits after the second, e.g. 2024-06-26T00:00:00.000001Z)")
        try:
            if len(text) == 10:
                dt = datetime.combine(date.fromisoformat(text), datetime.min.time())
            else:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            said = str(exc)
            # ISO 8601 in form, but not a real date (month 13, 30 February) or an offset beyond a day: say which.
            why = ("its offset from UTC is out of range" if "offset" in said
                   else said if "must be in" in said or "out of range" in said else "")
            raise InputError(
                f"'{value}' is not an ISO 8601 {what}" + (f" ({why})" if why else ""),
                fix="write it like 2024-06-26T00:00:00Z (UTC) or 2024-06-26",
            ) from None
    return utc(dt)


def utc(dt: datetime) -> datetime:
    """`dt` in UTC; a naive datetime *is* UTC (the contract's convention), never
    the machine's local time, which `datetime.astimezone` would assume."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def naive_utc(dt: datetime) -> datetime:
    """The naive UTC wall time the engines store (TIMESTAMP without zone)."""
    return utc(dt).replace(tzinfo=None)


def to_micros(dt: datetime) -> int:
    """Microseconds since the epoch: exact, sortable and the same in every database."""
    delta = utc(dt) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    from datetime import timedelta

    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def iso(dt: datetime) -> str:
    """Render as the contract writes instants: 2024-06-26T00:00:00Z."""
    dt = utc(dt)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    return text + "Z"
