"""Campaigns and their outbox: one row per person and channel, with a state
committed around every send, so a campaign can die at any point and resume."""

from __future__ import annotations

from enum import StrEnum

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

class NoticeState(StrEnum):
    """Where a notice is: e-mail pending -> sending -> committing -> sent (or
    bounced; deferred waits for the next run); in-app pending -> shown.
    `committing` is written with the `notified` event, before the final dot."""

    pending = "pending"
    sending = "sending"
    committing = "committing"
    sent = "sent"
    bounced = "bounced"
    #: The export's address cannot be used (malformed, two addresses, blank): no mail, never retried.
    bad_address = "bad_address"
    deferred = "deferred"
    shown = "shown"


#: Told (the mail was taken, or the notice shown in the app).
DELIVERED = (NoticeState.sent, NoticeState.shown)
#: Never told by mail: refused for good, or no address to send to.
FAILED = (NoticeState.bounced, NoticeState.bad_address)
#: Still to go out (recovery counts `committing` as sent; a dashboard does not yet).
NOT_YET_SENT = (NoticeState.pending, NoticeState.sending, NoticeState.deferred, NoticeState.committing)


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
    # what the notice speaks of (`audience.scope_of`): own content, photos of them, or both; NULL: own content
    Column("scope", String(16), nullable=True),
    # a NoticeState
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("message_id", String(256), nullable=True),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_notice_outbox_campaign_state", "campaign_id", "channel", "state"),
)


def pending_by_channel(engine) -> dict[str, int]:  # noqa: ANN001 - an SQLAlchemy engine
    """Notices not yet sent, per channel (what the center's /metrics shows)."""
    from sqlalchemy import func, select

    q = select(outbox.c.channel, func.count()).where(outbox.c.state.in_(NOT_YET_SENT)).group_by(outbox.c.channel)
    with engine.connect() as conn:
        return {str(ch): int(n) for ch, n in conn.execute(q)}
