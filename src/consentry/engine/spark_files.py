"""Export tables in object stores, read by Spark's executors without Hadoop's
connectors; and folders of Parquet parts whose column types differ, read as
DuckDB reads them (`read_parts`), on disk or in a bucket.

Spark reads `s3://` through Hadoop's S3A, whose jars come only from Maven.
This is a Python data source instead: each task opens its file in the bucket
with pyarrow's file system (in pyarrow's wheel) and hands Arrow batches to
Spark. A Parquet file is split by row group; a CSV or JSONL file is one task,
parsed by the very DuckDB reader a local run uses, so a malformed record fails
the job as it fails DuckDB, and every value is the same text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition

from ..sources.export import NULL_TYPE, TableFile, in_nanos
from ..sources.store import StorePath

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["FIX", "NAME", "NANOS_CONF", "ExportFiles", "read_parquet", "read_parts", "read_remote", "read_remote_lines",
           "unreachable"]

NAME = "consentry_export"
#: Extra columns with each row's file and its position in it (for validation's row numbers).
FILE, POS = "__file", "__pos"


class _Part(InputPartition):
    def __init__(self, uri: str, row_group: int, offset: int, scan: str | None) -> None:
        self.uri, self.row_group, self.offset, self.scan = uri, row_group, offset, scan


class ExportFiles(DataSource):
    """`spark.read.format("consentry_export")`: options `files` (JSON list of
    URIs), `format` (parquet, csv, jsonl or lines), `scan` (the DuckDB scan of
    a text file) and `positions` ("true": add `__file` and `__pos`)."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def reader(self, schema: StructType) -> DataSourceReader:
        return _Reader(dict(self.options))


class _Reader(DataSourceReader):
    def __init__(self, options: dict[str, str]) -> None:
        self.files = json.loads(options["files"])
        self.format = options["format"]
        self.scan = options.get("scan")
        self.positions = options.get("positions") == "true"

    def partitions(self) -> list[_Part]:
        if self.format != "parquet":
            return [_Part(uri, -1, 0, self.scan) for uri in self.files]
        import pyarrow.parquet as pq

        parts = []
        for uri in self.files:
            p = StorePath(uri)
            with _reaching(uri), p.open_native() as fh:  # planned in a Python worker: it needs the bucket too
                meta = pq.ParquetFile(fh).metadata
            offset = 0
            for i in range(meta.num_row_groups):
                parts.append(_Part(uri, i, offset, None))
                offset += meta.row_group(i).num_rows
        return parts

    def read(self, partition: _Part) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        offset = partition.offset
        with _reaching(partition.uri):
            for batch in _batches(partition, self.format):
                if self.positions:
                    import numpy as np

                    n = batch.num_rows
                    batch = pa.RecordBatch.from_arrays(
                        [*batch.columns, pa.array([partition.uri] * n, pa.string()),
                         pa.array(np.arange(offset, offset + n, dtype=np.int64))],
                        names=[*batch.schema.names, FILE, POS])
                    offset += n
                yield batch


#: How a task that could not reach the bucket fails (`unreachable` finds it in Spark's error).
UNREACHABLE = "an executor could not read "
FIX = ("the executors read the bucket themselves: give them its address and credentials (an instance role, "
       "a service account, or --conf spark.executorEnv.AWS_ENDPOINT_URL=... and the like)")


@contextmanager
def _reaching(uri: str) -> Iterator[None]:
    """A failure to reach the object store says where (the driver could reach
    it, or the job would not have been planned); a bad file passes as it is."""
    import pyarrow as pa

    try:
        yield
    except (OSError, pa.ArrowException) as exc:
        if isinstance(exc, pa.ArrowInvalid):
            raise  # the file itself: DuckDB's or pyarrow's own message says what is wrong
        raise OSError(f"{UNREACHABLE}{uri}: {str(exc).splitlines()[0]}") from None


def unreachable(exc: BaseException) -> str | None:
    """The message of a task that could not reach the bucket, in a Spark error; else None."""
    found = re.search(f"{UNREACHABLE}[^\n]*", str(exc))
    return found.group(0) if found else None


def _batches(part: _Part, fmt: str) -> Iterator[pa.RecordBatch]:
    path = StorePath(part.uri)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with path.open_native() as fh:
            for batch in pq.ParquetFile(fh).read_row_group(part.row_group).to_batches():
                yield _nanos_as_long(batch)
        return
    if fmt == "lines":  # as Spark's text reader: \n, \r\n or \r end a line; bad UTF-8 becomes U+FFFD
        import pyarrow as pa
        import pyarrow.compute as pc

        with path.open("rb") as fh:
            text = fh.read().decode("utf-8", errors="replace")
        lines = pc.split_pattern_regex(pa.array([text]), r"\r\n|\r|\n")[0].values
        if len(lines) and text.endswith(("\n", "\r")):
            lines = lines.slice(0, len(lines) - 1)
        yield from pa.table({"value": lines}).to_batches()
        return
    import duckdb

    from ..sources.store import attach

    path.fs.fs.get_file_info(path.key)  # reach the store first: inside DuckDB its failure would lose its kind
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        attach(con, path)
        reader = con.sql(f"SELECT * FROM {part.scan}").to_arrow_reader()
        yield from reader
    finally:
        con.close()


def _is_nanos(t: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_timestamp(t) and t.unit == "ns"


def _nanos_as_long(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A nanosecond timestamp column as its nanoseconds since 1970, as Spark reads one on disk (`NANOS_CONF`)."""
    if not any(_is_nanos(f.type) for f in batch.schema):
        return batch
    import pyarrow as pa

    return pa.RecordBatch.from_arrays([c.cast(pa.int64()) if _is_nanos(c.type) else c for c in batch.columns],
                                      names=batch.schema.names)


def _schema(tf: TableFile, files: list[str]) -> StructType:
    """Spark's schema of the table as read: the Parquet file's own types (a nanosecond
    timestamp as a long, as on disk), or text columns."""
    from pyspark.sql.types import StringType, StructField, StructType

    if tf.format != "parquet":
        return StructType([StructField(c, StringType()) for c in tf.columns])
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import from_arrow_schema

    with StorePath(files[0]).open_native() as fh:
        schema = pq.ParquetFile(fh).schema_arrow
    schema = pa.schema([f.with_type(pa.int64()) if _is_nanos(f.type) else f for f in schema])
    return from_arrow_schema(schema, prefer_timestamp_ntz=True)


def read_remote(spark: SparkSession, tf: TableFile, positions: bool = False, files: list[str] | None = None) -> DataFrame:
    """The table file as Spark reads a local one: Parquet typed, CSV and JSONL as
    text; with `positions`, each row's file (`__file`) and place in it (`__pos`).
    (`files`: only these of its parts, all of one schema.)"""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    spark.dataSource.register(ExportFiles)
    files = files or [str(p) for p in tf.parts()]
    schema = _schema(tf, files)
    if positions:
        schema = StructType([*schema.fields, StructField(FILE, StringType()), StructField(POS, LongType())])
    reader = (spark.read.format(NAME).schema(schema).option("files", json.dumps(files)).option("format", tf.format)
              .option("positions", "true" if positions else "false"))
    if tf.format != "parquet":
        reader = reader.option("scan", tf.scan_sql())
    return reader.load()


def read_remote_lines(spark: SparkSession, tf: TableFile) -> DataFrame:
    """A text table file's lines (column `value`), as `spark.read.text` gives them."""
    from pyspark.sql.types import StringType, StructField, StructType

    spark.dataSource.register(ExportFiles)
    return (spark.read.format(NAME).schema(StructType([StructField("value", StringType())]))
            .option("files", json.dumps([str(p) for p in tf.parts()])).option("format", "lines").load())


# -- Parquet on disk, and folders of parts whose types differ ----------------------------------------------

#: Spark refuses a Parquet TIMESTAMP(NANOS) column ("Illegal Parquet type") unless it is
#: read as its nanoseconds since 1970, a long: then validation refuses a time finer than a
#: microsecond, and accepts whole microseconds, as DuckDB's does (`SPARK.sub_micro`), and
#: `spark.typed_sql` makes the instant of it. It touches no other column.
NANOS_CONF = "spark.sql.legacy.parquet.nanosAsLong"


def read_parquet(spark: SparkSession, files: list[str]) -> DataFrame:
    """Parquet files (or folders of parts) on disk, read by Spark, a nanosecond
    timestamp as a long (`NANOS_CONF`)."""
    spark.conf.set(NANOS_CONF, "true")
    return spark.read.parquet(*files)


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _nanos_text(col: str) -> str:
    """Nanoseconds since 1970 as DuckDB writes a TIMESTAMP_NS as text, with its zone:
    '2024-06-26 00:00:00.000000001Z' (the fraction without trailing zeros, none when whole)."""
    frac = f"pmod({col}, 1000000000)"
    return (f"concat(CAST(timestamp_seconds(({col} - {frac}) div 1000000000) AS STRING), "
            f"CASE WHEN {frac} = 0 THEN '' ELSE concat('.', regexp_replace(lpad(CAST({frac} AS STRING), 9, '0'), "
            f"'0+$', '')) END, 'Z')")


def _as_common(col: str, typ: str, common: str | None, spark_type: str | None) -> str:
    """Spark SQL for column `col` of a part that stores it as `typ` (DuckDB's name), in the
    table's `common` type: `sources.export._as_common`, value for value the same text
    (Spark's text of a timestamp is DuckDB's, in the UTC session). `spark_type`: Spark's
    type of the column in the parts that store it as `common`."""
    if common is None or typ == common:
        return col
    if common != "VARCHAR":  # one type, null (Arrow's null type) in this part
        return f"CAST(NULL AS {spark_type})"
    if typ in (NULL_TYPE, "VARCHAR"):
        return "CAST(NULL AS STRING)" if typ == NULL_TYPE else col
    if in_nanos(typ):
        return _nanos_text(col)
    if typ.upper().startswith("TIMESTAMP"):  # a plain Parquet timestamp is UTC by the contract, a zoned one read in UTC
        return f"concat(CAST({col} AS STRING), 'Z')"
    return f"CAST({col} AS STRING)"


def read_parts(spark: SparkSession, tf: TableFile, positions: bool = False) -> DataFrame:
    """A folder of Parquet parts that store a column in different types
    (`TableFile.part_types`), as DuckDB reads it (`TableFile.scan_sql`): each run of
    parts with the same types read by its own types, a column of two types made the
    text a single file of each would hold, the runs one after the other in path
    order. Spark alone would read every part by one part's types, or fail the job.
    With `positions`, each row's file (`__file`) and place (`__pos`), as `read_remote`."""
    from functools import reduce

    from pyspark.sql import functions as F

    common = tf.common_types()
    runs = tf.type_runs()
    remote = isinstance(tf.path, StorePath)
    frames = []
    for files, types in runs:
        if remote:
            df = read_remote(spark, tf, positions=positions, files=files)
        else:
            df = read_parquet(spark, files)
            if positions:
                df = df.select("*", F.col("_metadata.file_path").alias(FILE))
        frames.append((df, types))
    spark_types: dict[str, str] = {}
    for df, types in frames:
        for name, c in common.items():
            if c is not None and types.get(name) == c:
                spark_types.setdefault(name, df.schema[name].dataType.simpleString())
    extra = ([FILE, POS] if remote else [FILE]) if positions else []
    selected = [df.selectExpr(*(f"{_as_common(_ident(n), types.get(n, NULL_TYPE), common[n], spark_types.get(n))} "
                                f"AS {_ident(n)}" for n in common), *extra) for df, types in frames]
    out = reduce(lambda a, b: a.union(b), selected)
    if positions and not remote:  # the runs' partitions in order: increasing within each file
        out = out.withColumn(POS, F.monotonically_increasing_id())
    return out
