"""Server-side sessions for the privacy center.

The cookie carries only a random id; the database keeps its SHA-256 and the
session's data. So a session can be ended from the server: sign-out deletes the
row, a password change or removing an administrator deletes all of theirs, and
a cookie copied before any of that is worth nothing afterwards. A copy of the
database cannot be turned into a cookie either.

Every session has an idle timeout and an absolute lifetime (shorter for
administrators). `seen_us` is written at most once a minute per session, so a
busy page costs a read, not a write.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, insert, or_, select, update

from ..timeutil import to_micros
from .tables import sessions

TOUCH_S = 60  # how stale `seen_us` may get before it is written again
PURGE_EVERY_S = 300  # how often one process sweeps out expired rows
_MAX_ID_LEN = 128  # a cookie longer than any id we issue is no session


@dataclass(frozen=True)
class Lifetimes:
    idle_s: int = 30 * 60
    absolute_s: int = 12 * 3600
    admin_idle_s: int = 15 * 60
    admin_absolute_s: int = 8 * 3600

    def of(self, data: dict) -> tuple[int, int]:
        """(idle, absolute) for a session with this data."""
        if data.get("admin"):
            return self.admin_idle_s, self.admin_absolute_s
        return self.idle_s, self.absolute_s


@dataclass(frozen=True)
class Session:
    sid: str  # the cookie value; never stored
    data: dict
    created_us: int
    seen_us: int


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


def _now_us() -> int:
    return to_micros(datetime.now(UTC))


def _identity(data: dict) -> dict:
    user, admin = data.get("user_id"), data.get("admin")
    return {"user_id": str(user) if user else None, "admin": str(admin) if admin else None}


def end_admin_sessions(conn: Connection, username: str) -> int:
    """Delete every session of one administrator, inside the caller's transaction."""
    return conn.execute(delete(sessions).where(sessions.c.admin == username)).rowcount


class Sessions:
    def __init__(self, engine: Engine, lifetimes: Lifetimes | None = None) -> None:
        self.engine = engine
        self.lifetimes = lifetimes or Lifetimes()
        self._last_purge = 0.0
        self._purge_lock = threading.Lock()

    def create(self, data: dict) -> str:
        """A new session with a new id (never reuse one: fixation)."""
        sid = secrets.token_urlsafe(32)
        now = _now_us()
        with self.engine.begin() as conn:
            conn.execute(insert(sessions).values(
                id_hash=_hash(sid), data=json.dumps(data), created_us=now, seen_us=now, **_identity(data)))
        self._maybe_purge()
        return sid

    def load(self, sid: str) -> Session | None:
        """The live session for a cookie value, or None (unknown, ended or expired)."""
        if not sid or len(sid) > _MAX_ID_LEN:
            return None
        key = _hash(sid)
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.id_hash == key)).mappings().first()
        if row is None:
            return None
        try:
            data = json.loads(row["data"])
        except ValueError:
            data = None
        now = _now_us()
        if not isinstance(data, dict):
            self.delete(sid)
            return None
        idle_s, absolute_s = self.lifetimes.of(data)
        if now - row["seen_us"] > idle_s * 1_000_000 or now - row["created_us"] > absolute_s * 1_000_000:
            self.delete(sid)
            return None
        seen = row["seen_us"]
        if now - seen > TOUCH_S * 1_000_000:
            with self.engine.begin() as conn:
                conn.execute(update(sessions).where(sessions.c.id_hash == key).values(seen_us=now))
            seen = now
        return Session(sid, data, row["created_us"], seen)

    def save(self, sid: str, data: dict) -> bool:
        """Store changed data; False if the session was ended meanwhile."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(sessions).where(sessions.c.id_hash == _hash(sid))
                .values(data=json.dumps(data), seen_us=_now_us(), **_identity(data))
            )
        return done.rowcount == 1

    def delete(self, sid: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.id_hash == _hash(sid)))

    def end_admin(self, username: str) -> int:
        with self.engine.begin() as conn:
            return end_admin_sessions(conn, username)

    def end_user(self, user_id: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(sessions).where(sessions.c.user_id == user_id)).rowcount

    def purge(self) -> int:
        """Delete every expired session (by the longest limits; load() applies the exact ones)."""
        lt = self.lifetimes
        now = _now_us()
        idle = max(lt.idle_s, lt.admin_idle_s) * 1_000_000
        absolute = max(lt.absolute_s, lt.admin_absolute_s) * 1_000_000
        with self.engine.begin() as conn:
            return conn.execute(
                delete(sessions).where(or_(sessions.c.seen_us < now - idle, sessions.c.created_us < now - absolute))
            ).rowcount

    def _maybe_purge(self) -> None:
        """Anonymous visitors make sessions too (for the CSRF token): sweep now and then."""
        with self._purge_lock:
            if time.monotonic() - self._last_purge < PURGE_EVERY_S:
                return
            self._last_purge = time.monotonic()
        self.purge()
