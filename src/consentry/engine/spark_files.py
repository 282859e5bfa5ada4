"""Export tables in object stores, read by Spark's executors without Hadoop's
connectors.

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

from ..sources.export import TableFile
from ..sources.store import StorePath

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["FIX", "NAME", "ExportFiles", "read_remote", "read_remote_lines", "unreachable"]

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
            yield from pq.ParquetFile(fh).read_row_group(part.row_group).to_batches()
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


def _schema(tf: TableFile, files: list[str]) -> StructType:
    """Spark's schema of the table as read: the Parquet file's own types, or text columns."""
    from pyspark.sql.types import StringType, StructField, StructType

    if tf.format != "parquet":
        return StructType([StructField(c, StringType()) for c in tf.columns])
    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import from_arrow_schema

    with StorePath(files[0]).open_native() as fh:
        schema = pq.ParquetFile(fh).schema_arrow
    return from_arrow_schema(schema, prefer_timestamp_ntz=True)


def read_remote(spark: SparkSession, tf: TableFile, positions: bool = False) -> DataFrame:
    """The table file as Spark reads a local one: Parquet typed, CSV and JSONL as
    text; with `positions`, each row's file (`__file`) and place in it (`__pos`)."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    spark.dataSource.register(ExportFiles)
    files = [str(p) for p in tf.parts()]
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
