"""Verify, export and sign the audit hash chain (written by consentry.ledger.chain).

`verify` walks the chain in order and names the first record that is edited,
deleted, inserted or out of order; it also checks every ledger event against
its audit record, so an edit to the ledger itself is caught too, the
ledger's own counters (its head, gap-free seqs, person_state) against its
events, and the tables the report counts from against their records (`derived`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select, text

from .. import signing
from ..errors import InputError, LedgerError
from ..ledger import Ledger
from ..paths import check_writable
from .derived import check_derived
from ..ledger.chain import GENESIS, canonical, event_data, events_digest, link
from ..ledger.store import STATE_MISMATCH
from ..ledger.tables import audit_checkpoints, audit_head, audit_log, events
from ..timeutil import from_micros, iso, to_micros
from ..words import count

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

BATCH = 20_000


@dataclass(frozen=True)
class Finding:
    seq: int | None
    problem: str
    #: False when the log could not be checked rather than found changed (a
    #: public key that did not sign its checkpoints): the CLI must not call it broken.
    broken: bool = True


@dataclass(frozen=True)
class VerifyResult:
    records: int
    head_seq: int
    head_hash: str
    first_bad: Finding | None
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def _rows(ledger: Ledger) -> Iterator[dict]:
    last = 0
    while True:
        with ledger.reader.connect() as conn:
            rows = conn.execute(select(audit_log).where(audit_log.c.seq > last).order_by(audit_log.c.seq).limit(BATCH)).mappings().all()
        if not rows:
            return
        yield from (dict(r) for r in rows)
        last = rows[-1]["seq"]


def verify(ledger: Ledger, *, public_key: bytes | Path | None = None, checkpoints: Path | None = None) -> VerifyResult:
    """Walk the chain. With `public_key`, also check the signed checkpoints:
    those in the database and, with `checkpoints`, those kept outside it (the
    JSON lines `checkpoint(out=...)` appends), which catch what the database
    alone cannot: its checkpoints deleted, or the whole file rolled back."""
    key = signing.public_key(public_key) if public_key is not None else None  # a bad key is refused before the walk
    if checkpoints is not None and key is None:
        raise InputError("checkpoints kept outside the database are checked with the key that signed them",
                         where=str(checkpoints), fix="pass --public-key too (e.g. audit-key.pub.pem)")
    outside = _read_checkpoints(checkpoints) if checkpoints is not None else []
    with ledger.reader.connect() as conn:
        head_seq, head_hash = conn.execute(select(audit_head.c.last_seq, audit_head.c.last_hash)).one()
        n_events = conn.execute(select(func.count()).select_from(events)).scalar_one()
    expected_seq, prev, n_records, covered = 1, GENESIS, 0, 0
    bad: Finding | None = None
    pending: dict[int, dict] = {}

    def check_events() -> Finding | None:
        if not pending:
            return None
        with ledger.reader.connect() as conn:
            rows = {r["seq"]: dict(r) for r in conn.execute(select(events).where(events.c.seq.in_([d["seq"] for d in pending.values()]))).mappings()}
        for audit_seq, data in sorted(pending.items(), key=lambda kv: kv[1]["seq"]):
            row = rows.get(data["seq"])
            if row is None:
                return Finding(audit_seq, f"ledger event #{data['seq']} ({data['event_id']}) is recorded here but missing from the ledger")
            if event_data(row) != data:
                return Finding(audit_seq, f"ledger event #{data['seq']} ({data['event_id']}) was changed after it was recorded")
        pending.clear()
        return None

    for r in _rows(ledger):
        n_records += 1
        seq = r["seq"]
        if seq != expected_seq:
            bad = Finding(seq, f"record {expected_seq} is missing (the chain jumps from {expected_seq - 1} to {seq})")
            break
        if r["prev_hash"] != prev:
            bad = Finding(seq, "it does not follow the record before it (inserted, reordered, or the one before was edited)")
            break
        if link(prev, canonical(seq, r["at_us"], r["kind"], r["actor"], r["subject"], r["data"])) != r["hash"]:
            bad = Finding(seq, "its content does not match its hash (edited)")
            break
        if r["kind"] == "ledger_event":
            pending[seq] = json.loads(r["data"])
            covered += 1
            if len(pending) >= BATCH and (bad := check_events()):
                break
        elif r["kind"] == "ledger_events":
            group = json.loads(r["data"])
            covered += int(group["count"])
            if bad := _check_group(ledger, seq, group):
                break
        prev, expected_seq = r["hash"], seq + 1
    if bad is None:
        bad = check_events()
    if bad is None and n_records < head_seq:
        bad = Finding(n_records, f"the chain ends at record {n_records}, but its head says {head_seq}: records were removed from the end")
    elif bad is None and (n_records != head_seq or prev != head_hash):
        bad = Finding(n_records, f"its hash is not the one the log's head (audit_head) records for record {head_seq}: "
                                 "the head was changed outside consentry")
    if bad is None and covered != n_events:
        bad = Finding(None, f"the ledger holds {count(n_events, 'event', 'events')} but the audit log records {covered:,}: events were added outside consentry")
    if bad is None:
        bad = check_ledger_counters(ledger)
    if bad is None and (problem := check_derived(ledger)) is not None:
        bad = Finding(None, problem)
    signed = 0
    if bad is None and key is not None:
        bad, signed = _check_checkpoints(ledger, key, outside, n_records)
    return VerifyResult(n_records, head_seq, head_hash, bad, signed)


def require_intact(ledger: Ledger, what: str, *, public_key: bytes | Path | None = None,
                   checkpoints: Path | None = None) -> VerifyResult:
    """The chain, verified (with `public_key`, its signed checkpoints too, as
    `verify`); else LedgerError naming the first problem. `what` (a report,
    the documents) must not state as fact what a ledger changed outside
    consentry says: a deleted objection would go uncounted."""
    r = verify(ledger, public_key=public_key, checkpoints=checkpoints)
    if r.first_bad is not None:
        at = f" at record {r.first_bad.seq}" if r.first_bad.seq is not None else ""
        raise LedgerError(f"the audit log is broken{at}: {r.first_bad.problem}. No {what} was written: it would state "
                          "as fact what a ledger changed outside consentry says. `consentry audit verify` names the "
                          "change; restore the ledger from a copy that verifies")
    return r


def _check_group(ledger: Ledger, audit_seq: int, group: dict) -> Finding | None:
    """The events a `ledger_events` record chains (see consentry.ledger.chain)
    are all there and unchanged: their digest is recomputed from the ledger."""
    first, last = int(group["first_seq"]), int(group["last_seq"])
    with ledger.reader.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            select(events).where(events.c.seq.between(first, last)).order_by(events.c.seq)).mappings()]
    missing = sorted(set(range(first, last + 1)) - {r["seq"] for r in rows})
    if missing:
        return Finding(audit_seq, f"ledger event #{missing[0]} is recorded here but missing from the ledger")
    if events_digest(rows) != (int(group["count"]), group["digest"]):
        return Finding(audit_seq, f"one of ledger events #{first}-#{last}, recorded here together, was changed "
                                  "after it was recorded")
    return None


def check_ledger_counters(ledger: Ledger) -> Finding | None:
    """The ledger's own bookkeeping, recomputed from its events, set-based in SQL:
    ledger_head.last_seq is the last event, sequence numbers have no gaps, and
    every person_state row is the fold of that person's events (a row edited,
    missing or extra is named). Decisions read up to the head and `object`
    numbers from it, so a wrong head silently hides events."""
    if (problem := ledger.numbering_problem()) is not None:
        return Finding(None, problem)
    with ledger.reader.connect() as conn:
        who = conn.execute(text(STATE_MISMATCH)).scalar()
        if who is not None:
            return Finding(None, f"person_state of {who} differs from the fold of their events: the table was "
                                 "edited outside consentry (where they stand now is wrong)")
    return None


def export_jsonl(ledger: Ledger, out: Path) -> int:
    """Every audit record as a JSON line in `out`, written under a temporary
    name and renamed into place when complete."""
    out = Path(out)
    if out.is_dir() or out.name in ("", ".."):  # `--out ""` is the working folder
        raise InputError("is a folder; the audit records are written to one JSONL file", where=str(out),
                         fix=f"e.g. --out {out / 'audit.jsonl'}")
    check_writable(out.parent, where=str(out))
    n = 0
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in _rows(ledger):
            r["data"] = json.loads(r["data"])
            r["at"] = from_micros(r.pop("at_us")).isoformat().replace("+00:00", "Z")
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    tmp.replace(out)
    return n


# -- signed checkpoints (Ed25519) ---------------------------------------------------------


def _message(seq: int, h: str) -> bytes:
    return f"consentry-audit-checkpoint\n{seq}\n{h}".encode()


def checkpoint(ledger: Ledger, private_key: bytes | Path, *, out: Path | None = None) -> tuple[int, str]:
    """Sign the current head: a later rewrite of the whole chain would need the key
    (PEM bytes, or the PEM file). With `out`, the signed checkpoint is also
    appended to that file as a JSON line: kept away from the database (another
    machine, write-once storage), it still proves the head when someone able
    to write the database deletes its checkpoints or rolls the file back."""
    from cryptography.hazmat.primitives import serialization

    key = signing.private_key(private_key)
    if out is not None:
        check_writable(out.parent, where=str(out))
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    with ledger.transaction() as conn:
        seq, h = conn.execute(select(audit_head.c.last_seq, audit_head.c.last_hash).where(audit_head.c.id == 1)).one()
        cp = conn.execute(select(audit_checkpoints).where(audit_checkpoints.c.seq == seq)).mappings().first()
        if cp is None:
            cp = {"seq": seq, "hash": h, "signed_us": to_micros(datetime.now(UTC)), "public_key": pub,
                  "signature": key.sign(_message(seq, h)).hex()}
            conn.execute(insert(audit_checkpoints).values(**cp))
    if out is not None:
        line = {"seq": int(cp["seq"]), "hash": cp["hash"], "signed_at": iso(from_micros(cp["signed_us"])),
                "public_key": cp["public_key"], "signature": cp["signature"]}
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return int(seq), h


def _read_checkpoints(path: Path) -> list[dict]:
    """The checkpoints `checkpoint(out=...)` appended to `path`, each named by its line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the checkpoints: {exc.strerror}", where=str(path)) from None
    found = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            cp = json.loads(line)
            found.append({"seq": int(cp["seq"]), "hash": str(cp["hash"]), "signature": str(cp["signature"]),
                          "public_key": cp.get("public_key"), "line": no})
        except (ValueError, KeyError, TypeError):
            raise InputError("is not a signed checkpoint (a JSON line with seq, hash and signature, as "
                             "`consentry audit checkpoint --out` writes)", where=f"{path}:{no}") from None
    if not found:
        raise InputError("holds no checkpoint", where=str(path),
                         fix="pass the file `consentry audit checkpoint --out` appends to")
    return found


def _short(raw_hex: str | None) -> str:
    """A public key as people compare them: its first 16 hex digits."""
    return f"{raw_hex[:16]}…" if raw_hex else "none recorded"


def _check_checkpoints(ledger: Ledger, key: Ed25519PublicKey, outside: list[dict], n_records: int
                       ) -> tuple[Finding | None, int]:
    """Every checkpoint, in the database and kept outside it, is signed by `key`
    and names a record the chain holds with that hash; each one kept outside is
    in the database too. Without any, nothing shows the log was not rewritten."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    given = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    with ledger.reader.connect() as conn:
        cps = [dict(cp) for cp in conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq)).mappings()]
        in_db = {(cp["seq"], cp["hash"]) for cp in cps}
        for cp in cps + outside:
            here = f"checkpoints file line {cp['line']}: " if "line" in cp else ""
            try:
                key.verify(bytes.fromhex(cp["signature"]), _message(cp["seq"], cp["hash"]))  # type: ignore[union-attr]
            except (InvalidSignature, ValueError):
                if cp["public_key"] != given:
                    return Finding(cp["seq"], (
                        f"{here}its signed checkpoint names another signing key ({_short(cp['public_key'])}) than the "
                        f"public key given ({_short(given)}), so the checkpoints could not be checked; pass the "
                        "public half of the audit key that signs them (e.g. audit-key.pub.pem). If that is the key "
                        "given, the checkpoint itself was replaced"), broken=False), 0
                return Finding(cp["seq"], f"{here}its signed checkpoint does not verify with this public key"), 0
            if cp["seq"] > n_records:
                return Finding(cp["seq"], (
                    f"{here}a checkpoint signed it, but the chain ends at record {n_records}: records were removed "
                    "from the end, or the database was put back to an older copy")), 0
            actual = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == cp["seq"])).scalar_one_or_none()
            if actual != cp["hash"]:
                return Finding(cp["seq"], f"{here}it differs from what the signed checkpoint says: the chain was rewritten"), 0
            if "line" in cp and (cp["seq"], cp["hash"]) not in in_db:
                return Finding(cp["seq"], (
                    f"{here}its signed checkpoint is missing from the database (audit_checkpoints): it was deleted "
                    "there")), 0
    if not cps and not outside:
        return Finding(None, ("no signed checkpoint to check: nothing shows that the whole chain was not rewritten; "
                              "sign one with `consentry audit checkpoint --key ... --out FILE`, and keep FILE "
                              "elsewhere"), broken=False), 0
    return None, len(in_db | {(cp["seq"], cp["hash"]) for cp in outside})
