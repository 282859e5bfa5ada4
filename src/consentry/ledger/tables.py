"""The ledger's tables. Instants are integer microseconds since the epoch (UTC):
exact, ordered and identical in SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

events = Table(
    "ledger_events",
    metadata,
    # Ledger order. Assigned under the head lock, so it has no gaps and a
    # reader that saw seq N has seen every event <= N (the snapshot watermark).
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(128), nullable=False, unique=True),
    # Null for the two third-party types: the person has no account (CONTRACT §2).
    Column("user_id", String(256), nullable=True),
    # For third_party_objected / third_party_dismissed: the item they concern.
    Column("item_id", String(256), nullable=True),
    Column("type", String(32), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("note", Text, nullable=True),
    Column("actor", String(256), nullable=True),
    Column("recorded_us", BigInteger, nullable=False),
    # The file `ledger import` read the event from; null for live events.
    Column("imported_from", Text, nullable=True),
    Index("ix_ledger_events_user", "user_id", "at_us", "seq"),
    Index("ix_ledger_events_at", "at_us"),
    Index("ix_ledger_events_item", "item_id"),
)

head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
)

# Where each person stands now (after every event in the ledger), kept in the
# same transaction as the events so it can never disagree with the history.
person_state = Table(
    "person_state",
    metadata,
    Column("user_id", String(256), primary_key=True),
    Column("objection", String(32), nullable=True),  # latest of objected/withdrawn/rejected
    Column("objection_us", BigInteger, nullable=True),
    Column("consent", String(32), nullable=True),  # latest of consent_given/withdrawn
    Column("consent_us", BigInteger, nullable=True),
    Column("erasure_us", BigInteger, nullable=True),  # first erasure request
    Column("first_notified_us", BigInteger, nullable=True),
    Column("last_notified_us", BigInteger, nullable=True),
    Column("last_seq", BigInteger, nullable=False),
)

# The audit log: a hash chain over everything consentry did, written in the
# same transaction as the action. Each record holds the SHA-256 of the one
# before and of its own canonical serialisation (see consentry.ledger.chain).
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at_us", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(256), nullable=True),
    Column("subject", String(256), nullable=True),
    Column("data", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("signed_us", BigInteger, nullable=False),
    Column("public_key", String(128), nullable=False),  # Ed25519, hex
    Column("signature", String(256), nullable=False),  # hex
)
