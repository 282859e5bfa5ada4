"""A purge with Spark doing the reading and writing: who must leave is decided
on Spark over the export and the ledger, the touched buckets are rewritten by
Spark's executors into the table folder, and delta-rs commits the swap from
the driver. The bookkeeping (counts, intent, vacuum, the record) is purge.py's.

What Spark finds comes back to the driver as small tables: the rows that
leave (verify's `checks.leaving_sql`, over the whole export or, when the
export is the one checked whole before, the people with new events), the
rows whose @mentions must be hidden or whose `tagged` names an erased
person, the event that set each person's purge off. The rewritten rows are the DuckDB purge's, byte for byte:
the mention rewrite runs on the executors as the very SQL of `mentions.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path

import duckdb
import pyarrow as pa

from ..engine.backend import SparkBackend
from ..engine.spark import decided
from ..ledger import Ledger
from ..policy import Policy
from ..sources import Export
from .checks import OTHER_AUTHOR_SQL, drop_tagged_sql, hits_sql, unmentionable_sql, untag_sql
from .mentions import hide_sql, mentioned_sql
from .recovery import failpoint
from .registry import SnapshotRecord
from .shared import SCHEMA, triggers_sql
from .spark_build import add_actions, handles, now_failing, partition_duckdb, tidy

__all__ = ["SparkFind", "snapshot_df"]

_FOUND = pa.schema([("item_id", pa.string()), ("bucket", pa.int32()), ("h", pa.string())])


def _mentions_partition(batches: Iterator[pa.RecordBatch], *, all_handles: pa.Table,
                        bad_handles: pa.Table) -> Iterator[pa.RecordBatch]:
    """On an executor: the (item, bucket, handle) of each mention of a handle that may no longer be used."""
    with partition_duckdb(batches, all_handles=all_handles, bad_handles=bad_handles) as con:
        if con is None:
            return
        out = con.sql(f"""SELECT m.k AS item_id, CAST(s.bucket AS INTEGER) AS bucket, m.h
            FROM ({mentioned_sql('part_rows', 'item_id', 'text', 'all_handles')}) m JOIN part_rows s ON s.item_id = m.k
            WHERE m.h IN (SELECT h FROM bad_handles)""").to_arrow_table()
    yield from out.cast(_FOUND).to_batches()


def _hide_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """On an executor: the kept rows of a bucket, their @mentions hidden and
    erased people taken out of `tagged` as purge.py does it."""
    with partition_duckdb(batches) as con:
        if con is None:
            return
        rewritten = {"text": f"{hide_sql('s.bad', 's.text')} AS text",
                     "tagged": f"{drop_tagged_sql('s.gone', 's.tagged')} AS tagged"}
        cols = ", ".join(rewritten.get(f.name, f"s.{f.name}") for f in SCHEMA)
        out = con.sql(f"SELECT {cols} FROM part_rows s").to_arrow_table()
    yield from out.cast(SCHEMA).to_batches()


def snapshot_df(spark, rec: SnapshotRecord, buckets: list[int] | None = None):  # noqa: ANN001, ANN201 - a DataFrame
    """The snapshot's current rows (of `buckets` only, if given), read by Spark
    from the files of the table's current version."""
    from deltalake import DeltaTable
    from pyspark.sql.pandas.types import from_arrow_schema

    dt = DeltaTable(rec.uri)
    files = dt.file_uris() if buckets is None else dt.file_uris(
        file_pruning_predicate=[("bucket", "in", [str(b) for b in buckets])])
    if not files:
        return spark.createDataFrame([], from_arrow_schema(SCHEMA))
    return spark.read.option("basePath", rec.uri).parquet(*files)


class SparkFind:
    """The Spark half of a purge: `into` hands the driver's DuckDB what leaves,
    `rewrite` writes the touched buckets back without it."""

    def __init__(self, spark, export: Export, ledger: Ledger, rec: SnapshotRecord, policy: Policy,  # noqa: ANN001
                 now: datetime, new_wm: int, full: bool = True) -> None:
        self.spark, self.rec, self.policy = spark, rec, policy
        self.table = Path(rec.uri)
        self.b = SparkBackend(spark)
        self.kept: list = []
        m = rec.manifest
        self.m = m
        self.b.load(export, ledger, max(now, m.cutoff), new_wm)
        spark.table("users").createOrReplaceTempView("users_all")
        if not full:
            # As the DuckDB purge: everyone with an event after the watermark, with
            # their whole history (and every third-party event), and deleted accounts.
            spark.table("ledger_events").createOrReplaceTempView("ledger_events_all")
            spark.sql(f"""SELECT * FROM ledger_events_all WHERE item_id IS NOT NULL
                OR user_id IN (SELECT user_id FROM ledger_events_all WHERE seq > {int(m.watermark)})""").createOrReplaceTempView(
                "ledger_events")
            spark.sql("""SELECT * FROM users_all WHERE user_id IN (SELECT user_id FROM ledger_events)
                OR deleted_at IS NOT NULL""").createOrReplaceTempView("users")
        self.kept += now_failing(spark, policy, m.cutoff, now)
        snapshot_df(spark, rec).createOrReplaceTempView("snap")
        with decided(spark, policy, m.cutoff) as d:
            d.createOrReplaceTempView("decided")
            self.hits = self.b.arrow(hits_sql(policy, now, explode="explode"))
        self.untag = self.b.arrow(untag_sql(policy, "users_all", "explode"))
        self.triggers = self.b.arrow(triggers_sql(m.watermark))
        self.other_author = int(self.b.arrow(OTHER_AUTHOR_SQL).column(0)[0].as_py()) if full else 0
        self.found = self._mentions() if policy.transforms.mentions else _FOUND.empty_table()

    def _mentions(self) -> pa.Table:
        from pyspark.sql.pandas.types import from_arrow_schema

        users = self.b.arrow("SELECT user_id, handle FROM users_all")
        bad_ids = self.b.arrow(unmentionable_sql(self.policy, self.m))  # verify's list: failing at the cut-off or now
        all_handles, bad_handles = handles(users, bad_ids)
        if bad_handles.num_rows == 0:
            return _FOUND.empty_table()
        fn = partial(_mentions_partition, all_handles=all_handles, bad_handles=bad_handles)
        df = self.spark.sql("SELECT item_id, bucket, text FROM snap WHERE text LIKE '%@%' OR text LIKE '%＠%' OR text LIKE '%﹫%'")
        return df.mapInArrow(fn, from_arrow_schema(_FOUND)).toArrow()

    def into(self, con: duckdb.DuckDBPyConnection) -> None:
        """Temp tables `hits`, `untag`, `remention` and `triggers` in the driver's DuckDB, as `purge._find_duckdb` makes them."""
        for name, data in (("hits_arrow", self.hits), ("found_arrow", self.found), ("triggers_arrow", self.triggers),
                           ("untag_arrow", self.untag)):
            con.register(name, data)
        con.execute("""CREATE TEMP TABLE hits AS SELECT item_id, CAST(bucket AS INTEGER) AS bucket, media,
            person, cause, CAST(rank AS INTEGER) AS rank FROM hits_arrow""")
        con.execute("""CREATE TEMP TABLE untag AS SELECT item_id, user_id, CAST(bucket AS INTEGER) AS bucket, u
            FROM untag_arrow""")
        con.execute("""CREATE TEMP TABLE remention AS SELECT item_id, any_value(bucket) AS bucket, list(DISTINCT h) AS bad
            FROM found_arrow GROUP BY item_id""")
        con.execute("CREATE TEMP TABLE triggers AS SELECT user_id, item_id, reason, CAST(seq AS BIGINT) AS seq FROM triggers_arrow")

    def rewrite(self, con: duckdb.DuckDBPyConnection, dt, buckets: list[int], commit: dict) -> None:  # noqa: ANN001
        """Spark writes the touched buckets without the rows that leave, next to
        the old files; delta-rs swaps them in one commit (an overwrite of those
        buckets), so a reader sees the old table or the new one."""
        from deltalake import CommitProperties, Schema
        from pyspark.sql.pandas.types import from_arrow_schema

        self.b.table("purge_hits", con.sql("SELECT DISTINCT item_id FROM hits").to_arrow_table())
        self.b.table("purge_remention", con.sql("SELECT item_id, bad FROM remention").to_arrow_table())
        self.b.table("purge_retag", con.sql("SELECT item_id, gone FROM retag").to_arrow_table())
        snapshot_df(self.spark, self.rec, buckets).createOrReplaceTempView("touched")
        cols = ", ".join(f"s.{f.name}" for f in SCHEMA)
        rows = self.spark.sql(f"""SELECT {cols}, r.bad, g.gone FROM (
              SELECT * FROM touched t WHERE NOT EXISTS (SELECT 1 FROM purge_hits h WHERE h.item_id = t.item_id)) s
            LEFT JOIN purge_remention r ON r.item_id = s.item_id
            LEFT JOIN purge_retag g ON g.item_id = s.item_id""")
        out = rows.mapInArrow(_hide_partition, from_arrow_schema(SCHEMA))
        before = set(self.table.rglob("*.parquet"))
        self.spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        (out.repartition("bucket").write.option("compression", "zstd").partitionBy("bucket")
         .mode("append").parquet(str(self.table)))
        tidy(self.table)
        new = [p for p in self.table.rglob("*.parquet") if p not in before and "_delta_log" not in p.parts]
        failpoint("purge:written")  # new files in the table folder, in no version yet: recovery vacuums them
        dt.create_write_transaction(
            add_actions(self.table, new), mode="overwrite", schema=Schema.from_arrow(SCHEMA), partition_by=["bucket"],
            partition_filters=[("bucket", "in", [str(b) for b in buckets])],
            commit_properties=CommitProperties(custom_metadata=commit),
        )

    def close(self) -> None:
        for df in self.kept:
            df.unpersist()
        self.b.close()

