"""The Spark backend: the same compiled SQL text, run by Spark SQL on a local
session or a cluster (`spark://`, `yarn`, `k8s://`).

Spark reads the export itself (Parquet files or folders of parts, JSONL, CSV),
so the data never passes through this process; the ledger's events up to the
watermark are handed over as a Parquet extract. The session time zone is
forced to UTC and checked: the rules compare instants, and under another zone
Spark would read `TIMESTAMP '...'` literals and zone-less strings as local time
and decide differently without a word.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from ..errors import InputError
from ..ledger import Ledger
from ..policy import Policy
from ..sources import Export
from ..sources.export import TIMESTAMP_RE
from ..sources.schema import TABLES, Column
from .compile import Compiler

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["UTC_CONF", "check_utc", "decided", "load_inputs", "materialised", "session"]

#: Forced on every session, whatever the caller passes: the SQL session zone
#: and the JVMs' default zone (which some Parquet and CSV readers consult).
UTC_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}
_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.shuffle.partitions": "8",
}


def session(master: str = "local[*]", conf: dict[str, str] | None = None, app_name: str = "consentry") -> SparkSession:
    """A Spark session on `master` with `conf` passed through, in UTC."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - pyspark is a declared dependency of the spark extra
        raise InputError("the Spark engine needs pyspark", fix="pip install 'consentry[spark]'") from None
    for key, value in (conf or {}).items():
        if key in UTC_CONF and value != UTC_CONF[key]:
            raise InputError(f"--conf {key}={value} would change the time zone the rules are decided in",
                             fix=f"leave {key} out: consentry sets it to {UTC_CONF[key]}")
    if master.startswith("local"):  # bind to loopback: nothing outside this machine needs to reach it
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers (the snapshot's text transforms) run consentry: this
    # interpreter unless the caller says otherwise (spark.pyspark.python, or
    # PYSPARK_PYTHON naming a Python with consentry on the cluster's nodes).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {**_DEFAULTS, **(conf or {}), **UTC_CONF}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.sparkContext.setLogLevel("ERROR")
    check_utc(spark)
    return spark


def check_utc(spark: SparkSession) -> None:
    """Refuse a session that does not read timestamps as UTC."""
    zone = spark.conf.get("spark.sql.session.timeZone")
    epoch = spark.sql("SELECT unix_timestamp(TIMESTAMP '2024-06-26 00:00:00') AS s").collect()[0]["s"]
    if epoch != 1719360000:
        raise InputError(f"the Spark session reads time in {zone}, not UTC", fix="run with spark.sql.session.timeZone=UTC")


def _typed(col: Column, raw: bool) -> str:
    """Spark SQL for a column in its contract type, as `Export.typed_expr` does it for DuckDB."""
    src = f"`{col.name}`"
    if col.kind == "timestamp":
        if not raw:
            return f"CAST({src} AS TIMESTAMP)"
        pattern = TIMESTAMP_RE.replace("\\", "\\\\")
        return f"CASE WHEN trim({src}) RLIKE '{pattern}' THEN try_cast(trim({src}) AS TIMESTAMP) END"
    if col.kind == "date":
        if not raw:
            return f"CAST({src} AS DATE)"
        return f"CASE WHEN trim({src}) RLIKE '^\\\\d{{4}}-\\\\d{{2}}-\\\\d{{2}}$' THEN try_cast(trim({src}) AS DATE) END"
    if col.kind == "country":
        return f"NULLIF(upper(trim({src})), '')"
    return f"CAST({src} AS STRING)"


def _read(spark: SparkSession, export: Export, name: str) -> DataFrame:
    tf = export.files[name]
    path = str(tf.path)
    if tf.format == "parquet":
        return spark.read.parquet(path)
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(c, StringType()) for c in tf.columns])
    if tf.format == "csv":
        return spark.read.csv(path, header=True, schema=schema, multiLine=True, escape='"')
    return spark.read.schema(schema).json(path)


def register_export(spark: SparkSession, export: Export) -> None:
    """Temp views users, content and tags in the contract's types, read by Spark."""
    for table in TABLES:
        if table.name not in export.files:
            cols = ", ".join(
                f"CAST(NULL AS {'TIMESTAMP' if c.kind == 'timestamp' else 'DATE' if c.kind == 'date' else 'STRING'}) "
                f"AS `{c.name}`" for c in table.columns)
            spark.sql(f"SELECT {cols} WHERE false").createOrReplaceTempView(table.name)
            continue
        tf = export.files[name := table.name]
        df = _read(spark, export, name)
        raw = tf.format != "parquet"
        cols = ", ".join(
            (f"{_typed(c, raw)} AS `{c.name}`" if c.name in tf.columns else
             f"CAST(NULL AS {'TIMESTAMP' if c.kind == 'timestamp' else 'DATE' if c.kind == 'date' else 'STRING'}) AS `{c.name}`")
            for c in table.columns)
        df.createOrReplaceTempView(f"{name}_raw")
        spark.sql(f"SELECT {cols} FROM {name}_raw").createOrReplaceTempView(name)


def load_inputs(spark: SparkSession, export: Export, ledger: Ledger, at: datetime, scratch: Path,
                watermark: int | None = None) -> int:
    """Views users/content/tags and `ledger_events` (events visible at `at` up to
    a watermark read first, written as a Parquet extract in `scratch`)."""
    register_export(spark, export)
    wm = ledger.watermark() if watermark is None else watermark
    events = ledger.events_arrow(upto=at, upto_seq=wm)
    extract = scratch / f"ledger-{wm}.parquet"
    pq.write_table(events, extract)
    spark.read.parquet(str(extract)).createOrReplaceTempView("ledger_events_raw")
    spark.sql("SELECT seq, user_id, item_id, type, CAST(event_at AS TIMESTAMP) AS event_at FROM ledger_events_raw") \
        .createOrReplaceTempView("ledger_events")
    return wm


def scratch_dir() -> Path:
    """A folder the driver and (on one machine) the executors can read."""
    base = Path(os.environ.get("CONSENTRY_SPARK_SCRATCH", tempfile.gettempdir()))
    return Path(tempfile.mkdtemp(prefix="consentry-spark-", dir=base))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def decided(spark: SparkSession, policy: Policy, at: datetime) -> Iterator[DataFrame]:
    """The decisions over the views `load_inputs` made, as a DataFrame. The
    people step is computed once and cached while the caller reads: Spark
    would otherwise recompute it (and its ledger windows) for each reader."""
    comp = Compiler(policy, at)
    people = materialised(spark.sql(comp.people_sql()))
    people.createOrReplaceTempView("people_once")
    try:
        yield spark.sql(comp.decisions_sql(people="people_once"))
    finally:
        people.unpersist()


def materialised(df: DataFrame) -> DataFrame:
    """`df` computed now and kept on the executors, its plan cut off: readers
    scan it instead of recomputing it. (`persist()` alone is not matched
    through a WITH query in Spark's cache, so the plan would run again.)"""
    return df.localCheckpoint(eager=True)
