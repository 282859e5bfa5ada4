"""Where snapshots, their purges and the models trained on them are recorded.

In the ledger's database, so a purge's record and the watermark it reached are
committed together, and `impact` can answer from one place.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from ..ledger.tables import metadata

snapshots = Table(
    "snapshots",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("uri", Text, nullable=False),
    Column("policy_name", String(128), nullable=False),
    Column("policy_hash", String(64), nullable=False),
    Column("cutoff_us", BigInteger, nullable=False),
    Column("watermark", BigInteger, nullable=False),  # last ledger seq applied (build, then purges)
    Column("built_us", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),  # rows now
    Column("rows_built", BigInteger, nullable=False),
    Column("digest", String(80), nullable=False),  # content digest now
    Column("table_version", BigInteger, nullable=False),  # Delta version now
    Column("manifest", Text, nullable=False),  # JSON, as also written beside the table
)

snapshot_purges = Table(
    "snapshot_purges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("snapshot", String(128), nullable=False),
    Column("started_us", BigInteger, nullable=False),
    Column("finished_us", BigInteger, nullable=False),
    Column("from_watermark", BigInteger, nullable=False),
    Column("to_watermark", BigInteger, nullable=False),
    Column("people", BigInteger, nullable=False),
    Column("rows_removed", BigInteger, nullable=False),
    Column("files_removed", BigInteger, nullable=False),
    Column("table_version", BigInteger, nullable=False),
    Column("counts", Text, nullable=False),  # JSON: rows removed per cause
    Index("ix_snapshot_purges_snapshot", "snapshot", "finished_us"),
)

# One row per person whose rows left a snapshot: what `impact` and "my data" show.
purged_people = Table(
    "purged_people",
    metadata,
    Column("snapshot", String(128), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("purge_id", Integer, nullable=False),
    Column("cause", String(32), nullable=False),  # objected | erasure_requested | consent_withdrawn | account_deleted | ...
    Column("trigger_seq", BigInteger, nullable=True),  # the ledger event that caused it
    Column("rows", BigInteger, nullable=False),
    Column("purged_us", BigInteger, nullable=False),
    Index("ix_purged_people_user", "user_id"),
)

models = Table(
    "models",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("snapshot", String(128), nullable=False),
    Column("table_version", BigInteger, nullable=False),  # the snapshot version it was trained on
    Column("digest", String(80), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("registered_us", BigInteger, nullable=False),
    Column("mlflow_run", String(128), nullable=True),
    Column("actor", String(256), nullable=True),
)
