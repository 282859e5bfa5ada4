"""The ledger: events, head, person state.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(128), nullable=False, unique=True),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("actor", sa.String(256), nullable=True),
        sa.Column("recorded_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ledger_events_user", "ledger_events", ["user_id", "at_us", "seq"])
    op.create_index("ix_ledger_events_at", "ledger_events", ["at_us"])
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO ledger_head (id, last_seq) VALUES (1, 0)")
    op.create_table(
        "person_state",
        sa.Column("user_id", sa.String(256), primary_key=True),
        sa.Column("objection", sa.String(32), nullable=True),
        sa.Column("objection_us", sa.BigInteger, nullable=True),
        sa.Column("consent", sa.String(32), nullable=True),
        sa.Column("consent_us", sa.BigInteger, nullable=True),
        sa.Column("erasure_us", sa.BigInteger, nullable=True),
        sa.Column("first_notified_us", sa.BigInteger, nullable=True),
        sa.Column("last_notified_us", sa.BigInteger, nullable=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("person_state")
    op.drop_table("ledger_head")
    op.drop_table("ledger_events")
