"""Objections from people without an account, who appear in others' photos:
the one home of the concept (CONTRACT §2, rule 15).

A request goes: submitted (`unverified`) → confirmed by the link mailed to the
requester (`open`) → reviewed by an administrator (`reviewed`). Confirming
writes a `third_party_objected` event for every item the requester named, in
the same transaction that uses up the link: from that instant the engine
keeps those items out of every decision, snapshot build and purge (rule 15),
before anyone has looked. An administrator adds events for more photos of
theirs and ends one with `third_party_dismissed`, giving grounds the
requester is mailed. Every step leaves an audit record.

The requester's address and words stay in `third_party_objections`; the
ledger gets only events about items, with ids `tp:<ref>:...` that trace them
to the request, and actors `requester:<ref>` or `admin:<name>`.

A request never confirmed is deleted once its link has expired (with a
margin): anyone can type any address and any words into the form, and
nothing ever needs them (`purge_unconfirmed`, run in the transaction of
every new request and confirmation). Confirmed ones stay: they are the
person's objection record.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update

from ..access.links import LINK_MINUTES, PURGE_BATCH, PURGE_MARGIN_S, delete_some
from ..errors import ThirdPartyError
from ..ledger import Channel, EventType, Ledger, NewEvent, StoredEvent, chain
from ..ledger.tables import events
from ..sources import Export
from ..timeutil import from_micros, to_micros
from .tables import third_party_objections

#: Kinds that can show a face.
VISUAL_KINDS = ("photo", "story", "video", "reel")


def _can_show(c: str = "") -> str:
    """SQL: the `content` row (alias `c`) can show a person: it has an image, or is of a visual kind."""
    at = f"{c}." if c else ""
    return f"({at}media_path IS NOT NULL OR {at}kind IN {VISUAL_KINDS!r})"


#: Runs inside a request's transaction, e.g. to queue the mail it causes.
Within = Callable[[Connection], None]


@dataclass(frozen=True)
class Request:
    ref: str
    email: str
    handles: str | None
    items: str | None
    note: str | None
    received: datetime
    status: str  # unverified | open | reviewed
    language: str | None
    resolved_by: str | None = None
    resolution: str | None = None

    @property
    def named_items(self) -> list[str]:
        return named_tokens(self.items)

    @property
    def named_handles(self) -> list[str]:
        return named_tokens(self.handles)


@dataclass(frozen=True)
class Candidate:
    """A photo the administrator may protect or dismiss for a request."""

    item_id: str
    author: str | None
    kind: str
    created_at: datetime
    named: bool  # the requester named this item themselves
    state: str | None = None  # this request's latest event on it: third_party_objected / _dismissed


@dataclass(frozen=True)
class Confirmation:
    request: Request
    protected: list[StoredEvent]  # one third_party_objected event per item found
    not_found: list[str] = field(default_factory=list)  # named, but no such item in the export


def named_tokens(text: str | None) -> list[str]:
    """Handles or item ids as people type them: separated by commas, spaces or
    new lines; a pasted link counts by its last path segment."""
    out = []
    for token in re.split(r"[\s,;]+", text or ""):
        token = token.strip().rstrip("/")
        if not token:
            continue
        if "://" in token:
            token = token.rsplit("/", 1)[-1].split("?", 1)[0]
        token = token.lstrip("@")
        if token and token not in out:
            out.append(token)
    return out


def _now() -> datetime:
    return datetime.now(UTC)


#: An unconfirmed request is kept while its link works (LINK_MINUTES), plus a margin, then deleted.
UNCONFIRMED_KEEP_S = LINK_MINUTES * 60 + PURGE_MARGIN_S


def purge_unconfirmed(conn: Connection, *, now: datetime | None = None, limit: int = PURGE_BATCH) -> int:
    """Delete requests never confirmed whose link has expired, at most `limit`
    (in the caller's transaction). Their audit records stay: they hold the
    reference and counts, no address or words. Returns how many went."""
    t = third_party_objections
    stale = (t.c.status == "unverified") & (t.c.received_us < to_micros(now or _now()) - UNCONFIRMED_KEEP_S * 1_000_000)
    return delete_some(conn, t.c.id, stale, limit)


def _request(row) -> Request:  # noqa: ANN001
    return Request(
        ref=row["id"], email=row["email"], handles=row["handles"], items=row["items"], note=row["note"],
        received=from_micros(row["received_us"]), status=row["status"], language=row["language"],
        resolved_by=row["resolved_by"], resolution=row["resolution"],
    )


def _prefix(ref: str) -> str:
    return f"tp:{ref}:"


class ThirdParties:
    """Requests and their events, over the ledger's database and the export."""

    def __init__(self, ledger: Ledger, export: Export) -> None:
        self.ledger = ledger
        self.export = export

    # -- reading ---------------------------------------------------------------------

    def request(self, ref: str) -> Request | None:
        with self.ledger.reader.connect() as conn:
            row = conn.execute(select(third_party_objections).where(third_party_objections.c.id == ref)).mappings().first()
        return _request(row) if row else None

    def open_requests(self) -> list[Request]:
        """Confirmed and waiting for review, oldest first."""
        with self.ledger.reader.connect() as conn:
            rows = conn.execute(
                select(third_party_objections)
                .where(third_party_objections.c.status == "open")
                .order_by(third_party_objections.c.received_us)
            ).mappings().all()
        return [_request(r) for r in rows]

    def states(self, ref: str) -> dict[str, str]:
        """item_id -> this request's latest event type on it, in ledger order."""
        with self.ledger.reader.connect() as conn:
            rows = conn.execute(
                select(events.c.item_id, events.c.type)
                .where(events.c.event_id.startswith(_prefix(ref), autoescape=True))
                .order_by(events.c.at_us, events.c.seq)
            ).all()
        return {item: typ for item, typ in rows}

    def item_history(self, item_id: str) -> list[StoredEvent]:
        """Every third-party event about one item, in (at, seq) order: what `explain` shows."""
        from ..ledger.store import _row_to_stored

        with self.ledger.reader.connect() as conn:
            rows = conn.execute(
                select(events).where(events.c.item_id == item_id).order_by(events.c.at_us, events.c.seq)
            ).mappings().all()
        return [_row_to_stored(r) for r in rows]

    def candidates(self, ref: str, limit: int = 200) -> list[Candidate]:
        """Photos the person named, photos this request already covers, then
        visual items posted by the accounts they named: what the
        administrator looks at."""
        req = self.request(ref)
        if req is None:
            return []
        states = self.states(ref)
        handles = [h.lower() for h in req.named_handles]
        rows = self._query(
            f"""SELECT c.item_id, u.handle, c.kind, c.created_at, list_contains(?::VARCHAR[], c.item_id) AS named
            FROM content c JOIN users u USING (user_id)
            WHERE list_contains(?::VARCHAR[], c.item_id)  -- what this request covers, whatever it is
               OR ({_can_show("c")}
                   AND (list_contains(?::VARCHAR[], c.item_id) OR list_contains(?::VARCHAR[], lower(u.handle))))
            ORDER BY named DESC, c.created_at DESC, c.item_id
            LIMIT ?""",
            [req.named_items, list(states), req.named_items, handles, limit],
        )
        return [
            Candidate(i, a, k, t if t.tzinfo else t.replace(tzinfo=UTC), n, states.get(i)) for i, a, k, t, n in rows
        ]

    def _query(self, sql: str, params: list) -> list[tuple]:
        from ..engine.duck import connect

        con = connect()
        try:
            self.export.register(con)
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def _existing(self, item_ids: list[str], *, shown: bool = False) -> set[str]:
        """The ids among `item_ids` of items of the export. `shown`: only
        public items that can show a person (an image, or a visual kind), for
        the requester, who has no account: what they are told was found must
        not reveal that a private message or a friends-only photo with that id
        exists (such an item is never used anyway, rule 3)."""
        if not item_ids:
            return set()
        seen = f" AND visibility = 'public' AND {_can_show()}" if shown else ""
        return {r[0] for r in self._query(
            f"SELECT item_id FROM content WHERE list_contains(?::VARCHAR[], item_id){seen}", [item_ids])}

    # -- the requester -----------------------------------------------------------------

    def submit(
        self, email: str, *, handles: str = "", items: str = "", note: str = "", language: str | None = None,
        within: Callable[[Connection, str], None] | None = None,
    ) -> str:
        """Record a request (not yet confirmed: it protects nothing until the
        requester opens the link mailed to them). Returns its reference;
        `within(conn, ref)` runs in the same transaction (to queue the link)."""
        if not (named_tokens(handles) or named_tokens(items)):
            raise ThirdPartyError("Name at least one photo or account.")
        ref = secrets.token_hex(8)
        with self.ledger.transaction() as conn:
            purge_unconfirmed(conn)
            conn.execute(insert(third_party_objections).values(
                id=ref, email=email, handles=handles.strip() or None, items=items.strip() or None,
                note=note.strip() or None, received_us=to_micros(_now()), status="unverified", language=language,
            ))
            chain.append(conn, [chain.Record(
                "third_party_request",
                {"ref": ref, "items_named": len(named_tokens(items)), "accounts_named": len(named_tokens(handles)),
                 "note": chain.note_digest(note.strip() or None)},
                f"requester:{ref}", f"request:{ref}",
            )])
            if within:
                within(conn, ref)
        return ref

    def confirm(self, ref: str, redeem: Callable[[Connection], object], *, within: Within | None = None) -> Confirmation:
        """The requester opened their link: in one transaction use up the link
        (`redeem`, which raises if it cannot), open the request and write a
        `third_party_objected` event, at this instant, for every named item in
        the export."""
        req = self.request(ref)
        if req is None:
            raise ThirdPartyError("No request with that reference.")
        found = self._existing(req.named_items, shown=True)
        named = [i for i in req.named_items if i in found]
        now = _now()
        with self.ledger.transaction() as conn:
            redeem(conn)
            done = conn.execute(
                update(third_party_objections)
                .where(third_party_objections.c.id == ref, third_party_objections.c.status == "unverified")
                .values(status="open", received_us=to_micros(now))
            )
            if done.rowcount != 1:
                raise ThirdPartyError("This request is already confirmed.")
            purge_unconfirmed(conn)
            stored = self.ledger.append_in(conn, [
                NewEvent(event_id=f"{_prefix(ref)}{secrets.token_hex(6)}", item_id=i,
                         type=EventType.third_party_objected, at=now, channel=Channel.web, actor=f"requester:{ref}")
                for i in named
            ])
            chain.append(conn, [chain.Record(
                "third_party_confirmed", {"ref": ref, "protected": named, "not_found": len(req.named_items) - len(named)},
                f"requester:{ref}", f"request:{ref}",
            )])
            if within:
                within(conn)
        return Confirmation(self.request(ref) or req, stored, [i for i in req.named_items if i not in found])

    # -- the administrator -------------------------------------------------------------

    def _open(self, ref: str) -> Request:
        req = self.request(ref)
        if req is None or req.status != "open":
            raise ThirdPartyError("No open request with that reference.")
        return req

    def protect(self, ref: str, item_ids: list[str], *, actor: str, within: Within | None = None) -> list[StoredEvent]:
        """More photos of the requester: one `third_party_objected` event each,
        now. Every id must be an item of the export; items this request
        already protects are left as they are."""
        self._open(ref)
        wanted = list(dict.fromkeys(i.strip() for i in item_ids if i.strip()))
        if not wanted:
            raise ThirdPartyError("Choose at least one photo to protect.")
        unknown = [i for i in wanted if i not in self._existing(wanted)]
        if unknown:
            raise ThirdPartyError(f"No item with id {', '.join(unknown[:10])} in the export; check the ids and try again.")
        states = self.states(ref)
        new = [i for i in wanted if states.get(i) != EventType.third_party_objected]
        now = _now()
        with self.ledger.transaction() as conn:
            stored = self.ledger.append_in(conn, [
                NewEvent(event_id=f"{_prefix(ref)}{secrets.token_hex(6)}", item_id=i,
                         type=EventType.third_party_objected, at=now, channel=Channel.web, actor=actor)
                for i in new
            ])
            if within:
                within(conn)
        return stored

    def dismiss(self, ref: str, item_ids: list[str], grounds: str, *, actor: str, within: Within | None = None) -> list[StoredEvent]:
        """End this request's objection to these items, on grounds the
        requester is shown. Refused for an item another request's objection
        still covers: rule 15 reads an item's latest event, so this dismissal
        would also end that other person's protection."""
        self._open(ref)
        grounds = grounds.strip()
        if len(grounds) < 20:
            raise ThirdPartyError("State the grounds (at least 20 characters); the requester reads them.")
        wanted = list(dict.fromkeys(i.strip() for i in item_ids if i.strip()))
        if not wanted:
            raise ThirdPartyError("Choose at least one photo to dismiss.")
        states = self.states(ref)
        not_covered = [i for i in wanted if states.get(i) != EventType.third_party_objected]
        if not_covered:
            raise ThirdPartyError(f"This request does not protect {', '.join(not_covered[:10])}; nothing to dismiss.")
        shared = self._covered_by_others(ref, wanted)
        if shared:
            raise ThirdPartyError(
                f"Another person's objection also covers {', '.join(shared[:10])}: dismissing it here would end "
                "theirs too. Review that request first."
            )
        now = _now()
        with self.ledger.transaction() as conn:
            stored = self.ledger.append_in(conn, [
                NewEvent(event_id=f"{_prefix(ref)}{secrets.token_hex(6)}", item_id=i,
                         type=EventType.third_party_dismissed, at=now, channel=Channel.web, actor=actor, note=grounds)
                for i in wanted
            ])
            if within:
                within(conn)
        return stored

    def _covered_by_others(self, ref: str, item_ids: list[str]) -> list[str]:
        with self.ledger.reader.connect() as conn:
            rows = conn.execute(
                select(events.c.item_id, events.c.event_id, events.c.type)
                .where(events.c.item_id.in_(item_ids))
                .order_by(events.c.at_us, events.c.seq)
            ).all()
        latest: dict[tuple[str, str], str] = {}
        for item, event_id, typ in rows:
            owner = event_id.split(":")[1] if event_id.startswith("tp:") else event_id  # imported: its own
            latest[(item, owner)] = typ
        return sorted({i for (i, owner), typ in latest.items() if owner != ref and typ == EventType.third_party_objected})

    def close(self, ref: str, *, actor: str, resolution: str, within: Within | None = None) -> Request:
        """Mark the request reviewed. Its objections stay in force: only a
        dismissal ends one."""
        resolution = resolution.strip()
        if len(resolution) < 3:
            raise ThirdPartyError("Say what you checked and decided (at least 3 characters).")
        with self.ledger.transaction() as conn:
            done = conn.execute(
                update(third_party_objections)
                .where(third_party_objections.c.id == ref, third_party_objections.c.status == "open")
                .values(status="reviewed", resolved_by=actor, resolution=resolution)
            )
            if done.rowcount != 1:
                raise ThirdPartyError("No open request with that reference.")
            chain.append(conn, [chain.Record(
                "third_party_reviewed", {"ref": ref, "resolution": chain.note_digest(resolution)}, actor, f"request:{ref}",
            )])
            if within:
                within(conn)
        req = self.request(ref)
        assert req is not None
        return req
