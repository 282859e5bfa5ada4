"""Snapshots, their purges, registered models; links from third-party objections to photos.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("policy_name", sa.String(128), nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("cutoff_us", sa.BigInteger, nullable=False),
        sa.Column("watermark", sa.BigInteger, nullable=False),
        sa.Column("built_us", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("rows_built", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("table_version", sa.BigInteger, nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
    )
    op.create_table(
        "snapshot_purges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("snapshot", sa.String(128), nullable=False),
        sa.Column("started_us", sa.BigInteger, nullable=False),
        sa.Column("finished_us", sa.BigInteger, nullable=False),
        sa.Column("from_watermark", sa.BigInteger, nullable=False),
        sa.Column("to_watermark", sa.BigInteger, nullable=False),
        sa.Column("people", sa.BigInteger, nullable=False),
        sa.Column("rows_removed", sa.BigInteger, nullable=False),
        sa.Column("files_removed", sa.BigInteger, nullable=False),
        sa.Column("table_version", sa.BigInteger, nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
    )
    op.create_index("ix_snapshot_purges_snapshot", "snapshot_purges", ["snapshot", "finished_us"])
    op.create_table(
        "purged_people",
        sa.Column("snapshot", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("purge_id", sa.Integer, nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("trigger_seq", sa.BigInteger, nullable=True),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("purged_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_purged_people_user", "purged_people", ["user_id"])
    op.create_table(
        "models",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("snapshot", sa.String(128), nullable=False),
        sa.Column("table_version", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("registered_us", sa.BigInteger, nullable=False),
        sa.Column("mlflow_run", sa.String(128), nullable=True),
        sa.Column("actor", sa.String(256), nullable=True),
    )
    op.create_table(
        "third_party_links",
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(256), nullable=False),
        sa.Column("linked_us", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
    )
    op.create_index("ix_third_party_links_item", "third_party_links", ["item_id"])
    op.create_index("ux_third_party_links", "third_party_links", ["ref", "item_id"], unique=True)
    # So the outcome can be mailed in the language the person wrote in.
    with op.batch_alter_table("third_party_objections") as batch:
        batch.add_column(sa.Column("language", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("third_party_objections") as batch:
        batch.drop_column("language")
    for name in ("third_party_links", "models", "purged_people", "snapshot_purges", "snapshots"):
        op.drop_table(name)
