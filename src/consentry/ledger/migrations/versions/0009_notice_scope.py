"""What each e-mail or in-app notice speaks of: the person's own content, photos
of them posted by others, or both (`notices.audience.scope_of`), so that a
resumed campaign writes every person the text planned for them.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notice_outbox", sa.Column("scope", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notice_outbox") as batch:
        batch.drop_column("scope")
