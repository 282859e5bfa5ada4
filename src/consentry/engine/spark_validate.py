"""The export's validation as Spark jobs: the checks of `sources.validation`, the
same SQL text in Spark's dialect, over the tables Spark reads itself, so a
cluster validates an export that one machine could not scan.

Rows are numbered as DuckDB numbers them (files in path order, rows in file
order), found without a sort: the first offending row is the least
(file path, monotonically_increasing_id) among the offenders, and its number is
a count of the rows before it. This runs only when a check fails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import InputError
from ..sources import Export
from ..sources.export import MAX_RECORD_BYTES, TableFile, in_nanos
from ..sources.lines import text_problem
from ..sources.store import StorePath
from ..sources.validation import SPARK, Checker, ValidationReport, check
from ..sqltext import spark_quote
from .spark import read_table, register_export, typed_column
from .spark_files import FIX, read_parts, read_remote, read_remote_lines, unreachable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkChecker", "validate_spark"]

_NULL_TYPES = {"timestamp": "TIMESTAMP", "date": "DATE"}


class SparkChecker(Checker):
    """The checks on a Spark session."""

    dialect = SPARK

    def __init__(self, spark: SparkSession, export: Export) -> None:
        self.spark, self.export = spark, export
        self._views: set[str] = set()  # temp views this checker made, dropped by close()

    def rows(self, sql: str) -> list[tuple]:
        try:
            return [tuple(r) for r in self.spark.sql(sql).collect()]
        except Exception as exc:
            if (reason := unreachable(exc)) is not None:  # not a bad file: the bucket is out of the executors' reach
                raise InputError(reason, where=str(self.export.folder), fix=FIX) from None
            raise

    def _source(self, tf: TableFile) -> str:
        """The table file as read, with each row's file and position in it."""
        name = f"consentry_check_{tf.table.name}"
        if name not in self._views:
            from pyspark.sql import functions as F

            if tf.part_types:  # parts read each by its own types, as DuckDB reads them
                read_parts(self.spark, tf, positions=True).createOrReplaceTempView(name)
            elif isinstance(tf.path, StorePath):  # the data source numbers the rows itself
                read_remote(self.spark, tf, positions=True).createOrReplaceTempView(name)
            else:
                df = read_table(self.spark, self.export, tf.table.name)
                df.select("*", F.col("_metadata.file_path").alias("__file"),
                          F.monotonically_increasing_id().alias("__pos")).createOrReplaceTempView(name)
            self._views.add(name)
        return name

    def base(self, tf: TableFile) -> str:
        cols = []
        for col in tf.table.columns:
            if col.name in tf.columns:
                cols += [f"`{col.name}` AS `raw__{col.name}`", f"{typed_column(tf, col)} AS `{col.name}`"]
            else:
                cols += [f"CAST(NULL AS STRING) AS `raw__{col.name}`",
                         f"CAST(NULL AS {_NULL_TYPES.get(col.kind, 'STRING')}) AS `{col.name}`"]
        return f"SELECT __file, __pos, {', '.join(cols)} FROM {self._source(tf)}"

    def first(self, tf: TableFile, predicate: str, columns: list[str], limit: int = 1) -> list[tuple[str, tuple]]:
        cols = "".join(f", `{c}`" for c in columns)
        found = self.rows(f"SELECT __file, __pos{cols} FROM ({self.base(tf)}) b WHERE {predicate} "
                          f"ORDER BY __file, __pos LIMIT {int(limit)}")
        out = []
        for file, pos, *values in found:
            f = spark_quote(file)
            before = self.count(f"SELECT count(*) FROM {self._source(tf)} WHERE __file < {f} OR (__file = {f} AND __pos < {int(pos)})")
            values = [_as_duckdb_gives(v, tf.columns.get(c.removeprefix("raw__"), "")) for c, v in zip(columns, values)]
            out.append((tf.row_label(before + 1), tuple(values)))
        return out

    def register(self) -> None:
        register_export(self.spark, self.export)

    def screen(self, tf: TableFile) -> None:
        """A Spark job over the file's lines flags what Spark's reader would take
        silently: a replaced (bad UTF-8) byte, a line over the size limit, a
        JSON record with a key twice. Only then is the file read here, line by
        line, to name the line as a DuckDB validation does."""
        if tf.format not in ("jsonl", "csv"):
            return
        lines = read_remote_lines(self.spark, tf) if isinstance(tf.path, StorePath) else self.spark.read.text(str(tf.path))
        lines.createOrReplaceTempView("consentry_check_lines")
        self._views.add("consentry_check_lines")
        dup = ("size(json_object_keys(value)) <> size(array_distinct(json_object_keys(value)))"
               if tf.format == "jsonl" else "false")
        flagged = self.count(f"""SELECT count(*) FROM consentry_check_lines
            WHERE contains(value, {spark_quote(chr(0xFFFD))}) OR octet_length(value) > {MAX_RECORD_BYTES} OR ({dup})""")
        if flagged and text_problem(tf.path, tf.format, tf.csv_dialect) is not None:
            raise tf.unreadable()

    def close(self) -> None:
        for name in self._views:
            self.spark.catalog.dropTempView(name)


def _as_duckdb_gives(value: object, read_type: str) -> object:
    """A value of an example row as DuckDB's validation shows it: Spark reads a Parquet
    TIMESTAMP(NANOS) as nanoseconds since 1970, DuckDB hands it over as a datetime
    (to the microsecond, toward zero; in UTC when zoned)."""
    if not isinstance(value, int) or not in_nanos(read_type):
        return value
    micros = -(-value // 1000) if value < 0 else value // 1000
    return datetime(1970, 1, 1, tzinfo=UTC if "TZ" in read_type.upper() else None) + timedelta(microseconds=micros)


def validate_spark(spark: SparkSession, export: Export) -> ValidationReport:
    """`sources.validation` as Spark jobs: the same problems, named the same way."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    ck = SparkChecker(spark, export)
    try:
        return check(export, ck, unreadable=(Py4JJavaError, PySparkException))
    except (Py4JJavaError, PySparkException) as exc:
        raise InputError(f"could not be read by Spark: {str(exc).strip().splitlines()[0]}", where=str(export.folder),
                         fix="check that every table file is complete and in its format") from None
    finally:
        ck.close()
