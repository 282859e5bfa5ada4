"""The audit hash chain: append records in the caller's transaction.

A record is (seq, at_us, kind, actor, subject, data). Its hash is the SHA-256
of the previous record's hash and its own canonical JSON, so editing,
deleting, inserting or reordering any record breaks every hash after it.
Writers serialise on the head row, like the ledger's own head.

A ledger event is chained by one record of its own (`ledger_event`, the event
as data), or, in an import of `GROUP_FROM` events or more, by one
`ledger_events` record per `GROUP` events: their seq range, count and the
SHA-256 of their canonical texts. Editing, deleting or adding any event in the
range changes that digest, so a group proves as much as a record per event;
it spares writing every event twice (an import's chain cost 34% of it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from ..timeutil import to_micros
from .prepared import Prepared, Sent, run
from .tables import audit_head, audit_log

GENESIS = "0" * 64
CHUNK = 5_000
_HEAD = Prepared(select(audit_head.c.last_seq, audit_head.c.last_hash).where(audit_head.c.id == 1).with_for_update())
_SET_HEAD = Prepared(update(audit_head).where(audit_head.c.id == 1)
                     .values(last_seq=bindparam("new_seq"), last_hash=bindparam("new_hash")))
#: An import of this many events or more is chained in groups.
GROUP_FROM = 100
#: Events per `ledger_events` record.
GROUP = 10_000


@dataclass(frozen=True)
class Record:
    kind: str
    data: dict | None
    actor: str | None = None
    subject: str | None = None
    data_text: str | None = None  # `data` already as `data_json` writes it (imports: see event_json)


_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def canonical(seq: int, at_us: int, kind: str, actor: str | None, subject: str | None, data_json: str) -> str:
    """The record as compact JSON with sorted keys, `data` being `data_json`
    (already canonical): put together as text, not parsed and dumped again,
    which was a third of what the chain cost an import. Byte for byte what
    `json.dumps({...}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
    writes (held to it by a property test), so every stored hash still verifies."""
    return (f'{{"actor":{_text(actor)},"at_us":{int(at_us)},"data":{data_json},"kind":{_text(kind)},'
            f'"seq":{int(seq)},"subject":{_text(subject)}}}')


def link(prev_hash: str, canonical_text: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical_text}".encode()).hexdigest()


def data_json(data: dict) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def note_digest(note: str | None) -> str | None:
    """The audit log proves a note existed without copying personal words."""
    return None if note is None else "sha256:" + hashlib.sha256(note.encode()).hexdigest()


def send_head(conn: Connection) -> Sent:
    """Lock the chain's head row and read it, answered later: a writer sends
    it with its other reads (`prepared.pipeline`) and hands it to `append`."""
    return _HEAD.send(conn)


def append(conn: Connection, records: Iterable[Record], *, at: datetime | None = None,
           sent_head: Sent | None = None) -> int:
    """Append records to the chain inside `conn`'s transaction; returns the new
    head seq. `sent_head`: the head as sent by `send_head` (else it is read now)."""
    records = list(records)
    (head,) = (sent_head or _HEAD.send(conn)).rows()
    seq, prev = int(head[0]), head[1]
    if not records:
        return seq
    at_us = to_micros(at or datetime.now(UTC))
    rows = []
    for r in records:
        seq += 1
        dj = r.data_text if r.data_text is not None else data_json(r.data)
        h = link(prev, canonical(seq, at_us, r.kind, r.actor, r.subject, dj))
        rows.append({"seq": seq, "at_us": at_us, "kind": r.kind, "actor": r.actor, "subject": r.subject,
                     "data": dj, "prev_hash": prev, "hash": h})
        prev = h
    bulk_insert(conn, audit_log, rows)
    _SET_HEAD.write(conn, new_seq=seq, new_hash=prev)
    return seq


#: From this many rows on, PostgreSQL gets them by COPY: one stream instead of a
#: statement per row (an import of 130k events went from minutes to seconds).
COPY_FROM = 500


def bulk_insert(conn: Connection, table: Table, rows: list[dict]) -> None:
    """Insert rows (dicts with the same keys) in `conn`'s transaction, as fast
    as the database allows: COPY on PostgreSQL, executemany in chunks elsewhere."""
    if not rows:
        return
    cols = list(rows[0])
    if conn.dialect.name == "sqlite":
        # The driver's own executemany over tuples: SQLAlchemy's per-row binding of
        # dicts cost as much as SQLite's insert itself (the tables hold plain ints and text).
        sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        run(conn, sql, [tuple(r[c] for c in cols) for r in rows], many=True)
        return
    if conn.dialect.driver == "psycopg" and len(rows) < COPY_FROM:
        # The driver's executemany: in a `prepared.pipeline()` its rows are sent without waiting.
        sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
        run(conn, sql, [tuple(r[c] for c in cols) for r in rows], many=True)
        return
    if conn.dialect.name != "postgresql" or len(rows) < COPY_FROM:
        for i in range(0, len(rows), CHUNK):
            conn.execute(insert(table), rows[i : i + CHUNK])
        return
    cur = conn.connection.dbapi_connection.cursor()  # the same connection, so the same transaction
    try:
        with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row([r[c] for c in cols])
    finally:
        cur.close()


def event_data(row: dict) -> dict:
    """What the chain keeps of a ledger event: everything but the note's words.
    `item_id` and `imported_from` appear only when set, so records written
    before those columns existed still verify."""
    data = {
        "seq": row["seq"], "event_id": row["event_id"], "user_id": row["user_id"], "type": row["type"],
        "at_us": row["at_us"], "channel": row["channel"], "note": note_digest(row["note"]), "actor": row["actor"],
        "recorded_us": row["recorded_us"],
    }
    for key in ("item_id", "imported_from"):
        if row.get(key) is not None:
            data[key] = row[key]
    return data


def events_digest(rows: Iterable[dict]) -> tuple[int, str]:
    """(how many, "sha256:" + the SHA-256 of their `event_json` lines), for
    events in seq order: what a `ledger_events` record holds of them."""
    h, n = hashlib.sha256(), 0
    for r in rows:
        h.update(event_json(r).encode())
        h.update(b"\n")
        n += 1
    return n, "sha256:" + h.hexdigest()


def group_data(first_seq: int, last_seq: int, count: int, digest: str, imported_from: str | None) -> str:
    """A `ledger_events` record's data, canonical (keys in order); the file
    the events came from when they all came from one."""
    src = f',"imported_from":{_text(imported_from)}' if imported_from is not None else ""
    return (f'{{"count":{int(count)},"digest":{_text(digest)},"first_seq":{int(first_seq)}{src},'
            f'"last_seq":{int(last_seq)}}}')


def event_records(rows: list[dict], *, imported: bool = False) -> list[Record]:
    """The audit records that chain these just-inserted events (seq order):
    one each, or for an import of `GROUP_FROM` events or more one per `GROUP`.
    Events recorded live (the center, the API, a campaign, `Ledger.append`)
    always get a record each, however many a group commit holds."""
    if not imported or len(rows) < GROUP_FROM:
        return [Record("ledger_event", None, r["actor"], r["user_id"] or f"item:{r['item_id']}", event_json(r))
                for r in rows]
    out = []
    for i in range(0, len(rows), GROUP):
        part = rows[i : i + GROUP]
        n, digest = events_digest(part)
        sources = {r["imported_from"] for r in part}
        out.append(Record("ledger_events", None, None, None, group_data(
            part[0]["seq"], part[-1]["seq"], n, digest, sources.pop() if len(sources) == 1 else None)))
    return out


def event_json(row: dict) -> str:
    """`data_json(event_data(row))`, put together as text: an import writes
    millions of these. The keys in sorted order, the optional ones where they
    sort; held to the dict form by a property test."""
    t = _text
    extra = "".join(f',"{k}":{t(row[k])}' for k in ("imported_from", "item_id") if row.get(k) is not None)
    return (f'{{"actor":{t(row["actor"])},"at_us":{int(row["at_us"])},"channel":{t(row["channel"])},'
            f'"event_id":{t(row["event_id"])}{extra},"note":{t(note_digest(row["note"]))},'
            f'"recorded_us":{int(row["recorded_us"])},"seq":{int(row["seq"])},"type":{t(row["type"])},'
            f'"user_id":{t(row["user_id"])}}}')
