"""Write small exports by hand, in any of the contract's formats, for tests."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from consentry.sources.schema import CONTENT, TAGS, USERS, Table

_ARROW = {
    "string": pa.string(),
    "country": pa.string(),
    "language": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def user(user_id: str, **kw) -> dict:
    row = {
        "user_id": user_id,
        "handle": kw.pop("handle", user_id),
        "email": f"{user_id}@example.org",
        "birth_date": "1990-01-01",
        "country": "DE",
        "language": "de",
        "created_at": "2015-01-01T00:00:00Z",
        "deleted_at": None,
    }
    row.update(kw)
    return row


def item(item_id: str, user_id: str, **kw) -> dict:
    row = {
        "item_id": item_id,
        "user_id": user_id,
        "kind": "post",
        "visibility": "public",
        "created_at": "2020-01-01T00:00:00Z",
        "deleted_at": None,
        "text": f"hello from {user_id}",
        "media_path": None,
        "parent_id": None,
    }
    row.update(kw)
    return row


def _parse(kind: str, value):
    if value is None or isinstance(value, (date, datetime)):
        return value
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "timestamp":
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def _write(folder: Path, table: Table, rows: list[dict], fmt: str) -> None:
    names = [c.name for c in table.columns]
    if fmt == "parquet":
        arrays = {
            c.name: pa.array([_parse(c.kind, r.get(c.name)) for r in rows], type=_ARROW[c.kind])
            for c in table.columns
        }
        pq.write_table(pa.table(arrays), folder / f"{table.name}.parquet")
    elif fmt == "jsonl":
        if not rows and table.optional:
            # JSONL has no header, so it cannot hold a table without rows, and an
            # empty file is refused: a platform without tags has no tags file.
            (folder / f"{table.name}.jsonl").unlink(missing_ok=True)
            return
        with open(folder / f"{table.name}.jsonl", "w") as fh:
            for r in rows:
                fh.write(json.dumps({n: r.get(n) for n in names}) + "\n")
    elif fmt == "csv":
        with open(folder / f"{table.name}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(names)
            for r in rows:
                w.writerow(["" if r.get(n) is None else r.get(n) for n in names])
    else:
        raise ValueError(fmt)


def write_export(
    folder: Path, users: list[dict], content: list[dict], tags: list[dict] | None = None, fmt: str = "parquet"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder, USERS, users, fmt)
    _write(folder, CONTENT, content, fmt)
    _write(folder, TAGS, tags or [], fmt)
    return folder


# -- the small valid export both validation suites start from and then break --------------


def base_users() -> list[dict]:
    return [user("u1"), user("u2"), user("u3", country="US", language="en")]


def base_content() -> list[dict]:
    return [
        item("i1", "u1"),
        item("i2", "u2", kind="photo", media_path="media/i2.jpg"),
        item("i3", "u3", kind="comment", parent_id="i1"),
    ]


def base_tags() -> list[dict]:
    return [{"item_id": "i2", "tagged_user_id": "u1"}]
