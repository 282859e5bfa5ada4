"""Server-side sessions, API key scopes and what abuse protection needs.

`sessions` holds the privacy center's sessions (the cookie carries only a
random id, stored here as its SHA-256). `api_clients` gains `scopes`; keys made
before this revision keep doing what they did: read and write.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(256), nullable=True),
        sa.Column("admin", sa.String(128), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("seen_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sessions_user", "sessions", ["user_id"])
    op.create_index("ix_sessions_admin", "sessions", ["admin"])
    op.create_index("ix_sessions_seen", "sessions", ["seen_us"])
    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(sa.Column("scopes", sa.String(64), nullable=False, server_default="read,write"))


def downgrade() -> None:
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_column("scopes")
    op.drop_index("ix_sessions_seen", "sessions")
    op.drop_index("ix_sessions_admin", "sessions")
    op.drop_index("ix_sessions_user", "sessions")
    op.drop_table("sessions")
