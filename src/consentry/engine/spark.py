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
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from .. import config
from ..errors import InputError
from ..ledger import Ledger
from ..policy import Policy
from ..sources import Export
from ..sources.export import TIMESTAMP_RE, TableFile, in_nanos
from ..sources.schema import TABLES, Column
from ..sources.store import StorePath
from ..sqltext import spark_quote
from ..timeutil import to_micros
from .compile import Compiler

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "UTC_CONF",
    "as_text",
    "check_utc",
    "decided",
    "jdbc_jar",
    "ledger_source",
    "load_inputs",
    "materialised",
    "read_table",
    "register_export",
    "session",
    "typed_column",
    "typed_sql",
    "utc_conf",
]

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


#: Spark cuts a file into splits of up to 128 MB, or of the input's size over
#: the cores when that is smaller. On a few cores that leaves as many splits
#: as cores, or one more: 20M items (321 MB) made 3 tasks on 2 cores, one of
#: which ran alone at the end. Asking for a few splits per core keeps every
#: core busy to the end; on a cluster whose input is large the 128 MB cap
#: decides, as before. A caller's own setting wins.
SPLITS_CONF = "spark.sql.files.minPartitionNum"
SPLITS_PER_CORE = 4

_JVM_ZONE = re.compile(r"-Duser\.timezone=(\S*)")


def utc_conf(conf: dict[str, str]) -> dict[str, str]:
    """`UTC_CONF` merged with the caller's settings: the JVMs' own options
    (`--conf spark.driver.extraJavaOptions=-XX:...`) are kept, with the zone
    added; a setting that would put a zone other than UTC is refused."""
    forced = dict(UTC_CONF)
    for key, value in conf.items():
        if key not in UTC_CONF or value == UTC_CONF[key]:
            continue
        java = key.endswith(".extraJavaOptions")
        if not java or any(zone != "UTC" for zone in _JVM_ZONE.findall(value)):
            keep = f": leave -Duser.timezone out of {key}" if java else f": leave {key} out"
            raise InputError(f"--conf {key}={value} would change the time zone the rules are decided in",
                             fix=f"consentry sets {UTC_CONF[key]}{keep}")
        forced[key] = f"{value} {UTC_CONF[key]}"
    return forced


MASTER_FIX = ("start it (`spark-class org.apache.spark.deploy.master.Master`), or pass the URL its web UI shows "
              "(spark://HOST:7077) as --spark-master")


_MASTER = re.compile(r"local(?:\[(?:\*|[0-9]+)(?:,[0-9]+)?\])?|local-cluster\[.+\]|yarn|(?:spark|k8s)://.+")


def check_master(master: str, timeout: float = 5.0) -> None:
    """Refuse a master Spark cannot use, and a standalone master
    (spark://HOST:PORT[,HOST:PORT...]) that nothing answers at. Spark itself
    dies with a Java stack trace on the first, and on the second retries for a
    minute, logs a hundred lines and ends in "An error occurred while calling
    None...SparkSession"."""
    import socket

    if not _MASTER.fullmatch(master):
        raise InputError(f"--spark-master {master} is not a Spark master",
                         fix="use local[*], local[N], spark://HOST:PORT, yarn or k8s://https://HOST:PORT")
    if not master.startswith("spark://"):
        return
    hosts = master.removeprefix("spark://").split(",")
    why = []
    for hp in hosts:
        host, _, port = hp.rpartition(":")
        if not host or not port.isdigit():
            raise InputError(f"--spark-master {master}: '{hp}' is not HOST:PORT", fix="e.g. spark://127.0.0.1:7077")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
            return
        except OSError as exc:
            why.append(f"{hp}: {(exc.strerror or str(exc) or type(exc).__name__).lower()}")
    raise InputError(f"no Spark master answers at {master} ({'; '.join(why)})", fix=MASTER_FIX)


def session(master: str = "local[*]", conf: dict[str, str] | None = None, app_name: str = "consentry") -> SparkSession:
    """A Spark session on `master` with `conf` passed through, in UTC."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - pyspark is a declared dependency of the spark extra
        raise InputError("the Spark engine needs pyspark", fix="pip install 'consentry[spark]'") from None
    check_master(master)
    # pyspark warns, on its first lazy import of pyspark.testing, that it "does
    # not yet fully support pandas >= 3.0.0". consentry's Spark path uses no
    # pandas API (Arrow: mapInArrow, createDataFrame from an Arrow schema), and
    # its Spark tests run with pandas 3: the warning is not about us, so a user
    # is not told that the supported install may not work.
    import warnings

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    forced = utc_conf(conf or {})
    if master.startswith("local"):  # bind to loopback: nothing outside this machine needs to reach it
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers (the snapshot's text transforms) run consentry: this
    # interpreter unless the caller says otherwise (spark.pyspark.python, or
    # PYSPARK_PYTHON naming a Python with consentry on the cluster's nodes).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    conf = dict(conf or {})
    if (jar := jdbc_jar()) is not None:  # the ledger is read over JDBC when it is PostgreSQL
        conf["spark.jars"] = ",".join(x for x in (conf.get("spark.jars"), jar) if x)
    for key, value in {**_DEFAULTS, **conf, **forced}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    if SPLITS_CONF not in conf:
        spark.conf.set(SPLITS_CONF, str(SPLITS_PER_CORE * spark.sparkContext.defaultParallelism))
    spark.sparkContext.setLogLevel("ERROR")
    check_utc(spark)
    return spark


def check_utc(spark: SparkSession) -> None:
    """Refuse a session that does not read timestamps as UTC."""
    zone = spark.conf.get("spark.sql.session.timeZone")
    epoch = spark.sql("SELECT unix_timestamp(TIMESTAMP '2024-06-26 00:00:00') AS s").collect()[0]["s"]
    if epoch != 1719360000:
        raise InputError(f"the Spark session reads time in {zone}, not UTC", fix="run with spark.sql.session.timeZone=UTC")


def typed_sql(col: Column, raw: bool, nanos: bool = False) -> str:
    """Spark SQL for a column in its contract type, as `Export.typed_expr` does it for DuckDB.
    (`nanos`: a Parquet TIMESTAMP(NANOS), which Spark reads as nanoseconds since 1970.)"""
    src = f"`{col.name}`"
    if col.kind == "timestamp":
        if nanos:  # whole microseconds once validated (a finer time is refused)
            return f"timestamp_micros(({src} - pmod({src}, 1000)) div 1000)"
        if not raw:
            return f"CAST({src} AS TIMESTAMP)"
        return _timestamp_text(f"trim({src})")
    if col.kind == "date":
        if not raw:
            return f"CAST({src} AS DATE)"
        return f"CASE WHEN trim({src}) RLIKE '^\\\\d{{4}}-\\\\d{{2}}-\\\\d{{2}}$' THEN try_cast(trim({src}) AS DATE) END"
    if col.kind == "country":
        return f"NULLIF(upper(trim({src})), '')"
    return f"CAST({src} AS STRING)"


def _timestamp_text(t: str) -> str:
    """Spark SQL for an ISO 8601 text `t` of any shape `TIMESTAMP_RE` accepts,
    as the UTC instant DuckDB makes of it. Spark's own cast leaves out some of
    them ("2024-06-26T01:00Z", offsets written +0530): the text is rewritten
    first into the one shape Spark reads, "yyyy-mm-dd hh:mm:ss.ffffff+hh:mm",
    the fraction cut (not rounded) to microseconds as DuckDB does."""
    q = spark_quote
    z = f"regexp_extract({t}, {q(r'^.{16}(?::[0-9]{2}(?:[.][0-9]{1,9})?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)$')}, 1)"
    text = (
        f"concat(substr({t}, 1, 10), ' ', CASE WHEN length({t}) = 10 THEN '00:00' ELSE substr({t}, 12, 5) END, ':', "
        f"coalesce(nullif(regexp_extract({t}, {q(r'^.{16}:([0-9]{2})')}, 1), ''), '00'), '.', "
        f"rpad(regexp_extract({t}, {q(r'^.{19}[.]([0-9]{1,9})')}, 1), 6, '0'), "
        f"CASE WHEN {z} IN ('', 'Z') THEN '+00:00' "
        f"ELSE concat(substr({z}, 1, 3), ':', CASE WHEN length({z}) = 3 THEN '00' ELSE substr({z}, -2, 2) END) END)"
    )
    return f"CASE WHEN {t} RLIKE {q(TIMESTAMP_RE)} THEN try_cast({text} AS TIMESTAMP) END"


def as_text(tf: TableFile, column: str) -> bool:
    """Whether a column is read as text and parsed (CSV, JSONL, a Parquet string
    column), as `Export.typed_expr` decides it for DuckDB."""
    return tf.format != "parquet" or tf.columns[column].upper().startswith("VARCHAR")


def typed_column(tf: TableFile, col: Column) -> str:
    """`typed_sql` for a column of the table file, read as Spark reads it."""
    return typed_sql(col, as_text(tf, col.name), in_nanos(tf.columns[col.name]))


def _line_end(path: Path) -> str:
    """The record separator a CSV file uses, read from its header line. Told it,
    Spark keeps a line break inside a quoted field as written ("\\r\\n" stays
    "\\r\\n", as DuckDB reads it); left to guess, it makes it "\\n"."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    end = head.find(b"\n")
    if end < 0:
        return "\r" if b"\r" in head else "\n"
    return "\r\n" if end > 0 and head[end - 1:end] == b"\r" else "\n"


def read_table(spark: SparkSession, export: Export, name: str) -> DataFrame:
    """A table file of the export as Spark reads it: Parquet as typed, CSV and
    JSONL as text columns. A malformed record fails the read (FAILFAST), as
    it fails DuckDB's: it is never turned into a row of NULLs."""
    tf = export.files[name]
    if tf.part_types:  # parts that store a column in different types: each read by its own, as DuckDB does
        from .spark_files import read_parts

        return read_parts(spark, tf)
    if isinstance(tf.path, StorePath):  # no Hadoop connector: the executors read it with pyarrow
        from .spark_files import read_remote

        return read_remote(spark, tf)
    path = str(tf.path)
    if tf.format == "parquet":
        from .spark_files import read_parquet

        return read_parquet(spark, [path])
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(c, StringType()) for c in tf.columns])
    if tf.format == "csv":
        # The delimiter, quote and escape DuckDB's sniffer found (a semicolon file, a tab file).
        sep, quote, escape = tf.csv_dialect or (",", '"', '"')
        return spark.read.csv(path, header=True, schema=schema, multiLine=True, sep=sep, quote=quote,
                              escape=escape or quote or '"', mode="FAILFAST", lineSep=_line_end(tf.path))
    return spark.read.schema(schema).option("mode", "FAILFAST").json(path)


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
        df = read_table(spark, export, name)
        cols = ", ".join(
            (f"{typed_column(tf, c)} AS `{c.name}`" if c.name in tf.columns else
             f"CAST(NULL AS {'TIMESTAMP' if c.kind == 'timestamp' else 'DATE' if c.kind == 'date' else 'STRING'}) AS `{c.name}`")
            for c in table.columns)
        df.createOrReplaceTempView(f"{name}_raw")
        spark.sql(f"SELECT {cols} FROM {name}_raw").createOrReplaceTempView(name)


def jdbc_jar() -> str | None:
    """PostgreSQL's JDBC driver: Debian's libpostgresql-jdbc-java, or the jar
    `CONSENTRY_POSTGRES_JDBC_JAR` names. (No Maven download.)"""
    path = config.postgres_jdbc_jar()
    return path if path and Path(path).is_file() else None


def ledger_source(spark: SparkSession, ledger: Ledger) -> str:
    """How Spark reads this ledger: `jdbc` (a PostgreSQL ledger, its driver
    on the session's class path) or `extract` (a Parquet file consentry writes)."""
    jar = jdbc_jar()
    jars = spark.conf.get("spark.jars", "") or ""
    return "jdbc" if ledger.engine.dialect.name == "postgresql" and jar and jar in jars.split(",") else "extract"


def _jdbc_events(spark: SparkSession, ledger: Ledger, at: datetime, wm: int) -> DataFrame:
    """The events up to the watermark, read by the executors over JDBC in
    ranges of seq; pinned by `seq <= watermark`, so every read sees the same rows."""
    url = ledger.engine.url
    query = (f"SELECT seq, user_id, item_id, type, at_us FROM ledger_events "
             f"WHERE seq <= {int(wm)} AND at_us <= {int(to_micros(at))}")
    return (spark.read.format("jdbc")
            .option("url", f"jdbc:postgresql://{url.host or 'localhost'}:{url.port or 5432}/{url.database}")
            .option("driver", "org.postgresql.Driver")
            .option("dbtable", f"({query}) AS e")
            .option("user", url.username or "")
            .option("password", url.password or "")  # Spark redacts it in its logs and UI
            .option("partitionColumn", "seq").option("lowerBound", "1").option("upperBound", str(max(int(wm), 1)))
            .option("numPartitions", str(max(1, min(64, int(wm) // 1_000_000 + 1))))
            .load()
            .selectExpr("seq", "user_id", "item_id", "type", "timestamp_micros(at_us) AS event_at"))


def load_inputs(spark: SparkSession, export: Export, ledger: Ledger, at: datetime, scratch: Path,
                watermark: int | None = None) -> int:
    """Views users/content/tags and `ledger_events`: the events visible at `at`
    up to a watermark read first, read over JDBC from a PostgreSQL ledger, or
    else from a Parquet extract in `scratch`: the ledger's kept extract when it
    keeps one (`Ledger(extract_dir=...)`, as the CLI's does), else one written
    now. Read once and kept."""
    register_export(spark, export)
    wm = ledger.pinned(watermark)
    if ledger_source(spark, ledger) == "jdbc":
        events = _jdbc_events(spark, ledger, at, wm)
    else:
        extract = scratch / f"ledger-{wm}.parquet"
        kept = ledger.events_parquet(wm)
        if kept is not None:  # the events the ledger keeps per watermark, cut at it and at `at` by Spark
            _place(kept, extract)
        else:
            pq.write_table(ledger.events_arrow(upto=at, upto_seq=wm), extract)
        events = spark.read.parquet(str(extract)).selectExpr(
            "seq", "user_id", "item_id", "type", "CAST(event_at AS TIMESTAMP) AS event_at")
        if kept is not None:
            events = events.where(f"seq <= {int(wm)} AND unix_micros(event_at) <= {int(to_micros(at))}")
    materialised(events).createOrReplaceTempView("ledger_events")
    return wm


def _place(kept: Path, dest: Path) -> None:
    """The kept extract at `dest` in the scratch folder (the folder the
    executors read): a hard link, else (another file system) a copy. A later
    extension replaces the kept file with another; the link keeps this one."""
    try:
        os.link(kept, dest)
    except OSError:
        shutil.copyfile(kept, dest)


def scratch_dir() -> Path:
    """A folder the driver and (on one machine) the executors can read."""
    base = Path(config.spark_scratch() or tempfile.gettempdir())
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
        yield spark.sql(comp.decisions_sql(people="people_once", broadcast=small_enough(spark, people)))
    finally:
        people.unpersist()


#: A Spark setting (pass it with --conf): the most bytes of people and tagged
#: items sent whole to every task instead of shuffling the items. By default an
#: eighth of the driver's memory (the driver builds what it broadcasts).
BROADCAST_CONF = "spark.consentry.broadcastBytes"
_BYTES_PER_ROW = 96  # a person's id, reasons and coming-of-age date; a tagged item's id and two flags, with overhead
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _bytes(size: str) -> int:
    """A JVM size as Spark writes it ("4g", "512m", "1024k") in bytes."""
    number = size.strip().lower().rstrip("b") or "0"
    unit = number[-1] if number[-1] in _UNITS else ""
    return int(float(number[: len(number) - len(unit)]) * _UNITS[unit])


def broadcast_budget(spark: SparkSession) -> int:
    explicit = spark.conf.get(BROADCAST_CONF, None)
    if explicit:
        try:
            return _bytes(explicit)
        except (ValueError, IndexError):
            raise InputError(f"{BROADCAST_CONF}={explicit} is not a size", where="--conf",
                             fix=f"write it as bytes or with a unit: --conf {BROADCAST_CONF}=512m") from None
    return _bytes(spark.sparkContext.getConf().get("spark.driver.memory", "1g")) // 8


def small_enough(spark: SparkSession, people: DataFrame) -> bool:
    """Whether the people (kept) and the tagged items (at most one per tag row)
    fit the broadcast budget: then the decision query joins the items where
    they are read, with no shuffle of the items at all. At a platform's scale
    they do not, and Spark shuffles as before."""
    rows = people.count() + spark.table("tags").count()
    return rows * _BYTES_PER_ROW <= broadcast_budget(spark)


def write_counting(decisions: DataFrame, path: Path, *, blur: bool = False) -> tuple[dict[str, int], int | None]:
    """Write the decisions as Parquet parts into `path`, then count them by
    reason from what was written, with DuckDB on the driver (the parts are in
    a folder it reads: it renames them into place). Counting while writing
    was slower (an observation's 17 conditional counts run row by row outside
    Spark's generated code: 8-15 s for 20M items on local[2]), and so was a
    Spark job reading the reasons back (0.9-1.4 s against 0.1-0.2 s here); on
    a cluster that job's latency is time no worker can share."""
    from .duck import connect, counted

    decisions.write.mode("overwrite").parquet(str(path), compression="zstd")
    with connect() as con:
        return counted(con, sorted(str(p) for p in path.glob("*.parquet")), blur=blur)


def materialised(df: DataFrame) -> DataFrame:
    """`df` computed now and kept on the executors, its plan cut off: readers
    scan it instead of recomputing it. (`persist()` alone is not matched
    through a WITH query in Spark's cache, so the plan would run again.)"""
    return df.localCheckpoint(eager=True)
