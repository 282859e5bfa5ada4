"""Rate limits kept in the database, so every worker process sees the same counts."""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, func, insert, select, text

from ..timeutil import to_micros
from .tables import rate_events


def bucket(kind: str, value: str) -> str:
    """A bucket name that stores no e-mail address nor administrator name
    (give it an address already normalised: links.normalise_address)."""
    if kind == "email" or kind.endswith("-email"):
        value = hashlib.sha256(value.strip().lower().encode()).hexdigest()
    elif kind.startswith("admin") and kind != "admin-ip":
        value = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}:{value}"


class RateLimiter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def backoff(self, name: str, *, free: int, base_s: float, cap_s: float, window_s: int,
                conn: Connection | None = None) -> int:
        """Exponential spacing: after k attempts in the window, the next one must
        wait min(base_s * 2**(k - free), cap_s) after the latest (none while
        k < free). Records the attempt and returns 0 if it may go ahead, else
        the seconds to wait (at least 1). Attackers are slowed to a trickle;
        someone coming back later is never shut out for long. Given `conn`, the
        attempt is recorded in the caller's transaction: with what it allows
        (a sign-in link and its mail), so that one is never kept without the other."""
        now = to_micros(datetime.now(UTC))
        since = now - window_s * 1_000_000
        with nullcontext(conn) if conn is not None else self.engine.begin() as conn:
            self._lock(conn, name)
            k, last = conn.execute(
                select(func.count(), func.max(rate_events.c.at_us)).where(
                    rate_events.c.bucket == name, rate_events.c.at_us > since
                )
            ).one()
            if k >= free and last is not None:
                delay_us = int(min(base_s * 2 ** (k - free), cap_s) * 1_000_000)
                wait_us = last + delay_us - now
                if wait_us > 0:
                    return max(1, -(-wait_us // 1_000_000))
            conn.execute(insert(rate_events).values(bucket=name, at_us=now))
        return 0

    def clear(self, name: str) -> None:
        """Forget a bucket (an administrator who signed in is no longer backing off)."""
        with self.engine.begin() as conn:
            conn.execute(delete(rate_events).where(rate_events.c.bucket == name))

    @staticmethod
    def _lock(conn, name: str) -> None:  # noqa: ANN001
        if conn.dialect.name == "postgresql":
            # Count-then-insert must not interleave: lock this bucket for the
            # transaction (SQLite's BEGIN IMMEDIATE already serialises).
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:b))"), {"b": name})

    def allow(self, name: str, *, limit: int, window_s: int, conn: Connection | None = None) -> bool:
        """Count one attempt in `name` if fewer than `limit` happened in the window
        (in the caller's transaction, given `conn`)."""
        now = to_micros(datetime.now(UTC))
        since = now - window_s * 1_000_000
        with nullcontext(conn) if conn is not None else self.engine.begin() as conn:
            self._lock(conn, name)
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
