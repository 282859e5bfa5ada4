"""The account a sign-in link opens, kept with the link rather than in its
token: the token in the mail carries only its nonce and purpose, so the
address and the account id never appear in a URL (proxy logs, browser
history). Links issued before this revision carry them in the token and are
refused as not valid; they lived 15 minutes.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("signin_links", sa.Column("account", sa.String(256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signin_links") as batch:
        batch.drop_column("account")
