"""The durable outbox: what to mail, kept in the ledger database.

A mail is queued with `enqueue(conn, mail)` inside the caller's own
transaction, next to the event or the sign-in link that causes it: both are
committed or neither is. A `Sender` (sender.py) then claims due mails, hands
them to a transport and marks them sent, or tries again later with backoff,
until the mail is delivered or expires. Delivery is at least once: a sender
that dies after the server took a mail but before marking it sent leaves it
to be sent again when its lease runs out (the same Message-ID both times).

The bytes stay in the table only until the mail is sent, expires or fails.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from ..timeutil import from_micros, to_micros
from ..words import count
from .message import Message, render, with_message_id
from .tables import mail_outbox as t

log = logging.getLogger(__name__)

QUEUED, SENT, EXPIRED, FAILED = "queued", "sent", "expired", "failed"
UNDELIVERED = (EXPIRED, FAILED)


def now_us() -> int:
    return to_micros(datetime.now(UTC))


@dataclass(frozen=True)
class OutgoingMail:
    """One rendered mail, ready to queue. Build it with `OutgoingMail.of`."""

    kind: str
    recipient: str
    raw: bytes
    message_id: str
    expires: datetime

    @classmethod
    def of(cls, message: Message, *, sender: str, kind: str, expires_in: timedelta) -> OutgoingMail:
        message = with_message_id(message, sender)
        return cls(
            kind=kind, recipient=message.to, raw=render(message, sender=sender),
            message_id=str(message.message_id), expires=datetime.now(UTC) + expires_in,
        )

    def enqueue(self, conn: Connection, event: object = None) -> str:
        """For `GroupCommitter.record(event, mails=[...])`: queue it in the event's transaction."""
        return enqueue(conn, self)


@dataclass(frozen=True)
class MailForEvent:
    """A mail that names its event as stored (its seq, e.g. a confirmation's
    reference), built inside the committing transaction once the seq is known."""

    build: Callable[[Any], OutgoingMail]

    def enqueue(self, conn: Connection, event: object) -> str:
        return enqueue(conn, self.build(event))


def enqueue(conn: Connection, mail: OutgoingMail) -> str:
    """Queue `mail` in the caller's transaction; due at once. Returns its id."""
    now = now_us()
    mail_id = secrets.token_hex(16)
    conn.execute(
        insert(t).values(
            id=mail_id, kind=mail.kind, recipient=mail.recipient, message_id=mail.message_id, raw=mail.raw,
            created_us=now, expires_us=to_micros(mail.expires), state=QUEUED, attempts=0, next_attempt_us=now,
        )
    )
    return mail_id


# -- for senders -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: str
    kind: str
    recipient: str
    raw: bytes
    attempts: int  # including this one
    expires_us: int
    claim: str


def _machine() -> str:
    """This machine as a lease names it: its boot and its process-id namespace
    (a container of its own has one), so that a process id read from a lease
    means this very process here. Empty where that cannot be read: then no
    lease is ever judged abandoned."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return hashlib.sha256(f"{boot}|{namespace}|{socket.gethostname()}".encode()).hexdigest()[:8]


def _claim_token() -> str:
    """A claim's token, naming its holder: `random.pid.machine` (at most 29 characters)."""
    return f"{secrets.token_hex(6)}.{os.getpid()}.{_machine()}"


def _holder_gone(token: str) -> bool:
    """Whether the process that holds a lease is certainly gone: on this
    machine, and its process id no longer runs (or is a zombie). Anything else
    (another machine, an old token without a holder, a pid reused by another
    process) counts as alive: the mail then waits for its lease to end."""
    _, pid, machine = (token.split(".") + ["", ""])[:3]
    here = _machine()
    if not (here and machine == here and pid.isdigit()) or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def claim(conn: Connection, *, limit: int, lease_s: float, now: int | None = None) -> list[Claimed]:
    """Take up to `limit` due mails for one delivery attempt each. The claim
    moves them one lease ahead, so no other sender takes them meanwhile (and
    one that died leaves them due again). On PostgreSQL concurrent claimers
    skip each other's rows; SQLite writers take turns anyway. The claim names
    its holder (`_claim_token`), so `retry_now` can tell a dead one."""
    now = now_us() if now is None else now
    token = _claim_token()
    due = (t.c.state == QUEUED) & (t.c.next_attempt_us <= now)
    pick = select(t.c.id).where(due).order_by(t.c.next_attempt_us).limit(limit)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    # `due` again on the outer UPDATE: under READ COMMITTED a row claimed by
    # another sender meanwhile is re-checked against it and left alone.
    conn.execute(
        update(t).where(t.c.id.in_(pick), due)
        .values(claim=token, attempts=t.c.attempts + 1, next_attempt_us=now + int(lease_s * 1e6))
    )
    rows = conn.execute(
        select(t.c.id, t.c.kind, t.c.recipient, t.c.raw, t.c.attempts, t.c.expires_us)
        .where(t.c.claim == token, t.c.state == QUEUED)
    ).all()
    return [Claimed(r.id, r.kind, r.recipient, bytes(r.raw), r.attempts, r.expires_us, token) for r in rows]


def mark_sent(conn: Connection, mail_id: str) -> None:
    """The server took it. Whoever claimed it last: it is sent, not to be sent again."""
    conn.execute(
        update(t).where(t.c.id == mail_id, t.c.state == QUEUED)
        .values(state=SENT, raw=None, claim=None, done_us=now_us(), last_error=None)
    )


def retry_later(conn: Connection, item: Claimed, at_us: int, error: str) -> bool:
    """A temporary failure: due again at `at_us`, or expired if that is too late.
    Returns False if it expired."""
    if at_us >= item.expires_us:
        give_up(conn, item, EXPIRED, f"{error} (not delivered before it expired)")
        return False
    conn.execute(
        update(t).where(t.c.id == item.id, t.c.claim == item.claim, t.c.state == QUEUED)
        .values(next_attempt_us=at_us, claim=None, last_error=error[:2000])
    )
    return True


def give_up(conn: Connection, item: Claimed, state: str, error: str) -> None:
    conn.execute(
        update(t).where(t.c.id == item.id, t.c.state == QUEUED)
        .values(state=state, raw=None, claim=None, done_us=now_us(), last_error=error[:2000])
    )


def expire_overdue(conn: Connection, *, keep_sent_days: float = 30.0) -> int:
    """Queued mails past their expiry (and not being delivered right now) expire;
    sent mails older than `keep_sent_days` are forgotten. Returns how many expired."""
    now = now_us()
    expired = conn.execute(
        update(t).where(t.c.state == QUEUED, t.c.expires_us <= now, t.c.next_attempt_us <= now)
        .values(
            state=EXPIRED, raw=None, claim=None, done_us=now,
            last_error=func.coalesce(t.c.last_error, "no attempt was made") + " (not delivered before it expired)",
        )
    ).rowcount
    conn.execute(delete(t).where(t.c.state == SENT, t.c.done_us < now - int(keep_sent_days * 86400e6)))
    return int(expired or 0)


def next_due_us(conn: Connection) -> int | None:
    """When the next queued mail is due (None: nothing queued)."""
    return conn.execute(select(func.min(t.c.next_attempt_us)).where(t.c.state == QUEUED)).scalar()


@dataclass(frozen=True)
class Held:
    """Queued mails another sender holds (claimed, lease running), and when the last lease ends."""

    mails: int
    until: datetime | None


def held(conn: Connection) -> Held:
    now = now_us()
    n, until = conn.execute(
        select(func.count(), func.max(t.c.next_attempt_us))
        .where(t.c.state == QUEUED, t.c.claim.is_not(None), t.c.next_attempt_us > now)
    ).one()
    return Held(int(n or 0), from_micros(until) if n else None)


def retry_now(conn: Connection) -> int:
    """An operator's `mail send --now`: every queued mail is due at once. A
    mail claimed by a sender that is certainly gone (`_holder_gone`: a crash)
    is taken over; one that a sender which may still deliver it holds stays
    with it until its lease ends (`held`), so nothing is sent twice on
    purpose. Returns how many were taken over."""
    now = now_us()
    leased = conn.execute(
        select(t.c.id, t.c.claim).where(t.c.state == QUEUED, t.c.claim.is_not(None), t.c.next_attempt_us > now)
    ).all()
    taken = 0
    for row in leased:
        if _holder_gone(row.claim):
            taken += conn.execute(
                update(t).where(t.c.id == row.id, t.c.claim == row.claim, t.c.state == QUEUED)
                .values(claim=None, next_attempt_us=now)
            ).rowcount or 0
    conn.execute(update(t).where(t.c.state == QUEUED, t.c.claim.is_(None)).values(next_attempt_us=now))
    if taken:
        log.warning("took over %s from a sender that is gone (its process no longer runs): trying them now",
                    count(taken, "mail", "mails"))
    return taken


# -- for people who look -----------------------------------------------------------------------


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(t.c.state, func.count()).group_by(t.c.state)).all()
    found = {str(state): int(n) for state, n in rows}
    return {state: found.get(state, 0) for state in (QUEUED, SENT, EXPIRED, FAILED)}


def undelivered(conn: Connection, limit: int = 100) -> list[dict]:
    """Mails that never reached the person (expired or refused), newest first,
    without their content: for administrators, who must tell them another way."""
    rows = conn.execute(
        select(t.c.id, t.c.kind, t.c.recipient, t.c.state, t.c.attempts, t.c.last_error, t.c.created_us, t.c.done_us)
        .where(t.c.state.in_(UNDELIVERED)).order_by(t.c.done_us.desc()).limit(limit)
    ).mappings().all()
    return [
        dict(r, created=from_micros(r["created_us"]), done=from_micros(r["done_us"]) if r["done_us"] else None)
        for r in rows
    ]
