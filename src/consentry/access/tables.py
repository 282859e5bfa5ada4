"""Tables for who may act: sign-in links, rate limits, administrators, API clients.

They live in the ledger's database (one Alembic history), so a single
transaction can consume a link and record what the person did.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table

from ..ledger.tables import metadata

signin_links = Table(
    "signin_links",
    metadata,
    Column("nonce", String(64), primary_key=True),  # the secret part is only ever in the mail
    Column("subject", String(320), nullable=False),  # e-mail address (lower case)
    Column("purpose", String(32), nullable=False),  # signin | third_party
    Column("created_us", BigInteger, nullable=False),
    Column("used_us", BigInteger, nullable=True),
)

rate_events = Table(
    "rate_events",
    metadata,
    Column("bucket", String(400), nullable=False),  # e.g. "email:<sha256>" or "ip:127.0.0.1"
    Column("at_us", BigInteger, nullable=False),
    Index("ix_rate_events_bucket", "bucket", "at_us"),
)

admins = Table(
    "admins",
    metadata,
    Column("username", String(128), primary_key=True),
    Column("password_hash", String(256), nullable=False),  # scrypt, salted
    Column("role", String(32), nullable=False),  # reviewer | viewer
    Column("created_us", BigInteger, nullable=False),
)

api_clients = Table(
    "api_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(128), nullable=False),  # sha256 of the key; the key is shown once
    Column("created_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger, nullable=True),
)

third_party_objections = Table(
    "third_party_objections",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("handles", String(2000), nullable=True),  # handles of the accounts whose photos show them
    Column("items", String(2000), nullable=True),  # item ids or links they named
    Column("note", String(4000), nullable=True),
    Column("received_us", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),  # open | linked | closed
    Column("resolved_by", String(128), nullable=True),
    Column("resolution", String(4000), nullable=True),
    Column("language", String(16), nullable=True),  # of the form they used: the outcome is mailed in it
)

# An administrator's link between a verified objection by someone without an
# account and the photos that show them.
third_party_links = Table(
    "third_party_links",
    metadata,
    Column("ref", String(64), nullable=False),
    Column("item_id", String(256), nullable=False),
    Column("linked_us", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Index("ix_third_party_links_item", "item_id"),
    Index("ux_third_party_links", "ref", "item_id", unique=True),
)
