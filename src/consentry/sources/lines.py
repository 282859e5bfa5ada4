"""Find things in text exports by physical line, as an editor shows them.

Only used on the error path: DuckDB reads the data fast but counts records,
not lines (blank lines, newlines inside quoted CSV fields) and is vague about
where a malformed line is.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path


def jsonl_problem(path: Path) -> tuple[int, str] | None:
    """The first line that is not a JSON object, with what is wrong."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                return lineno, f"not valid JSON ({exc.msg}, character {exc.pos + 1})"
            if not isinstance(value, dict):
                return lineno, f"a JSON {type(value).__name__}, not an object; each line must be one record {{...}}"
    return None


def csv_problem(path: Path) -> tuple[int, str] | None:
    """The first record whose number of fields differs from the header's."""
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return 1, "the file is empty; it needs at least a header line"
        except csv.Error as exc:
            return 1, f"cannot be read as CSV ({exc})"
        start = reader.line_num + 1
        try:
            for record in reader:
                if record and len(record) != len(header):
                    return start, f"has {len(record)} fields, the header has {len(header)}"
                start = reader.line_num + 1
        except csv.Error as exc:
            return start, f"cannot be read as CSV ({exc})"
    return None


def record_line(path: Path, fmt: str, n: int) -> int:
    """The physical line where data record n (1-based) starts."""
    if fmt == "jsonl":
        seen = 0
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    seen += 1
                    if seen == n:
                        return lineno
        return n
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        start = reader.line_num + 1
        for k, record in enumerate(reader, start=1):
            if k == n:
                return start
            start = reader.line_num + 1
    return n + 1


def text_problem(path: Path, fmt: str) -> tuple[int, str] | None:
    if fmt == "jsonl":
        return jsonl_problem(path)
    if fmt == "csv":
        return csv_problem(path)
    return None
