"""Campaigns and their outbox: one row per person and channel, with a state
committed around every send, so a campaign can die at any point and resume."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from ..ledger.tables import metadata

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", String(128), primary_key=True),
    Column("policy_name", String(128), nullable=False),
    Column("policy_hash", String(64), nullable=False),
    Column("template_version", String(32), nullable=False),
    Column("cutoff_us", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("finished_us", BigInteger, nullable=True),
)

outbox = Table(
    "notice_outbox",
    metadata,
    # campaign:user:channel: planning twice adds nothing, sending twice is refused
    Column("dedupe_key", String(400), primary_key=True),
    Column("campaign_id", String(128), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("channel", String(16), nullable=False),  # email | in_app
    Column("address", String(320), nullable=True),
    Column("language", String(16), nullable=False),
    Column("jurisdiction", String(64), nullable=False),
    # pending -> sending -> committing -> sent | bounced ; in_app: pending -> shown
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("message_id", String(256), nullable=True),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_notice_outbox_campaign_state", "campaign_id", "channel", "state"),
)
