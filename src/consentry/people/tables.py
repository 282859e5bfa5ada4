"""Requests from people without an account who appear in others' photos.

Their address and their own words stay here, in the privacy center's part of
the database, never in the ledger (CONTRACT §2); the ledger holds only the
`third_party_objected` / `third_party_dismissed` events about items, whose
event ids start with `tp:<ref>:` so each can be traced to its request.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from ..ledger.tables import metadata

third_party_objections = Table(
    "third_party_objections",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("handles", String(2000), nullable=True),  # handles of the accounts whose photos show them
    Column("items", String(2000), nullable=True),  # item ids or links they named
    Column("note", String(4000), nullable=True),
    Column("received_us", BigInteger, nullable=False),  # submitted; on confirmation, confirmed
    Column("status", String(32), nullable=False),  # unverified | open | reviewed
    Column("resolved_by", String(128), nullable=True),
    Column("resolution", String(4000), nullable=True),
    Column("language", String(16), nullable=True),  # of the form they used: mails to them use it
)
