"""Purge receipts: for one person and one purge, a signed record of which
versions of the snapshot's Delta table held their rows, the version that
removed them, when the old files were vacuumed, and where the purge stands in
the audit chain. Anyone with the public key can check it offline; with the
ledger, against the chain itself.

The facts come from where they live: the purge record (registry), the table's
own log (its history names each purge's commit and vacuum), the audit chain
(the `snapshot_purged` record of that purge). Nothing is copied from the
person's data but their id.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .. import signing
from ..errors import InputError
from ..ledger import Ledger
from ..ledger.tables import audit_log
from ..timeutil import iso
from .ondisk import unreadable
from .registry import Registry
from .tables import snapshot_purges

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["KIND", "issue", "receipts_for", "sign", "verify_receipt"]

KIND = "consentry.purge_receipt"


def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _delta_facts(uri: str, to_watermark: int) -> tuple[int | None, datetime | None]:
    """(the version whose commit is this purge, when the vacuum after it ended), from the table's log."""
    from deltalake import DeltaTable

    history = sorted(DeltaTable(uri).history(), key=lambda h: h["version"])
    removed = None
    for h in history:
        meta = h.get("consentry.purge")
        if meta and int(json.loads(meta).get("purge", json.loads(meta)).get("to_watermark", -1)) == to_watermark:
            removed = int(h["version"])
    if removed is None:
        return None, None
    vacuumed = next((datetime.fromtimestamp(h["timestamp"] / 1000, UTC) for h in history
                     if h["version"] > removed and h.get("operation") == "VACUUM END"), None)
    return removed, vacuumed


def _audit_position(ledger: Ledger, snapshot: str, purge_id: int) -> tuple[int, str] | None:
    with ledger.reader.connect() as conn:
        rows = conn.execute(select(audit_log.c.seq, audit_log.c.hash, audit_log.c.data).where(
            audit_log.c.kind == "snapshot_purged", audit_log.c.subject == snapshot)).all()
    for seq, h, data in rows:
        if int(json.loads(data).get("purge_id", -1)) == purge_id:
            return int(seq), str(h)
    return None


def receipts_for(ledger: Ledger, user_id: str, *, now: datetime | None = None) -> list[dict]:
    """The unsigned receipt bodies of every purge that removed this person's rows, oldest first."""
    registry = Registry(ledger)
    out = []
    for p in registry.purged_for(user_id):
        with ledger.reader.connect() as conn:
            purge = conn.execute(select(snapshot_purges).where(snapshot_purges.c.id == p["purge_id"])).mappings().one()
        rec = registry.get(p["snapshot"])
        # A snapshot moved or deleted by hand: the table's log cannot be read, the rest of the receipt still holds.
        readable = rec is not None and unreadable(rec) is None
        removed, vacuumed = _delta_facts(rec.uri, int(purge["to_watermark"])) if readable else (None, None)
        audit = _audit_position(ledger, p["snapshot"], int(p["purge_id"]))
        out.append({
            "kind": KIND, "version": 1, "person": user_id, "snapshot": p["snapshot"], "purge_id": int(p["purge_id"]),
            "cause": p["cause"], "rows": int(p["rows"]), "trigger_seq": p["trigger_seq"],
            "purged_at": iso(p["purged_at"]),
            "held_in_versions": None if removed is None else [0, removed - 1],
            "removed_in_version": removed,
            "vacuumed_at": iso(vacuumed) if vacuumed else None,
            "ledger_events": [int(purge["from_watermark"]) + 1, int(purge["to_watermark"])],
            "audit": None if audit is None else {"seq": audit[0], "hash": audit[1]},
            "issued_at": iso(now or datetime.now(UTC)),
        })
    return out


def sign(body: dict, key: Ed25519PrivateKey) -> dict:
    """The receipt: its body and an Ed25519 signature over its canonical JSON."""
    from cryptography.hazmat.primitives import serialization

    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    return {"receipt": body, "signature": {"algorithm": "Ed25519", "public_key": pub,
                                           "value": key.sign(_canonical(body)).hex()}}


def issue(ledger: Ledger, user_id: str, private_key: bytes | Path, purge_id: int | None = None) -> list[dict]:
    """Signed receipts for this person (one purge's, if `purge_id`). The key is
    read first, so a bad key is refused even for a person with no receipts."""
    key = signing.private_key(private_key)
    return [sign(b, key) for b in receipts_for(ledger, user_id) if purge_id is None or b["purge_id"] == purge_id]


def verify_receipt(doc: Any, public_key: bytes | Path, ledger: Ledger | None = None) -> list[str]:
    """What is wrong with a receipt (nothing: it is genuine). The signature is
    checked with the audit key; with the ledger, the purge and its place in the
    audit chain are checked too."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    key = signing.public_key(public_key)
    if not isinstance(doc, dict) or not isinstance(doc.get("receipt"), dict) or not isinstance(doc.get("signature"), dict):
        raise InputError("this is not a consentry purge receipt (it needs 'receipt' and 'signature')")
    body, sig = doc["receipt"], doc["signature"]
    if body.get("kind") != KIND:
        raise InputError(f"this is not a consentry purge receipt (its kind is {body.get('kind')!r})")
    problems = []
    pub = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    if sig.get("public_key") != pub:
        problems.append("it was signed with another key than this one")
    try:
        key.verify(bytes.fromhex(str(sig.get("value", ""))), _canonical(body))
    except (InvalidSignature, ValueError):
        problems.append("its signature does not verify: the receipt was changed or is not genuine")
    if ledger is not None and not problems:
        audit = body.get("audit") or {}
        with ledger.reader.connect() as conn:
            row = conn.execute(select(audit_log.c.kind, audit_log.c.hash, audit_log.c.data).where(
                audit_log.c.seq == int(audit.get("seq", -1)))).one_or_none()
        if row is None:
            problems.append(f"the audit chain has no record {audit.get('seq')}")
        elif row[0] != "snapshot_purged" or int(json.loads(row[2]).get("purge_id", -1)) != body.get("purge_id"):
            problems.append(f"audit record {audit.get('seq')} is not this purge")
        elif row[1] != audit.get("hash"):
            problems.append(f"audit record {audit.get('seq')} has another hash now: the chain was rewritten")
        purged = [p for p in Registry(ledger).purged_for(str(body.get("person")))
                  if p["purge_id"] == body.get("purge_id") and p["snapshot"] == body.get("snapshot")]
        if not purged:
            problems.append("the ledger has no record of this purge for this person")
    return problems

