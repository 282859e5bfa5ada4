"""The outbox of the privacy center's mails: one row per mail, written in the
same transaction as the event that causes it, so a committed objection always
has its confirmation queued and a rolled-back one never does."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text

from ..ledger.tables import metadata

mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),  # signin, objected, rejection, ... (X-Consentry-Kind)
    Column("recipient", String(320), nullable=False),
    Column("message_id", String(256), nullable=False),
    # The bytes as sent (render()); emptied once the mail is sent, expired or failed.
    Column("raw", LargeBinary, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    # queued -> sent | expired (not delivered in time) | failed (refused for good)
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    # When a sender may take it next. A claim moves it one lease ahead, so a
    # sender that dies mid-delivery leaves it to another after the lease.
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("claim", String(32), nullable=True),
    Column("last_error", Text, nullable=True),  # the server's reply, never a password
    Column("done_us", BigInteger, nullable=True),  # sent, expired or failed at
    Index("ix_mail_outbox_due", "state", "next_attempt_us"),
)
