"""Open a platform export folder as DuckDB views, without loading it into Python.

Text formats (CSV, JSONL) are read as strings and cast by consentry, so that a
bad value is reported with its row instead of failing deep inside a query.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..errors import InputError
from .lines import record_line, text_problem
from .schema import FORMATS, TABLES, Column, Table


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class TableFile:
    table: Table
    path: Path
    format: str  # parquet | jsonl | csv
    columns: dict[str, str] = field(default_factory=dict)  # name -> DuckDB type as read
    empty: bool = False  # a JSONL file without a single line: a table with no rows

    @property
    def label(self) -> str:
        return self.path.name + ("/" if self.path.is_dir() else "")

    def scan_sql(self) -> str:
        if self.empty:
            cols = ", ".join(f'CAST(NULL AS VARCHAR) AS "{c.name}"' for c in self.table.columns)
            return f"(SELECT {cols} WHERE false)"
        p = str(self.path)
        if self.format == "parquet":
            glob = os.path.join(p, "**", "*.parquet") if self.path.is_dir() else p
            return f"read_parquet({sql_str(glob)})"
        if self.format == "csv":
            return f"read_csv({sql_str(p)}, header=true, all_varchar=true, auto_detect=true)"
        cols = ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in self.columns)
        return f"read_json({sql_str(p)}, format='newline_delimited', columns={{{cols}}})"

    def row_label(self, n: int) -> str:
        """Where a person finds data row n (1-based) with an editor."""
        if self.format == "csv":
            return f"row {n} (line {record_line(self.path, 'csv', n)})"
        if self.format == "jsonl":
            return f"line {record_line(self.path, 'jsonl', n)}"
        return f"row {n}"

    def unreadable(self, exc: Exception | None = None) -> InputError:
        """The error for a file DuckDB could not read: the exact line when we can find it."""
        found = text_problem(self.path, self.format) if not self.path.is_dir() else None
        if found is not None:
            line, problem = found
            return InputError(
                problem,
                where=f"{self.path}, line {line}",
                fix=f"correct that line so the file is valid {self.format.upper()}, then run again",
            )
        detail = f": {str(exc).splitlines()[0]}" if exc is not None else ""
        return InputError(
            f"cannot be read as {self.format.upper()}{detail}",
            where=str(self.path),
            fix=f"check that the file is complete, valid {self.format.upper()}",
        )


def find_table_file(folder: Path, table: Table) -> Path | None:
    found = [folder / f"{table.name}.{ext}" for ext in FORMATS]
    found = [p for p in found if p.is_file()]
    part_dir = folder / table.name
    if part_dir.is_dir() and any(part_dir.rglob("*.parquet")):
        found.append(part_dir)
    if len(found) > 1:
        raise InputError(
            f"the table '{table.name}' is there {len(found)} times: "
            + ", ".join(p.name for p in found),
            where=str(folder),
            fix="keep exactly one file per table",
        )
    return found[0] if found else None


def _blank(path: Path) -> bool:
    """True for a file with nothing but white space (read in small blocks)."""
    with open(path, "rb") as fh:
        while block := fh.read(1 << 16):
            if block.strip():
                return False
    return True


class Export:
    """A validated-or-not platform export; `register` exposes typed views."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(
                "no such export folder",
                where=str(self.folder),
                fix="pass the folder that holds users, content and tags (e.g. from `consentry generate`)",
            )
        self.files: dict[str, TableFile] = {}
        probe = duckdb.connect()
        try:
            for table in TABLES:
                path = find_table_file(self.folder, table)
                if path is None:
                    if table.optional:
                        continue
                    raise InputError(
                        f"the table '{table.name}' is missing",
                        where=str(self.folder),
                        fix=f"add {table.name}.parquet, {table.name}.jsonl or {table.name}.csv",
                    )
                fmt = "parquet" if path.is_dir() else path.suffix.lstrip(".")
                self.files[table.name] = self._describe(probe, TableFile(table, path, fmt))
        finally:
            probe.close()

    @staticmethod
    def _describe(con: duckdb.DuckDBPyConnection, tf: TableFile) -> TableFile:
        if tf.format == "jsonl" and _blank(tf.path):
            cols = {c.name: "VARCHAR" for c in tf.table.columns}
            return TableFile(tf.table, tf.path, tf.format, cols, empty=True)
        if tf.format == "jsonl":
            scan = f"read_json({sql_str(str(tf.path))}, format='newline_delimited', sample_size=-1)"
        else:
            scan = tf.scan_sql()
        try:
            rows = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
        except duckdb.Error as exc:
            raise tf.unreadable(exc) from None
        columns = {name: typ for name, typ, *_ in rows}
        if tf.format != "parquet":  # text formats are scanned as strings and cast by us
            columns = {name: "VARCHAR" for name in columns}
        missing = [c.name for c in tf.table.columns if c.required and c.name not in columns]
        if missing and tf.format != "parquet" and text_problem(tf.path, tf.format) is not None:
            raise tf.unreadable()  # a malformed line, not missing columns
        if missing:
            raise InputError(
                f"missing column(s) {', '.join(missing)} (has: {', '.join(columns) or 'none'})",
                where=str(tf.path),
                fix=f"the '{tf.table.name}' table needs the columns "
                + ", ".join(c.name for c in tf.table.columns)
                + " (see CONTRACT §1)",
            )
        return TableFile(tf.table, tf.path, tf.format, columns)

    # -- typed views -------------------------------------------------------------

    def raw_expr(self, tf: TableFile, col: Column) -> str:
        return f'"{col.name}"' if col.name in tf.columns else "NULL"

    def typed_expr(self, tf: TableFile, col: Column) -> str:
        """The column converted to its contract type; NULL where it does not parse."""
        if col.name not in tf.columns:
            return f"CAST(NULL AS {col.duckdb_type})"
        src = f'"{col.name}"'
        read_type = tf.columns[col.name].upper()
        if col.kind == "timestamp":
            # make_timestamp(epoch_us(..)) is plain arithmetic; a CAST from
            # TIMESTAMPTZ goes through ICU per row and costs 6x more.
            if read_type.startswith("TIMESTAMP WITH TIME ZONE"):
                return f"make_timestamp(epoch_us({src}))"
            if read_type.startswith("TIMESTAMP"):
                return f"CAST({src} AS TIMESTAMP)"
            # Only ISO 8601: DuckDB would also take 'epoch' or 'infinity'.
            return (
                f"CASE WHEN regexp_matches(TRIM({src}), '^\\d{{4}}-\\d{{2}}-\\d{{2}}') "
                f"THEN make_timestamp(epoch_us(TRY_CAST(TRIM({src}) AS TIMESTAMPTZ))) END"
            )
        if col.kind == "date":
            if read_type == "DATE":
                return src
            return (
                f"CASE WHEN regexp_full_match(TRIM({src}), '\\d{{4}}-\\d{{2}}-\\d{{2}}') "
                f"THEN TRY_CAST(TRIM({src}) AS DATE) END"
            )
        if col.kind == "country":
            return f"NULLIF(UPPER(TRIM({src})), '')"
        return f"CAST({src} AS VARCHAR)"

    def view_sql(self, name: str) -> str:
        tf = self.files[name]
        cols = ", ".join(f'{self.typed_expr(tf, c)} AS "{c.name}"' for c in tf.table.columns)
        return f"SELECT {cols} FROM {tf.scan_sql()}"

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create views users, content and tags (empty when the export has none)."""
        con.execute("SET TimeZone = 'UTC'")
        for table in TABLES:
            if table.name in self.files:
                con.execute(f"CREATE OR REPLACE TEMP VIEW {table.name} AS {self.view_sql(table.name)}")
            else:
                cols = ", ".join(f'CAST(NULL AS {c.duckdb_type}) AS "{c.name}"' for c in table.columns)
                con.execute(f"CREATE OR REPLACE TEMP VIEW {table.name} AS SELECT {cols} WHERE false")

    # -- identity ----------------------------------------------------------------

    def fingerprint(self) -> str:
        """Changes whenever any table file changes (path, size, mtime), cheaply."""
        h = hashlib.sha256()
        for name in sorted(self.files):
            path = self.files[name].path
            parts = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
            for p in parts:
                st = p.stat()
                h.update(json.dumps([str(p.resolve()), st.st_size, st.st_mtime_ns]).encode())
        return h.hexdigest()
