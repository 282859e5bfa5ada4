"""Rate limits kept in the database, so every worker process sees the same counts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, func, insert, select, text

from ..timeutil import to_micros
from .tables import rate_events


def bucket(kind: str, value: str) -> str:
    """A bucket name that does not store the e-mail address itself."""
    if kind == "email":
        value = hashlib.sha256(value.strip().lower().encode()).hexdigest()
    return f"{kind}:{value}"


class RateLimiter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def allow(self, name: str, *, limit: int, window_s: int) -> bool:
        """Count one attempt in `name` if fewer than `limit` happened in the window."""
        now = to_micros(datetime.now(UTC))
        since = now - window_s * 1_000_000
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Count-then-insert must not interleave: lock this bucket for the
                # transaction (SQLite's BEGIN IMMEDIATE already serialises).
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:b))"), {"b": name})
            n = conn.execute(
                select(func.count()).select_from(rate_events).where(
                    rate_events.c.bucket == name, rate_events.c.at_us > since
                )
            ).scalar_one()
            if n >= limit:
                return False
            conn.execute(insert(rate_events).values(bucket=name, at_us=now))
            conn.execute(delete(rate_events).where(rate_events.c.at_us < now - 86_400_000_000))
        return True
