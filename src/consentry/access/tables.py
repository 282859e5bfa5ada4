"""Tables for who may act: sign-in links, rate limits, administrators, API clients.

They live in the ledger's database (one Alembic history), so a single
transaction can consume a link and record what the person did.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from ..ledger.tables import metadata

signin_links = Table(
    "signin_links",
    metadata,
    Column("nonce", String(64), primary_key=True),  # the secret part is only ever in the mail
    Column("subject", String(320), nullable=False),  # e-mail address (lower case)
    Column("purpose", String(32), nullable=False),  # signin | tp:<ref> | unused
    Column("account", String(256), nullable=True),  # the user_id a sign-in link opens (never in the token)
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
    # Comma-separated: read (GET), write (POST). Keys made before scopes existed may do both.
    Column("scopes", String(64), nullable=False, server_default="read,write"),
)

# Server-side sessions of the privacy center: the cookie holds a random id, the
# row holds its SHA-256, so sign-out, a password change or removing an
# administrator ends the session at once, and a copied cookie stops working.
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(256), nullable=True),  # a signed-in person
    Column("admin", String(128), nullable=True),  # a signed-in administrator
    Column("data", Text, nullable=False),  # JSON: CSRF token, language, ...
    Column("created_us", BigInteger, nullable=False),  # for the absolute lifetime
    Column("seen_us", BigInteger, nullable=False),  # for the idle timeout
    Index("ix_sessions_user", "user_id"),
    Index("ix_sessions_admin", "admin"),
    Index("ix_sessions_seen", "seen_us"),
)
