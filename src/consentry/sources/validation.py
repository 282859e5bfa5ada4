"""Refuse a bad export before any decision is made, naming file, column, row and fix.

All checks are set operations in the engine: one scan per table for the
per-value checks, one join per reference. Examples (with row numbers) are
looked up only when a check fails, so a clean 20M-item export costs a few
scans. The checks are one SQL text for both engines but for a `Dialect`;
`Checker` runs them (`DuckChecker` here, `engine.spark_validate` on Spark).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from ..errors import ExportInvalid, InputError
from ..policy.model import KNOWN_KINDS
from ..policy.regions import COUNTRY_CODES
from ..sqltext import quote, spark_quote
from ..ids import UNCLEAN_ID_RE, unclean
from ..timeutil import SUB_MICRO_RE
from ..words import agree, count
from .export import JSON_LIMITS, NULL_TYPE, Export, TableFile
from .schema import Column
from .store import StorePath, attach

LANGUAGE_RE = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"
CONTROL_RE = r"\p{Cc}"
#: Birth dates before this are typing errors (year 1, 1800), not people: they would make someone an adult.
EARLIEST_BIRTH = date(1900, 1, 1)
MAX_PROBLEMS = 25


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines' SQL in the checks; the rest is one text."""

    name: str
    ident: Callable[[str], str]  # a column name, quoted
    lit: Callable[[str], str]  # a string literal
    text_type: str  # the type a value is cast to, to trim it
    regex: str  # `{x}` matches `{p}` somewhere in it (RE2 on DuckDB, Java's regex on Spark: the patterns here read the same)
    listed: str  # `{x}` is one of the literals `{values}` (a list look-up on DuckDB, an IN set on Spark)
    #: A nanosecond timestamp `{x}` (Parquet TIMESTAMP(NANOS)) is not a whole microsecond.
    #: (Spark reads such a column as its nanoseconds since 1970: `engine.spark_files.NANOS_CONF`.)
    sub_micro: str = "false"

    def find(self, x: str, pattern: str) -> str:
        return self.regex.format(x=x, p=self.lit(pattern))

    def one_of(self, x: str, values: list[str]) -> str:
        return self.listed.format(x=x, values=", ".join(self.lit(v) for v in values))


DUCKDB = Dialect("duckdb", lambda n: f'"{n}"', quote, "VARCHAR", "regexp_matches({x}, {p})", "list_contains([{values}], {x})",
                 "epoch_ns({x}) % 1000 <> 0")
SPARK = Dialect("spark", lambda n: f"`{n}`", spark_quote, "STRING", "({x} RLIKE {p})", "{x} IN ({values})",
                "{x} % 1000 <> 0")


@dataclass
class Problem:
    file: str
    column: str | None
    message: str
    fix: str
    example: str | None = None

    def render(self) -> str:
        return InputError(self.message, where=self.file, column=self.column, row=self.example, fix=self.fix).render()


@dataclass
class ValidationReport:
    folder: str
    rows: dict[str, int] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    validated_at: str = ""
    #: The rules it passed (`RULES`): a memo entry from older, looser rules is checked again.
    rules: str = ""


#: Raised whenever validation refuses more than before, so that `ValidationMemo` does not
#: trust an export that passed looser rules (a 'Public' visibility, a JSON false as email).
RULES = "2"


@dataclass(frozen=True)
class _ValueCheck:
    column: Column
    predicate: str  # SQL over the base relation; true = bad row
    message: str  # "{n} {row has|rows have} ...": `words.agree` with the count
    fix: str


_TYPE_OK = {
    "string": ("VARCHAR",),
    "country": ("VARCHAR",),
    "language": ("VARCHAR",),
    "timestamp": ("TIMESTAMP", "VARCHAR"),
    "date": ("DATE", "VARCHAR"),
}


def _type_ok(col: Column, read: str) -> bool:
    return any(read.upper().startswith(ok) for ok in _TYPE_OK[col.kind]) or read.upper() == NULL_TYPE


def _type_problems(tf: TableFile) -> list[Problem]:
    """A column of a type the contract does not allow. In a folder whose parts store
    columns in different types, each part is checked by its own types (an integer
    user_id in one part would otherwise read as text, and match no one), and the
    part is named."""
    problems = []
    for col in tf.table.columns:
        read = tf.columns.get(col.name)
        if read is None:
            continue
        where = tf.label
        if tf.part_types:
            bad = [(part, types[col.name]) for part, types in tf.part_types.items()
                   if col.name in types and not _type_ok(col, types[col.name])]
            if not bad:
                continue
            read = bad[0][1]
            if len(bad) < len(tf.part_types) or len({t for _, t in bad}) > 1:
                where = tf.label + tf.part_label(bad[0][0])
                if len(bad) > 1:
                    where += f" (and {count(len(bad) - 1, 'more part', 'more parts')})"
        elif _type_ok(col, read):
            continue
        want = {"timestamp": "timestamp (or ISO 8601 text)", "date": "date (or YYYY-MM-DD text)"}.get(
            col.kind, "string"
        )
        problems.append(
            Problem(
                where,
                col.name,
                f"has type {read}, expected {want}",
                f"write '{col.name}' as {want} in the export" + (" (in every part)" if where != tf.label else ""),
            )
        )
    return problems


def _value_checks(tf: TableFile, today: date, d: Dialect = DUCKDB) -> list[_ValueCheck]:
    checks: list[_ValueCheck] = []
    for col in tf.table.columns:
        if col.name not in tf.columns:
            continue
        raw = d.ident(f"raw__{col.name}")
        typed = d.ident(col.name)
        blank = f"({raw} IS NULL OR TRIM(CAST({raw} AS {d.text_type})) = '')"
        if col.not_null:
            checks.append(
                _ValueCheck(col, blank, "{n} {row has|rows have} no value", f"every row needs a '{col.name}'")
            )
        if col.kind in ("timestamp", "date"):
            shape = "2024-06-26T00:00:00Z" if col.kind == "timestamp" else "2006-06-26"
            checks.append(
                _ValueCheck(
                    col,
                    f"NOT {blank} AND {typed} IS NULL",
                    "{n} {value is|values are} not a valid " + ("ISO 8601 timestamp" if col.kind == "timestamp" else "date"),
                    # A required column cannot be left empty: the fix must not send the user to a second refusal.
                    f"write it like {shape}" + ("" if col.not_null else ", or leave it empty"),
                )
            )
        if col.kind == "timestamp":
            # consentry decides at microseconds; a finer time would be cut, not rounded: a post
            # 1 ns after the cut-off would read as made at it (rule 4 would not fire), a deletion
            # 1 ns after it as done at it (rule 5 would). No rounding is right for every rule (up
            # breaks content_since, down the cut-off), so such a time is refused.
            read = tf.columns[col.name].upper()
            finer = ""
            if read.startswith("TIMESTAMP") and read.endswith("_NS"):  # Parquet TIMESTAMP(NANOS)
                finer = f"{raw} IS NOT NULL AND {d.sub_micro.format(x=raw)}"
            elif not read.startswith("TIMESTAMP"):  # ISO 8601 text
                finer = f"NOT {blank} AND {typed} IS NOT NULL AND {d.find(raw, SUB_MICRO_RE)}"
            if finer:
                checks.append(
                    _ValueCheck(
                        col,
                        finer,
                        "{n} {value has|values have} a time finer than a microsecond, which consentry cannot keep: "
                        "cut to the microsecond, a time 1 ns after the cut-off would count as at the cut-off",
                        "write times to the microsecond at most (6 digits after the second, e.g. "
                        "2024-06-26T00:00:00.000001Z), rounded as the platform decides",
                    )
                )
        if col.kind == "date" and col.name == "birth_date":
            checks.append(
                _ValueCheck(
                    col,
                    f"{typed} IS NOT NULL AND ({typed} < DATE '{EARLIEST_BIRTH}' OR {typed} > DATE '{today}')",
                    "{n} {value is|values are} not a plausible birth date (before "
                    + f"{EARLIEST_BIRTH} or after today, {today})",
                    "correct the date, or leave it empty when unknown (the person is then of unknown age)",
                )
            )
        if col.identifier:
            checks.append(
                _ValueCheck(
                    col,
                    f"NOT {blank} AND {d.find(raw, UNCLEAN_ID_RE)}",
                    "{n} {value begins or ends|values begin or end} with white space or control characters, or {contains|contain} "
                    "control characters; ids are matched exactly, so {it|they} would not match the ledger or the other tables",
                    f"write every {col.name} exactly as the platform has it, without surrounding spaces, "
                    "tabs, line breaks or other control characters",
                )
            )
        elif col.name in ("email", "media_path"):
            # A line break in an address is a mail header; in a path, a file no one can name.
            checks.append(
                _ValueCheck(
                    col,
                    f"{raw} IS NOT NULL AND {d.find(raw, CONTROL_RE)}",
                    "{n} {value contains|values contain} a control character (NUL, a line break, a tab, ...)",
                    f"remove the control characters from {col.name}",
                )
            )
        elif col.kind == "string":
            # text may hold line breaks and tabs; NUL fits no database or file name.
            # (country and language refuse control characters by their own format.)
            checks.append(
                _ValueCheck(
                    col,
                    f"{raw} IS NOT NULL AND contains({raw}, chr(0))",
                    "{n} {value contains|values contain} the control character NUL, which no database or snapshot can hold",
                    f"remove the NUL characters from {col.name}",
                )
            )
        if col.kind == "country":
            checks.append(
                _ValueCheck(
                    col,
                    f"{typed} IS NOT NULL AND NOT {d.one_of(typed, _COUNTRIES)}",
                    "{n} {value is|values are} not an ISO 3166-1 alpha-2 country code",
                    "use two-letter codes such as DE, GB, US, or leave it empty when unknown",
                )
            )
        if col.kind == "language":
            checks.append(
                _ValueCheck(
                    col,
                    f"NOT {blank} AND NOT {d.find(f'TRIM({typed})', LANGUAGE_RE)}",
                    "{n} {value is|values are} not a BCP 47 language tag",
                    "use tags such as nl, de, en or pt-BR, or leave it empty",
                )
            )
        if col.name in _SPELLED:
            known, fix = _SPELLED[col.name]
            # Matched exactly (rule 1 and the policies' kinds; rule 3's 'public'): another
            # spelling of a contract value would silently not be it ('Public' is not public,
            # 'Private_Message' not a private message). The platform's own values are kept,
            # but surrounding white space matches no policy either.
            norm = f"lower(replace(replace(trim({raw}), '-', '_'), ' ', '_'))"
            checks.append(
                _ValueCheck(
                    col,
                    f"NOT {blank} AND NOT {d.one_of(raw, known)} AND "
                    f"({d.find(raw, UNCLEAN_ID_RE)} OR {d.one_of(norm, known)})",
                    "{n} {value is|values are} written otherwise than the contract writes {it|them} (another case, "
                    "surrounding white space, '-' or a space for '_'): " + col.name + " is matched exactly, so "
                    + ("a 'Private_Message' would not be kept out as a private message and a 'Photo' is no photo"
                       if col.name == "kind" else "a 'Public' item is not public"),
                    fix,
                )
            )
        if col.name == "media_path":
            checks += _media_checks(col, typed, d)
    return checks


#: Columns whose contract values are matched exactly: (the contract's values, fix).
_SPELLED = {
    "kind": (list(KNOWN_KINDS), "write kind exactly as the contract does, in lower case: " + ", ".join(KNOWN_KINDS)
             + "; the platform's own kinds (video, reel, ...) without surrounding spaces"),
    "visibility": (["public", "friends", "private"], "write visibility exactly as the contract does, in lower "
                   "case: public, friends, private; the platform's own values without surrounding spaces"),
}

#: A '..' segment of a path ('/' or, as Windows reads it, '\\' between segments): it leads out.
_DOTDOT_RE = r"(^|[/\\])[.][.]([/\\]|$)"


def _media_checks(col: Column, p: str, d: Dialect) -> list[_ValueCheck]:
    """media_path names a file under the export's media/ folder (CONTRACT §1), with '/'
    between folders. Three refusals, each row under one: a path that leads out of the
    folder; a backslash; any other path not under media/ (another table, the folder
    media/ itself, a URL, a drive letter, './media/...', an empty text). A '..' inside a
    name (media/my..photo.jpg) is a name, not a way out."""
    example = "e.g. media/1234.jpg"
    leaves = f"(left({p}, 1) = '/' OR left({p}, 1) = {d.lit(chr(92))} OR {d.find(p, _DOTDOT_RE)})"
    backslash = f"contains({p}, {d.lit(chr(92))})"
    under = f"(left({p}, 6) = 'media/' AND length({p}) > 6 AND right({p}, 1) <> '/')"
    return [
        _ValueCheck(
            col,
            f"{p} IS NOT NULL AND {leaves}",
            "{n} {path leaves|paths leave} the export folder",
            f"media_path is relative to the export folder, {example}, without '..'",
        ),
        _ValueCheck(
            col,
            f"{p} IS NOT NULL AND NOT {leaves} AND {backslash}",
            "{n} {path contains|paths contain} a backslash, which is not a path separator in the contract "
            "(it would be part of a file name)",
            f"write media_path with '/' between folders, {example}",
        ),
        _ValueCheck(
            col,
            f"{p} IS NOT NULL AND NOT {leaves} AND NOT {backslash} AND NOT {under}",
            "{n} {path is|paths are} not under media/: media_path names a file in the export's media/ folder",
            f"write the file's path inside the export, {example}, or leave it empty when the item has no image",
        ),
    ]


class Checker:
    """Runs the checks' SQL on one engine: the rules above are the same text on
    either. `rows` runs a query; `base(tf)` is a table file as a relation with
    each column raw (`raw__<name>`) and in its contract type; `first` finds the
    first rows matching a predicate, with where an editor finds them."""

    dialect: Dialect = DUCKDB

    def rows(self, sql: str) -> list[tuple]:
        raise NotImplementedError

    def base(self, tf: TableFile) -> str:
        raise NotImplementedError

    def first(self, tf: TableFile, predicate: str, columns: list[str], limit: int = 1) -> list[tuple[str, tuple]]:
        raise NotImplementedError

    def register(self) -> None:
        """Views users, content and tags in the contract's types."""
        raise NotImplementedError

    def screen(self, tf: TableFile) -> None:
        """Raise what `tf.unreadable` says of a file the engine reads without
        complaint but DuckDB refuses (Spark takes a duplicate JSON key, a bad
        UTF-8 byte or an over-long line silently). Nothing to do on DuckDB."""

    def count(self, sql: str) -> int:
        return int(self.rows(sql)[0][0])

    def json_types(self, tf: TableFile) -> list[Problem]:
        """The values of a JSONL file that are not JSON strings (or null): read as
        text they would be their JSON text (false -> 'false', {"en": ..} -> '{"en":..}').
        The engines read JSONL columns as text, which no longer tells "false" from
        false; this reads the file with DuckDB, on this machine, for either engine."""
        con = duckdb.connect()
        try:
            attach(con, tf.path)
            return _json_type_problems(con, tf)
        finally:
            con.close()


class DuckChecker(Checker):
    """The checks in DuckDB, in this process."""

    def __init__(self, export: Export, con: duckdb.DuckDBPyConnection) -> None:
        self.export, self.con = export, con

    def rows(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def base(self, tf: TableFile, *, numbered: bool = False) -> str:
        cols = []
        for col in tf.table.columns:
            cols.append(f'{self.export.raw_expr(tf, col)} AS "raw__{col.name}"')
            cols.append(f'{self.export.typed_expr(tf, col)} AS "{col.name}"')
        if numbered:
            cols.insert(0, "row_number() OVER () AS __row")
        return f"SELECT {', '.join(cols)} FROM {tf.scan_sql()}"

    def first(self, tf: TableFile, predicate: str, columns: list[str], limit: int = 1) -> list[tuple[str, tuple]]:
        cols = ", ".join(f'"{c}"' for c in columns) or "NULL"
        found = self.rows(f"SELECT __row, {cols} FROM ({self.base(tf, numbered=True)}) WHERE {predicate} "
                          f"ORDER BY __row LIMIT {int(limit)}")
        return [(tf.row_label(r[0]), tuple(r[1:])) for r in found]

    def register(self) -> None:
        self.export.register(self.con)

    def json_types(self, tf: TableFile) -> list[Problem]:
        return _json_type_problems(self.con, tf)


_COUNTRIES = sorted(COUNTRY_CODES)


def _json_type_problems(con: duckdb.DuckDBPyConnection, tf: TableFile) -> list[Problem]:
    """Every contract column of a JSONL table holds strings (CONTRACT §1): a number,
    true/false, an object or an array is a wrong type, refused with its line, as a
    Parquet column of the wrong type is. One scan of the file, its columns as JSON."""
    names = [c.name for c in tf.table.columns if c.name in tf.columns]
    if tf.format != "jsonl" or not names:
        return []
    spec = ", ".join(f"{quote(c)}: 'JSON'" for c in tf.columns)
    scan = f"read_json({quote(str(tf.path))}, format='newline_delimited', columns={{{spec}}}{JSON_LIMITS})"

    def bad(c: str) -> str:
        return f"json_type(\"{c}\") NOT IN ('VARCHAR', 'NULL')"

    found = con.execute("SELECT " + ", ".join(f"count(*) FILTER (WHERE {bad(c)})" for c in names)
                        + f" FROM {scan}").fetchone()
    problems = []
    key = tf.table.columns[0].name
    for c, n in zip(names, found):
        if not n:
            continue
        row, ident, value = con.execute(
            f'SELECT __row, "{key}", "{c}" FROM (SELECT row_number() OVER () AS __row, "{key}", "{c}" FROM {scan}) '
            f"WHERE {bad(c)} ORDER BY __row LIMIT 1").fetchone()
        shown = (f"{key}={ident}, " if c != key else "") + f"{c}={value}"
        col = tf.table.column(c)
        like = {"timestamp": ' like "2024-06-26T00:00:00Z"', "date": ' like "2006-06-26"'}.get(col.kind, "")
        problems.append(Problem(
            tf.label, c,
            agree("{n} {value is|values are} not text but a JSON number, true/false, object or array; the "
                  "column is a string (CONTRACT §1), and {it|they} would be read as {its|their} JSON text", n),
            f"write '{c}' as a JSON string{like}, or null",
            f"{tf.row_label(row)}: {shown}",
        ))
    return problems


def _example(ck: Checker, tf: TableFile, predicate: str, column: str) -> str | None:
    """The first offending row, by its number, with its id and the bad value."""
    names = [tf.table.columns[0].name] + ([column] if column != tf.table.columns[0].name else [])
    found = ck.first(tf, predicate, [f"raw__{n}" for n in names])
    if not found:
        return None
    where, values = found[0]
    shown = ", ".join(f"{n}={json.dumps(v, default=str)}" for n, v in zip(names, values))
    return f"{where}: {shown}"


def validate(export: Export, con: duckdb.DuckDBPyConnection | None = None) -> ValidationReport:
    """Check everything CONTRACT §1 requires; raise ExportInvalid listing each problem."""
    own = con is None
    con = con or duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        attach(con, export.folder)
        return check(export, DuckChecker(export, con))
    except duckdb.Error as exc:
        raise InputError(
            f"could not be read: {str(exc).splitlines()[0]}",
            where=str(export.folder),
            fix="check that every table file is complete and in its format",
        ) from None
    finally:
        if own:
            con.close()


def check(export: Export, ck: Checker,
          unreadable: type[Exception] | tuple[type[Exception], ...] = duckdb.Error) -> ValidationReport:
    """Every check of CONTRACT §1 on `ck`'s engine; raise ExportInvalid listing
    each problem. (`unreadable`: the engine's error for a file it cannot read.)"""
    problems: list[Problem] = []
    for tf in export.files.values():
        problems += _type_problems(tf)
    for tf in export.files.values():
        if tf.format == "jsonl" and not problems:
            try:
                problems += ck.json_types(tf)
            except duckdb.Error as exc:
                raise tf.unreadable(exc) from None
    if problems:
        raise ExportInvalid(problems)

    d = ck.dialect
    report = ValidationReport(folder=str(export.folder))
    today = datetime.now(UTC).date()
    links = _links(export.folder)
    for name, tf in export.files.items():
        checks = _value_checks(tf, today, d)
        aggs = ", ".join(f"count(*) FILTER (WHERE {c.predicate})" for c in checks) or "0"
        try:
            ck.screen(tf)
            row = ck.rows(f"SELECT count(*), {aggs} FROM ({ck.base(tf)}) b")[0]
        except unreadable as exc:
            raise tf.unreadable(exc) from None
        report.rows[name] = int(row[0])
        report.formats[name] = tf.format
        for c, n in zip(checks, row[1:]):
            if n:
                problems.append(Problem(tf.label, c.column.name, agree(c.message, n), c.fix,
                                        _example(ck, tf, c.predicate, c.column.name)))
    # Value problems do not stop the key checks: one run reports everything.
    ck.register()
    problems += _link_problems(ck, export, links)
    problems += _uniqueness(ck, export)
    problems += _references(ck, export)
    if problems:
        raise ExportInvalid(problems[:MAX_PROBLEMS])
    report.fingerprint = export.fingerprint()
    report.rules = RULES
    report.validated_at = datetime.now(UTC).isoformat(timespec="seconds")
    return report


def _links(folder: Path | StorePath) -> list[str]:
    """Every symbolic link inside the export (tables, parts, media, folders), as a
    path relative to it. One directory listing per folder; d_type, no stat per file.
    (An object store has none: its keys are objects.)"""
    if isinstance(folder, StorePath):
        return []
    found: list[str] = []
    stack = [str(folder)]
    while stack:
        here = stack.pop()
        try:
            with os.scandir(here) as entries:
                for entry in entries:
                    if entry.is_symlink():
                        found.append(os.path.relpath(entry.path, folder))
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError as exc:
            raise InputError(
                f"cannot be listed ({exc.strerror})", where=here, fix="make the export folder readable, then run again"
            ) from None
    return sorted(found)


def _link_problems(ck: Checker, export: Export, links: list[str]) -> list[Problem]:
    """An export holds its files: a link can point anywhere (another export, /etc), and
    a snapshot build would copy whatever it points to. The export folder itself may be a link."""
    if not links:
        return []
    fix = "copy the file into the export folder instead of linking to it"

    def shown(rel: str) -> str:
        return f"{rel} -> {os.readlink(export.folder / rel)}"

    problems: list[Problem] = []
    covered: set[str] = set()
    for tf in export.files.values():
        rel = os.path.relpath(tf.path, export.folder)
        inside = [link for link in links if link == rel or link.startswith(rel + os.sep)]
        if inside:
            covered.update(inside)
            problems.append(Problem(tf.label, None, f"is or holds a symbolic link ({shown(inside[0])})", fix))
    tf = export.files["content"]
    d = ck.dialect
    listed = "(VALUES " + ", ".join(f"({d.lit(link.replace(os.sep, '/'))})" for link in links) + ") AS l(x)"
    media = d.ident("media_path")

    def under(x: str) -> str:
        return f"({media} = {x} OR left({media}, length({x}) + 1) = {x} || '/')"

    pred = f"EXISTS (SELECT 1 FROM {listed} WHERE {under('l.x')})"
    n = ck.count(f"SELECT count(*) FROM content WHERE {pred}")
    if n:
        used = [r[0] for r in ck.rows(f"SELECT DISTINCT l.x FROM {listed} WHERE EXISTS (SELECT 1 FROM content WHERE {under('l.x')})")]
        covered.update(u.replace("/", os.sep) for u in used)
        problems.append(
            Problem(
                tf.label,
                "media_path",
                f"{count(n, 'media file is a symbolic link or lies', 'media files are symbolic links or lie')} in a linked folder ({shown(min(used))})",
                fix,
                _example(ck, tf, pred, "media_path"),
            )
        )
    rest = [link for link in links if link not in covered]
    if rest:
        more = f" and {len(rest) - 1} more" if len(rest) > 1 else ""
        problems.append(
            Problem(str(export.folder / rest[0]), None, f"is a symbolic link ({shown(rest[0])}){more}", fix)
        )
    return problems


_UNIQUE = (("users", "user_id"), ("users", "handle"), ("content", "item_id"))


def _uniqueness(ck: Checker, export: Export) -> list[Problem]:
    """One query counts the repeated values of every unique column; only a
    column with some is looked at again, for its examples."""
    problems = []
    d = ck.dialect

    def repeated(table: str, c: str) -> str:
        return f"SELECT {c} FROM {table} WHERE {c} IS NOT NULL GROUP BY {c} HAVING count(*) > 1"

    totals = ck.rows("SELECT " + ", ".join(f"(SELECT count(*) FROM ({repeated(t, d.ident(c))}) x{i})"
                                           for i, (t, c) in enumerate(_UNIQUE)))[0]
    for (table, column), total in zip(_UNIQUE, totals):
        if not total:
            continue
        tf = export.files[table]
        c = d.ident(column)
        dupes = ck.rows(f"SELECT {c}, count(*) AS n FROM {table} WHERE {c} IS NOT NULL "
                        f"GROUP BY {c} HAVING count(*) > 1 ORDER BY n DESC, {c} LIMIT 3")
        value = dupes[0][0]
        where = ", ".join(w for w, _ in ck.first(tf, f"{c} = {d.lit(value)}", [], limit=3))
        problems.append(
            Problem(
                tf.label,
                column,
                f"{count(total, 'value occurs', 'values occur')} more than once; {column} must be unique",
                f"keep one row per {column} (merge or drop the duplicates)",
                f"{column}={json.dumps(value)} appears {dupes[0][1]} times: {where}",
            )
        )
    return problems


#: (table, column, target table, target column, what to do)
_REFERENCES = (
    ("content", "user_id", "users", "user_id", "add the author to users, or drop their items"),
    ("content", "parent_id", "content", "item_id", "export the parent item too, or leave parent_id empty"),
    ("tags", "item_id", "content", "item_id", "drop tags of items that are not in the export"),
    ("tags", "tagged_user_id", "users", "user_id", "add the tagged person to users, or drop the tag"),
)


def _references(ck: Checker, export: Export) -> list[Problem]:
    """One query counts the dangling references of every kind; only a kind
    with some is looked at again, for an example."""
    problems = []
    d = ck.dialect
    refs = [r for r in _REFERENCES if r[0] in export.files]

    def dangling(table: str, column: str, target: str, target_col: str) -> str:
        c, t = d.ident(column), d.ident(target_col)
        return f"SELECT s.{c} FROM {table} s LEFT JOIN {target} t ON s.{c} = t.{t} WHERE s.{c} IS NOT NULL AND t.{t} IS NULL"

    if not refs:
        return []
    counts = ck.rows("SELECT " + ", ".join(f"(SELECT count(*) FROM ({dangling(*r[:4])}) x{i})" for i, r in enumerate(refs)))[0]
    for (table, column, target, target_col, fix), n in zip(refs, counts):
        if not n:
            continue
        tf = export.files[table]
        value = ck.rows(f"{dangling(table, column, target, target_col)} LIMIT 1")[0][0]
        example = _example(ck, tf, f"{d.ident(column)} = {d.lit(value)}", column)
        message = f"{count(n, 'row has', 'rows have')} a {column} that matches no {target_col} in {export.files[target].label}"
        if unclean(value):
            message += " (this one begins or ends with white space or control characters; ids are matched exactly)"
            fix = (
                f"write every {column} exactly as the platform has it, "
                "without surrounding spaces or control characters"
            )
        problems.append(Problem(tf.label, column, message, fix, example))
    return problems


# -- the "already validated" memo ------------------------------------------------


class ValidationMemo:
    """Remembers exports that passed, by fingerprint, so `evaluate` does not
    re-scan 100M rows for duplicates each run. Any change to a file re-validates."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def get(self, export: Export) -> ValidationReport | None:
        entry = self._load().get(export.fingerprint())
        if not entry or entry.get("rules") != RULES:
            return None
        return ValidationReport(**{k: v for k, v in entry.items() if k in ValidationReport.__dataclass_fields__})

    def put(self, report: ValidationReport) -> None:
        data = self._load()
        data[report.fingerprint] = report.__dict__
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.path)


def open_export(
    folder: str | Path | Export, *, memo: ValidationMemo | None = None, con: duckdb.DuckDBPyConnection | None = None,
    check: Callable[[Export], ValidationReport] | None = None,
) -> tuple[Export, ValidationReport, bool]:
    """Open (unless given an `Export`) and validate, or trust the memo. Returns
    (export, report, was_cached). `check` validates on another engine
    (`engine.spark_validate.validate_spark` bound to a session); the rules,
    and so the memo, are the same."""
    export = folder if isinstance(folder, Export) else Export(folder)
    if memo is not None and (cached := memo.get(export)) is not None:
        export.report = cached
        return export, cached, True
    report = check(export) if check is not None else validate(export, con)
    if memo is not None:
        memo.put(report)
    export.report = report
    return export, report, False


def valid_export(export: Export, memo: ValidationMemo | None = None,
                 check: Callable[[Export], ValidationReport] | None = None) -> Export:
    """`export`, validated unless it was (by `open_export`; `check` as there):
    deciding over an export the contract refuses (a duplicate user_id, a tag
    naming no one) gives wrong decisions without a word. Raises ExportInvalid."""
    if export.report is not None:
        # Validated once, by the caller maybe long ago: its files may have changed since (a refresh the
        # contract refuses would be decided over as if it were the one checked). Then read it anew.
        try:
            same = export.report.fingerprint == export.fingerprint()
        except (OSError, InputError):
            same = False
        if not same:
            export = type(export)(export.folder)
    if export.report is None:
        open_export(export, memo=memo, check=check)
    return export
