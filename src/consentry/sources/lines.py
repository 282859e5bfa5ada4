"""Find things in text exports by physical line, as an editor shows them.

Only used on the error path: DuckDB reads the data fast but counts records,
not lines (blank lines, newlines inside quoted CSV fields) and is vague about
where a malformed line is. The one exception is `sniff_encoding`, which reads
the first few kilobytes of every text file before DuckDB does.
"""

from __future__ import annotations

import codecs
import csv
import json
from dataclasses import dataclass
from pathlib import Path

from .store import open_path

#: The longest CSV record or JSON line consentry reads, the same for both (DuckDB's
#: read_csv stops at 2 MB by default, read_json at 16 MB): a post with a long text
#: must not be accepted as JSONL and refused as CSV. The CSV reader's buffer is
#: twice this, which is DuckDB's default buffer (16 x 2 MB), so memory stays as it was.
MAX_RECORD_BYTES = 16 << 20

csv.field_size_limit(MAX_RECORD_BYTES)


@dataclass(frozen=True)
class Found:
    line: int
    problem: str
    column: str | None = None
    fix: str | None = None


def sniff_encoding(path: Path) -> str | None:
    """'UTF-16' or 'UTF-32' when the file plainly is (a byte order mark, or NUL
    bytes in every second or fourth position); None when it may be UTF-8."""
    with open_path(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    if len(head) >= 8 and head.count(0) * 4 >= len(head):
        by4 = [head[k::4].count(0) for k in range(4)]
        if sum(1 for n in by4 if n * 4 >= len(head) // 4 * 3) == 3:
            return "UTF-32"
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if max(even, odd) * 4 >= len(head) // 2 and min(even, odd) * 4 < len(head) // 2:
            return "UTF-16"
    return None


def utf8_problem(path: Path) -> Found | None:
    """The first line that is not UTF-8, with the offending bytes."""
    with open_path(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = raw[exc.start : exc.start + 4][: max(1, exc.end - exc.start)]
                guess = sniff_encoding(path)
                looks = guess or "Windows-1252 or Latin-1"
                return Found(
                    lineno,
                    f"the file is not UTF-8 (it looks like {looks}): byte {bad.hex(' ').upper()} "
                    f"at byte {exc.start + 1} of the line",
                    fix=f"save it as UTF-8 (for example: iconv -f {guess or 'WINDOWS-1252'} -t UTF-8), then run again",
                )
    return None


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def jsonl_problem(path: Path) -> Found | None:
    """The first line that is not a JSON object, or names a key twice, with what is wrong."""
    with open_path(path, encoding="utf-8-sig", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line, object_pairs_hook=_pairs)
            except _DuplicateKey as exc:
                return Found(
                    lineno,
                    f"the key '{exc.key}' is there twice in one record; which one counts would be a guess",
                    column=exc.key,
                    fix=f"keep one '{exc.key}' in every record",
                )
            except json.JSONDecodeError as exc:
                return Found(lineno, f"not valid JSON ({exc.msg}, character {exc.pos + 1})")
            if not isinstance(value, dict):
                return Found(
                    lineno, f"a JSON {type(value).__name__}, not an object; each line must be one record {{...}}"
                )
    return None


#: (delimiter, quote, escape) of a CSV file, as DuckDB's sniffer found them; None: comma, '"', '"'.
Dialect = tuple[str, str, str] | None


def _csv_reader(fh, dialect: Dialect):  # noqa: ANN001, ANN202 - a text file; a csv reader
    """Python's csv reader over `fh`, splitting records as DuckDB does for `dialect`."""
    if dialect is None:
        return csv.reader(fh)
    delimiter, quote, escape = dialect
    kw: dict = {"delimiter": delimiter or ","}
    if not quote:
        kw["quoting"] = csv.QUOTE_NONE
    else:
        kw["quotechar"] = quote
    if escape and escape != quote:
        kw.update(escapechar=escape, doublequote=False)
    return csv.reader(fh, **kw)


def csv_problem(path: Path, dialect: Dialect = None) -> Found | None:
    """The first record whose number of fields differs from the header's."""
    limit = f"a field is longer than {MAX_RECORD_BYTES >> 20} MiB, the most consentry reads"
    with open_path(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = _csv_reader(fh, dialect)
        try:
            header = next(reader)
        except StopIteration:
            return Found(1, "the file is empty; it needs at least a header line")
        except csv.Error as exc:
            return Found(1, limit if "field larger" in str(exc) else f"cannot be read as CSV ({exc})")
        start = reader.line_num + 1
        try:
            for record in reader:
                if record and len(record) != len(header):
                    return Found(start, f"has {len(record)} fields, the header has {len(header)}")
                if sum(len(f) for f in record) > MAX_RECORD_BYTES:
                    return Found(start, limit.replace("a field is", "the record is"))
                start = reader.line_num + 1
        except csv.Error as exc:
            if "field larger" in str(exc):
                return Found(start, limit, fix="shorten that value, or export it as a media file")
            return Found(start, f"cannot be read as CSV ({exc})")
    return None


def record_line(path: Path, fmt: str, n: int, dialect: Dialect = None) -> int:
    """The physical line where data record n (1-based) starts."""
    if fmt == "jsonl":
        seen = 0
        with open_path(path, encoding="utf-8-sig", errors="replace") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    seen += 1
                    if seen == n:
                        return lineno
        return n
    with open_path(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = _csv_reader(fh, dialect)
        next(reader, None)
        start = reader.line_num + 1
        for k, record in enumerate(reader, start=1):
            if k == n:
                return start
            start = reader.line_num + 1
    return n + 1


def text_problem(path: Path, fmt: str, dialect: Dialect = None) -> Found | None:
    """The first malformed line of a text file (`dialect`: a CSV file's, as `csv_problem`)."""
    if fmt not in ("jsonl", "csv"):
        return None
    if (found := utf8_problem(path)) is not None:
        return found
    if fmt == "jsonl":
        return jsonl_problem(path) or long_line(path)
    return csv_problem(path, dialect) or mixed_line_endings(path, (dialect[1] if dialect else '"') or '"')


def mixed_line_endings(path: Path, quote: str = '"') -> Found | None:
    """The first record that ends otherwise than the first one (CRLF against LF):
    Python's csv reads such a file, DuckDB's sniffer refuses it whole. Quoted
    newlines inside a field do not count (the quotes are followed)."""
    first: bytes | None = None
    quoted = False
    with open_path(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            quoted ^= raw.count(quote.encode()) % 2 == 1
            if quoted or not raw.endswith(b"\n"):
                continue
            ending = b"\r\n" if raw.endswith(b"\r\n") else b"\n"
            if first is None:
                first = ending
            elif ending != first:
                name = {b"\r\n": "CRLF (Windows)", b"\n": "LF (Unix)"}
                return Found(lineno, f"ends with {name[ending]} where the lines before end with {name[first]}: "
                             "mixed line endings, which the CSV reader refuses",
                             fix=f"write every line ending as {name[first]}, e.g. with dos2unix or unix2dos")
    return None


def long_line(path: Path) -> Found | None:
    """The first line longer than MAX_RECORD_BYTES (DuckDB stops at such a line)."""
    with open_path(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if len(raw) > MAX_RECORD_BYTES:
                return Found(
                    lineno,
                    f"the line is longer than {MAX_RECORD_BYTES >> 20} MiB, the most consentry reads",
                    fix="shorten that value, or export it as a media file",
                )
    return None
