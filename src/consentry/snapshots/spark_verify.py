"""`snapshot verify` with Spark reading: the decisions at the cut-off, who
fails now and the snapshot's rows are Spark's; the checks are verify.py's SQL
texts, the text checks (mentions, personal data left) run on the executors as
the very DuckDB SQL of a local verify. Only problems and image paths come back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import partial

import pyarrow as pa

from ..engine.backend import SparkBackend
from ..engine.spark import decided
from ..ledger import Ledger
from ..policy import Policy
from ..sources import Export
from .checks import checks_sql, text_checks, unmentionable_sql
from .manifest import Manifest
from .registry import SnapshotRecord
from .spark_build import handles, now_failing, partition_duckdb
from .spark_purge import snapshot_df

__all__ = ["verify_rows_spark"]

_PROBLEM = pa.schema([("item_id", pa.string()), ("user_id", pa.string()), ("why", pa.string())])


def _text_partition(batches: Iterator[pa.RecordBatch], *, m: Manifest, all_handles: pa.Table,
                    unmentionable: pa.Table) -> Iterator[pa.RecordBatch]:
    """On an executor: verify.py's text checks over one partition of rows."""
    with partition_duckdb(batches, all_handles=all_handles, unmentionable=unmentionable) as con:
        if con is None:
            return
        found = [con.sql(q).to_arrow_table() for q in text_checks(con, "part_rows", m)]
    for t in found:
        yield from t.rename_columns(_PROBLEM.names).cast(_PROBLEM).to_batches()


def verify_rows_spark(spark, export: Export, ledger: Ledger, rec: SnapshotRecord, policy: Policy,  # noqa: ANN001
                      now: datetime, watermark: int) -> tuple[int, list[tuple], list[tuple]]:
    """verify.py's `_verify_rows` on Spark: (rows, problems, images)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    m = rec.manifest
    b = SparkBackend(spark)
    kept: list = []
    try:
        b.load(export, ledger, max(now, m.cutoff), watermark)
        kept += now_failing(spark, policy, m.cutoff, now)
        snapshot_df(spark, rec).createOrReplaceTempView("snap")
        with decided(spark, policy, m.cutoff) as d:
            d.createOrReplaceTempView("decided")
            rows = [tuple(r) for q in checks_sql(policy, m, now, explode="explode") for r in spark.sql(q).collect()]
            bad_ids = b.arrow(unmentionable_sql(policy, m))
        all_handles, unmentionable = handles(b.arrow("SELECT user_id, handle FROM users"), bad_ids)
        unmentionable = unmentionable.rename_columns(["h"])
        texts = spark.sql("SELECT s.item_id, s.user_id, s.text, u.country FROM snap s "
                          "LEFT JOIN users u ON u.user_id = s.user_id WHERE s.text IS NOT NULL")
        fn = partial(_text_partition, m=m, all_handles=all_handles, unmentionable=unmentionable)
        found = texts.mapInArrow(fn, from_arrow_schema(_PROBLEM)).toArrow()
        rows += list(zip(*(found.column(c).to_pylist() for c in _PROBLEM.names)))
        total = spark.sql("SELECT count(*) AS n FROM snap").collect()[0]["n"]
        media = [tuple(r) for r in spark.sql("SELECT item_id, user_id, media FROM snap WHERE media IS NOT NULL").collect()]
    finally:
        for df in kept:
            df.unpersist()
        b.close()
    return int(total), rows, media
