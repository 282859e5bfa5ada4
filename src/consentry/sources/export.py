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

from ..errors import InputError, InputProblems
from ..sqltext import quote
from ..words import plural
from .lines import MAX_RECORD_BYTES, record_line, sniff_encoding, text_problem
from .schema import FORMATS, TABLES, Column, Table
from .store import StorePath, attach, location, open_path, walk

__all__ = ["MAX_RECORD_BYTES", "Export", "TableFile"]

#: ISO 8601 as consentry reads it from text: a date, or a date and time (seconds and
#: a fraction optional) with an optional zone: Z or an offset of at most 18 hours
#: (+05, +0530, +05:30). DuckDB alone would also take +25:00, +05:75, +05:30:15 or
#: zone names, and apply them.
TIMESTAMP_RE = (
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
    r"(Z|[+-](0\d|1[0-7])(:?[0-5]\d)?|[+-]18(:?00)?)?)?$"
)

#: What Spark and Hadoop write beside Parquet parts; ignored in a folder of parts.
BOOKKEEPING = ("_SUCCESS", "_metadata", "_common_metadata", ".DS_Store")
BOOKKEEPING_PREFIXES = ("_committed_", "_started_")


def _bookkeeping(name: str) -> bool:
    checksum = name.startswith(".") and name.endswith(".crc")
    return name in BOOKKEEPING or name.startswith(BOOKKEEPING_PREFIXES) or checksum




@dataclass(frozen=True)
class TableFile:
    table: Table
    path: Path | StorePath
    format: str  # parquet | jsonl | csv
    columns: dict[str, str] = field(default_factory=dict)  # name -> DuckDB type as read
    #: A folder whose Parquet parts store a column in different types (a timestamp in
    #: one, ISO text in another; Arrow's null type for an all-null column): each
    #: part (str of its path) -> its own column types. Empty when the parts agree.
    #: Such parts are each read by their own types (`scan_sql`), never cast to the first's.
    part_types: dict[str, dict[str, str]] = field(default_factory=dict)
    #: A CSV file's delimiter, quote and escape as DuckDB's sniffer found them, so a
    #: problem's line is counted as DuckDB reads the file (None: comma, '"', '"').
    csv_dialect: tuple[str, str, str] | None = None

    def parts(self) -> list[Path | StorePath]:
        """The files the table is read from: the file, or a folder's Parquet parts."""
        return parquet_parts(self.path, self.table) if self.path.is_dir() else [self.path]

    @property
    def label(self) -> str:
        return self.path.name + ("/" if self.path.is_dir() else "")

    def part_label(self, part: Path | StorePath | str) -> str:
        """A part's path inside the table's folder (part-00001.parquet, date=2024/part-0.parquet)."""
        return str(part)[len(str(self.path)):].lstrip("/\\")

    def common_types(self) -> dict[str, str | None]:
        """For parts that differ (`part_types`): each column's type in the table as read.
        One type (ignoring Arrow's null type, which any type holds) is kept; two or
        more make the column text, each part's values written as a single file's
        would be read (a timestamp as ISO 8601 in UTC, a date as YYYY-MM-DD), so
        that each part goes through the rules of its own type. None: null in every part."""
        types = list(self.part_types.values())
        common: dict[str, str | None] = {}
        for name in types[0]:
            seen = {t[name] for t in types if name in t} - {NULL_TYPE}
            common[name] = seen.pop() if len(seen) == 1 else ("VARCHAR" if seen else None)
        return common

    def type_runs(self) -> list[tuple[list[str], dict[str, str]]]:
        """The parts in path order, as runs of consecutive parts with the same
        column types: (their paths, those types). Each run is read by its own
        types (DuckDB here, Spark in `engine.spark_files.read_parts`)."""
        runs: list[tuple[list[str], dict[str, str]]] = []
        for part in self.parts():
            types = self.part_types[str(part)]
            if runs and runs[-1][1] == types:
                runs[-1][0].append(str(part))
            else:
                runs.append(([str(part)], types))
        return runs

    def _mixed_scan(self) -> str:
        """The parts, each read by its own types, in path order: runs of parts with
        the same types are read together, the runs one after the other (UNION ALL
        keeps their order, so rows are numbered as for a single read)."""
        common = self.common_types()
        names = list(common)
        runs = self.type_runs()
        selects = []
        for files, types in runs:
            cols = ", ".join(f"{_as_common(quote_ident(n), types.get(n, NULL_TYPE), common[n])} AS {quote_ident(n)}"
                             for n in names)
            selects.append(f"SELECT {cols} FROM read_parquet([{', '.join(quote(f) for f in files)}])")
        return "(" + " UNION ALL ".join(selects) + ")"

    def scan_sql(self) -> str:
        p = str(self.path)
        if self.format == "parquet":
            if self.part_types:
                return self._mixed_scan()
            if isinstance(self.path, StorePath):  # the parts, listed: no glob over a bucket
                return "read_parquet([" + ", ".join(quote(str(q)) for q in self.parts()) + "])"
            glob = os.path.join(p, "**", "*.parquet") if self.path.is_dir() else p
            return f"read_parquet({quote(glob)})"
        if self.format == "csv":
            return f"read_csv({quote(p)}, header=true, all_varchar=true, auto_detect=true{CSV_LIMITS})"
        cols = ", ".join(f"{quote(c)}: 'VARCHAR'" for c in self.columns)
        return f"read_json({quote(p)}, format='newline_delimited', columns={{{cols}}}{JSON_LIMITS})"

    def row_label(self, n: int) -> str:
        """Where a person finds data row n (1-based) with an editor."""
        if self.format == "csv":
            return f"row {n} (line {record_line(self.path, 'csv', n, self.csv_dialect)})"
        if self.format == "jsonl":
            return f"line {record_line(self.path, 'jsonl', n)}"
        if self.path.is_dir():
            found = _row_in_part(self.parts(), n)
            if found is not None:
                return f"row {n} ({self.part_label(found[0])}, row {found[1]})"
        return f"row {n}"

    def unreadable(self, exc: Exception | None = None) -> InputError:
        """The error for a file DuckDB could not read: the exact line when we can find it."""
        found = text_problem(self.path, self.format, self.csv_dialect) if not self.path.is_dir() else None
        if found is not None:
            return InputError(
                found.problem,
                where=f"{self.path}, line {found.line}",
                column=found.column,
                fix=found.fix or f"correct that line so the file is valid {self.format.upper()}, then run again",
            )
        detail = f": {str(exc).splitlines()[0]}" if exc is not None else ""
        return InputError(
            f"cannot be read as {self.format.upper()}{detail}",
            where=str(self.path),
            fix=f"check that the file is complete, valid {self.format.upper()}",
        )


#: How DuckDB names Arrow's null type (a column of nulls only, as pyarrow writes pa.nulls()).
NULL_TYPE = '"NULL"'


def in_nanos(read_type: str) -> bool:
    """Whether a column DuckDB reads as `read_type` is a Parquet TIMESTAMP(NANOS)
    (TIMESTAMP_NS, TIMESTAMPTZ_NS), which Spark reads as nanoseconds since 1970."""
    return read_type.upper().startswith("TIMESTAMP") and read_type.upper().endswith("_NS")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _zoned(typ: str) -> bool:
    return typ.startswith("TIMESTAMP WITH TIME ZONE") or typ.startswith("TIMESTAMPTZ")


def _as_common(col: str, typ: str, common: str | None) -> str:
    """SQL for column `col` of a part that stores it as `typ`, in the table's `common` type."""
    if common is None or typ == common:
        return col
    if typ == NULL_TYPE:
        return f"CAST(NULL AS {common})"
    if common != "VARCHAR":  # not reached: two types make text
        return f"CAST({col} AS {common})"
    if typ == "VARCHAR":
        return col
    # A timestamp as the ISO 8601 text a single file would hold, in UTC (a plain Parquet
    # timestamp is UTC by the contract), every digit kept: the text rules then read it
    # as the typed rules would have.
    if typ.endswith("_NS") and _zoned(typ):
        return f"(CAST(make_timestamp_ns(epoch_ns({col})) AS VARCHAR) || 'Z')"
    if _zoned(typ):
        return f"(CAST(make_timestamp(epoch_us({col})) AS VARCHAR) || 'Z')"
    if typ.startswith("TIMESTAMP"):
        return f"(CAST({col} AS VARCHAR) || 'Z')"
    return f"CAST({col} AS VARCHAR)"


def _row_in_part(parts: list[Path | StorePath], n: int) -> tuple[Path | StorePath, int] | None:
    """Which part holds row n of a folder read in path order, and its row there (from the footers)."""
    import pyarrow.parquet as pq

    seen = 0
    for part in parts:
        try:
            if isinstance(part, StorePath):
                with part.open_native() as fh:
                    rows = pq.ParquetFile(fh).metadata.num_rows
            else:
                rows = pq.ParquetFile(part).metadata.num_rows
        except Exception:  # noqa: BLE001 - only a label: without it the row number stands alone
            return None
        if seen + rows >= n:
            return part, n - seen
        seen += rows
    return None


CSV_LIMITS = f", max_line_size={MAX_RECORD_BYTES}, buffer_size={2 * MAX_RECORD_BYTES}"
JSON_LIMITS = f", maximum_object_size={MAX_RECORD_BYTES}"


def find_table_file(folder: Path | StorePath, table: Table) -> Path | StorePath | None:
    found = [folder / f"{table.name}.{ext}" for ext in FORMATS]
    found = [p for p in found if p.is_file()]
    part_dir = folder / table.name
    if part_dir.is_dir():  # whatever it holds: a folder of CSV parts is not "no table"
        found.append(part_dir)
    if len(found) > 1:
        raise InputError(
            f"the table '{table.name}' is there {len(found)} times: "
            + ", ".join(p.name for p in found),
            where=str(folder),
            fix="keep exactly one file per table",
        )
    return found[0] if found else None


def _suffixes(name: str) -> str:
    """'.csv' of 'Contents.csv', '' of a folder of parts."""
    return name[name.index("."):].lower() if "." in name else ""


def near_misses(folder: Path | StorePath, table: str) -> list[str]:
    """Files or folders at the top of `folder` named almost like `table`
    (`contents.csv`, `Tags.parquet`, `tag/`): a misspelt table, named so the
    refusal can say which file was meant."""
    import difflib

    for _, dirs, files in walk(folder):
        names = [n for n in (*dirs, *files) if not n.startswith((".", "_"))]
        break
    else:
        return []
    stem = {n: n.split(".", 1)[0].lower() for n in names}
    return sorted(n for n in names if stem[n] == table or difflib.SequenceMatcher(None, stem[n], table).ratio() >= 0.8)


def _empty_fix(table: Table, what: str = "file") -> str:
    if table.optional:
        return (
            f"delete the {what} if the platform has no tags, or write the tags "
            "(a CSV file with just its header line is a tags table without rows)"
        )
    return f"write the {table.name} table into it (CONTRACT §1)"


def parquet_parts(part_dir: Path | StorePath, table: Table) -> list[Path | StorePath]:
    """The Parquet parts of a folder, refusing anything in it that would not be read
    (a CSV part, an upper-case .PARQUET, a hidden part) or that says the folder is
    not a finished plain Parquet write (_temporary, _delta_log). Spark's and Hadoop's
    bookkeeping (_SUCCESS, _committed_*, _started_*, _metadata, .*.crc) and .DS_Store
    are ignored."""
    fix = f"remove it from {table.name}/ (consentry reads only the *.parquet parts there)"
    parts: list[Path | StorePath] = []
    for here, dirs, files in walk(part_dir):
        for d in sorted(dirs):
            if d.startswith(("_", ".")):
                why = {
                    "_temporary": "an unfinished write (Spark's _temporary folder): parts in it are incomplete",
                    "_delta_log": "a Delta table's log: its folder also holds parts the table no longer has",
                }.get(d, "is a hidden folder in a folder of Parquet parts")
                delta = "export the table's current version as plain Parquet parts"
                raise InputError(why, where=str(here / d), fix=delta if d == "_delta_log" else fix)
        for name in sorted(files):
            path = here / name
            if _bookkeeping(name):
                continue
            if name.startswith((".", "_")):
                raise InputError("is a hidden file in a folder of Parquet parts", where=str(path), fix=fix)
            if name.lower().endswith(".parquet") and not name.endswith(".parquet"):
                # Readers that glob *.parquet (DuckDB, Spark) would skip it: refused, not read and not skipped.
                raise InputError("is named like a Parquet part, but a part's name must end in lower-case .parquet",
                                 where=str(path), fix=f"rename it to {name[:-len('.parquet')]}.parquet")
            if not name.endswith(".parquet"):
                raise InputError(
                    "is not a Parquet part (its name does not end in .parquet); a folder of parts holds only Parquet parts",
                    where=str(path),
                    fix=fix + ", or convert it to Parquet",
                )
            parts.append(path)
    if not parts:
        raise InputError(
            f"the folder {table.name}/ holds no Parquet part",
            where=str(part_dir),
            fix=_empty_fix(table, "folder").replace("write the tags", "write the tags as Parquet parts"),
        )
    return sorted(parts)


def _top_level(elements: list[tuple[str, int | None, str | None]]) -> list[tuple[str, str | None]]:
    """The columns (name, DuckDB type) of one Parquet schema, given its elements in file
    order (the root first; each element followed by its num_children descendants)."""

    def past(i: int) -> int:
        n = elements[i][1] or 0
        i += 1
        for _ in range(n):
            i = past(i)
        return i

    columns, i = [], 1
    for _ in range(elements[0][1] or 0):
        columns.append((elements[i][0], elements[i][2]))
        i = past(i)
    return columns


def _parquet_columns(con: duckdb.DuckDBPyConnection, tf: "TableFile") -> dict[str, dict[str, str]]:
    """Refuse a column named twice (DuckDB would read the second as NAME_1 and the
    contract's NAME would be the first one only) and parts with different columns.
    Returns each part's column types when the parts' types differ (`TableFile.part_types`),
    else {}: DuckDB would read every part by the first one's types, casting a later
    part's ISO text with an offset as a plain time and dropping the offset.
    Reads only the files' footers, all parts in one call."""
    parts = tf.parts()
    listed = "[" + ", ".join(quote(str(p)) for p in parts) + "]"
    try:
        rows = con.execute(f"SELECT file_name, name, num_children, duckdb_type FROM parquet_schema({listed})").fetchall()
    except duckdb.Error:
        return {}  # DuckDB says what is wrong with the file when it reads it
    schemas: dict[str, list[tuple[str, int | None, str | None]]] = {}
    for file_name, name, children, typ in rows:
        schemas.setdefault(file_name, []).append((name, children, typ))
    first: tuple[Path, list[str]] | None = None
    types: dict[str, dict[str, str]] = {}
    for part in parts:
        elements = schemas.get(str(part))
        if not elements:
            continue
        columns = _top_level(elements)
        names = [n for n, _ in columns]
        types[str(part)] = {n: str(t) for n, t in columns}
        for name in names:
            if names.count(name) > 1:
                raise InputError(
                    f"the column '{name}' is there {names.count(name)} times; which one counts would be a guess",
                    where=str(part),
                    column=name,
                    row="the schema: " + ", ".join(names),
                    fix=f"keep one '{name}' column",
                )
        if first is None:
            first = (part, names)
        elif set(names) != set(first[1]):
            odd = sorted(set(names) ^ set(first[1]))[0]
            raise InputError(
                f"has the columns {', '.join(names)}; other parts have {', '.join(first[1])}",
                where=str(part),
                column=odd,
                row="the schema: " + ", ".join(names),
                fix=f"write every part with the same columns (as {first[0].name})",
            )
    if len(types) != len(parts) or len({tuple(sorted(t.items())) for t in types.values()}) == 1:
        return {}
    return types


def _csv_dialect(con: duckdb.DuckDBPyConnection, tf: "TableFile") -> tuple[str, str, str] | None:
    """(delimiter, quote, escape) of a CSV file as DuckDB's sniffer reads it (only used
    to count lines in messages: a semicolon file read as comma-separated put a
    problem on the wrong line); None when it cannot say."""
    try:
        row = con.execute(f"SELECT Delimiter, Quote, Escape FROM sniff_csv({quote(str(tf.path))}, header=true, "
                          f"all_varchar=true{CSV_LIMITS})").fetchone()
    except duckdb.Error:
        return None
    if not row or len(str(row[0])) != 1:  # a multi-byte delimiter: Python's csv cannot follow it
        return None
    with open_path(tf.path, "rb") as fh:
        header = fh.readline(1 << 20)
    if str(row[0]).encode() not in header:
        # Not the file's delimiter: rows that disagree (a malformed line near the top) made the
        # sniffer settle for one that splits nothing. Lines are then counted as comma-separated.
        return None
    one = [str(v) if v is not None and len(str(v)) == 1 else "" for v in row]  # '(empty)': none
    return one[0], one[1], one[2]


def _csv_header(con: duckdb.DuckDBPyConnection, tf: "TableFile") -> None:
    """Refuse a CSV header that names a column twice (DuckDB reads the second as NAME_1)."""
    row = con.execute(
        f"SELECT * FROM read_csv({quote(str(tf.path))}, header=false, all_varchar=true, "
        f"auto_detect=true{CSV_LIMITS}) LIMIT 1"
    ).fetchone()
    names = [n for n in (row or ()) if n is not None]
    for name in names:
        if names.count(name) > 1:
            raise InputError(
                f"the column '{name}' is there {names.count(name)} times in the header; "
                "which one counts would be a guess",
                where=f"{tf.path}, line 1",
                column=name,
                fix=f"keep one '{name}' column",
            )


def _blank(path: Path | StorePath) -> bool:
    """True for a file with nothing but white space (read in small blocks)."""
    with open_path(path, "rb") as fh:
        while block := fh.read(1 << 16):
            if block.strip():
                return False
    return True


class Export:
    """A validated-or-not platform export; `register` exposes typed views."""

    def __repr__(self) -> str:
        return f"Export({str(self.folder)!r})"

    def __init__(self, folder: str | Path | StorePath) -> None:
        self.folder = folder if isinstance(folder, StorePath) else location(folder)
        if not self.folder.is_dir():
            remote = isinstance(self.folder, StorePath)
            what = ("is a file, not the export's folder" if self.folder.is_file() else
                    "no such export folder" + (" (no object under that prefix)" if remote else ""))
            raise InputError(
                what,
                where=str(self.folder),
                fix="pass the folder that holds users, content and tags (e.g. from `consentry generate`)",
            )
        self.files: dict[str, TableFile] = {}
        #: Set by `open_export` once the export passed validation (a ValidationReport); None before.
        self.report = None
        probe = duckdb.connect()
        attach(probe, self.folder)
        problems: list[InputError] = []  # every table's, so one run names them all
        try:
            for table in TABLES:
                try:
                    self._open_table(probe, table)
                except InputError as exc:
                    problems.append(exc)
        finally:
            probe.close()
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise InputProblems(f"the export {self.folder}", problems, len(problems))

    def _open_table(self, probe: duckdb.DuckDBPyConnection, table: Table) -> None:
        """Find and describe one table's file into `files`; an InputError says what is wrong with it."""
        path = find_table_file(self.folder, table)
        if path is None:
            like = near_misses(self.folder, table.name)
            if table.optional and not like:
                return
            # A misspelt tags file must not pass for "no tags": every tagged person would go unchecked.
            seen = f", but {' and '.join(like)} looks like it" if like else ""
            fix = f"add {table.name}.parquet, {table.name}.jsonl or {table.name}.csv"
            if like:
                ext = _suffixes(like[0])
                fix = (f"rename {like[0]} to {table.name}{ext}" if ext.lstrip(".") in FORMATS or not ext
                       else f"write {like[0]} as {table.name}.parquet, .jsonl or .csv") + (
                    ", or remove it if the platform has no tags" if table.optional else "")
            raise InputError(f"the table '{table.name}' is missing{seen}", where=str(self.folder), fix=fix)
        fmt = "parquet" if path.is_dir() else path.suffix.lstrip(".")
        self.files[table.name] = self._describe(probe, TableFile(table, path, fmt))

    @staticmethod
    def _describe(con: duckdb.DuckDBPyConnection, tf: TableFile) -> TableFile:
        # An empty file is not "no rows": a zero-byte tags file (a failed export
        # job) must not make every tagged photo eligible. A missing tags file is
        # "no tags"; a CSV header or a typed Parquet schema is a table without rows.
        text = tf.format in ("csv", "jsonl")
        first = f"{tf.path}, line 1" if text else str(tf.path)
        if tf.path.is_file() and tf.path.stat().st_size == 0:
            raise InputError("the file is empty (0 bytes)", where=first, fix=_empty_fix(tf.table))
        if text and (enc := sniff_encoding(tf.path)) is not None:
            raise InputError(
                f"the file is not UTF-8 (it looks like {enc})",
                where=first,
                fix=f"save it as UTF-8 (for example: iconv -f {enc} -t UTF-8), then run again",
            )
        if tf.format == "jsonl" and _blank(tf.path):
            raise InputError(
                "the file has no records (only blank lines)", where=first, fix=_empty_fix(tf.table)
            )
        if tf.format == "parquet":
            tf = TableFile(tf.table, tf.path, tf.format, part_types=_parquet_columns(con, tf))
        if tf.format == "csv":
            tf = TableFile(tf.table, tf.path, tf.format, csv_dialect=_csv_dialect(con, tf))
        if tf.format == "jsonl":
            scan = f"read_json({quote(str(tf.path))}, format='newline_delimited', sample_size=-1{JSON_LIMITS})"
        else:
            scan = tf.scan_sql()
        try:
            rows = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
            if tf.format == "csv":
                _csv_header(con, tf)
        except duckdb.Error as exc:
            raise tf.unreadable(exc) from None
        columns = {name: typ for name, typ, *_ in rows}
        if tf.format != "parquet":  # text formats are scanned as strings and cast by us
            columns = {name: "VARCHAR" for name in columns}
        missing = [c.name for c in tf.table.columns if c.required and c.name not in columns]
        if missing and tf.format != "parquet" and text_problem(tf.path, tf.format, tf.csv_dialect) is not None:
            raise tf.unreadable()  # a malformed line, not missing columns
        if missing:
            raise InputError(
                f"missing {plural(len(missing), 'column', 'columns')} {', '.join(missing)} (has: {', '.join(columns) or 'none'})",
                where=str(tf.path),
                fix=f"the '{tf.table.name}' table needs the columns "
                + ", ".join(c.name for c in tf.table.columns)
                + " (see CONTRACT §1)",
            )
        return TableFile(tf.table, tf.path, tf.format, columns, tf.part_types, tf.csv_dialect)

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
            # Only ISO 8601: DuckDB would also take 'epoch', 'infinity', '+25:00' or 'Europe/Berlin'.
            return (
                f"CASE WHEN regexp_matches(TRIM({src}), {quote(TIMESTAMP_RE)}) "
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
        attach(con, self.folder)
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
            for p in self.files[name].parts():
                st = p.stat()
                h.update(json.dumps([str(p.resolve()), st.st_size, st.st_mtime_ns]).encode())
        return h.hexdigest()
