"""The backend seam: where the compiled SQL runs. One text, two engines.

`DuckBackend` runs it in this process; `SparkBackend` on a Spark session
(local or a cluster). Both load the same four relations (`users`, `content`,
`tags`, `ledger_events`) and hand results back as Arrow with timestamps as
naive UTC, so a face (explain, the notice audience) reads the same values
whichever engine decided.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..ledger import Ledger
from ..sources import Export

if TYPE_CHECKING:  # a decision through the ledger's extract never loads pyarrow (0.15-0.2 s)
    import pyarrow as pa

__all__ = ["Backend", "DuckBackend", "SparkBackend"]


class Backend(Protocol):
    name: str

    def load(self, export: Export, ledger: Ledger, at: datetime, watermark: int | None = None) -> int:
        """Register the export and the ledger's events visible at `at` (up to a
        watermark read first); the watermark used."""

    def arrow(self, sql: str) -> pa.Table:
        """The result of a query, as Arrow (timestamps naive UTC)."""

    def table(self, name: str, data: pa.Table) -> None:
        """A small temporary relation `name` with `data`."""

    def close(self) -> None: ...


class DuckBackend:
    name = "duckdb"

    def __init__(self, con: Any = None) -> None:  # a duckdb connection, or a new one
        from .duck import connect

        self.con = con if con is not None else connect()
        self._own = con is None

    def load(self, export: Export, ledger: Ledger, at: datetime, watermark: int | None = None) -> int:
        from .duck import load_inputs

        return load_inputs(self.con, export, ledger, at, watermark)

    def arrow(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def table(self, name: str, data: pa.Table) -> None:
        self.con.register(f"{name}_arrow", data)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        self.con.unregister(f"{name}_arrow")

    def close(self) -> None:
        if self._own:
            self.con.close()


class SparkBackend:
    name = "spark"

    def __init__(self, spark: Any) -> None:  # a pyspark SparkSession
        from .spark import scratch_dir

        self.spark = spark
        self.scratch: Path = scratch_dir()

    def load(self, export: Export, ledger: Ledger, at: datetime, watermark: int | None = None) -> int:
        from .spark import load_inputs

        return load_inputs(self.spark, export, ledger, at, self.scratch, watermark)

    def arrow(self, sql: str) -> pa.Table:
        from pyspark.sql import functions as F
        from pyspark.sql.types import TimestampType

        df = self.spark.sql(sql)
        # Instants come back as naive UTC values, never in this machine's zone.
        df = df.select(*[F.col(f"`{f.name}`").cast("timestamp_ntz").alias(f.name) if isinstance(f.dataType, TimestampType)
                         else F.col(f"`{f.name}`") for f in df.schema.fields])
        return df.toArrow()

    def table(self, name: str, data: pa.Table) -> None:
        import pyarrow.parquet as pq

        path = self.scratch / f"{name}.parquet"
        pq.write_table(data, path)
        self.spark.read.parquet(str(path)).createOrReplaceTempView(name)

    def close(self) -> None:
        from .spark import remove

        remove(self.scratch)
