"""Defects an export trial reproduced (a folder of Parquet parts read by its first
part's types, spellings of contract values, JSONL values that are not text,
media paths, times finer than a microsecond, semicolon CSV diagnostics): each
one refused with file, column, row and fix, or read right, never misread."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consentry.engine import decide
from consentry.errors import InputError
from consentry.ledger import Ledger
from consentry.policy import load_policy
from consentry.sources import Export, ExportInvalid, validate
from exportkit import base_content, base_tags, base_users, item, user, write_export

AT = datetime(2024, 6, 26, tzinfo=UTC)


def make(folder: Path, fmt: str = "parquet", users=None, content=None, tags=None) -> Path:
    write_export(folder, base_users() if users is None else users, base_content() if content is None else content,
                 base_tags() if tags is None else tags, fmt=fmt)
    (folder / "media").mkdir(exist_ok=True)
    (folder / "media" / "i2.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    return folder


def into_parts(folder: Path, table: str, parts: list[pa.Table]) -> Path:
    """Replace TABLE.parquet by a folder TABLE/ of the given parts."""
    (folder / f"{table}.parquet").unlink()
    (folder / table).mkdir()
    for i, t in enumerate(parts):
        pq.write_table(t, folder / table / f"part-{i:05d}.parquet")
    return folder


def setcol(t: pa.Table, name: str, arr: pa.Array) -> pa.Table:
    return t.set_column(t.column_names.index(name), name, arr)


def naive(t: pa.Table) -> pa.Table:
    """Timestamps as plain (naive, UTC by the contract) Parquet timestamps."""
    return pa.table([c.cast(pa.timestamp("us")) if pa.types.is_timestamp(f.type) else c
                     for f, c in zip(t.schema, t.columns)], names=t.column_names)


def as_text(t: pa.Table, name: str, values: list[str | None]) -> pa.Table:
    return setcol(t, name, pa.array(values, pa.string()))


def refusal(folder: Path) -> ExportInvalid:
    with pytest.raises(InputError) as info:
        validate(Export(folder))
    assert isinstance(info.value, ExportInvalid), f"{type(info.value).__name__}: {info.value}"
    return info.value


def problem(exc: ExportInvalid, column: str, says: str) -> str:
    found = [p.render() for p in exc.problems if p.column == column and says in p.render()]
    assert len(found) == 1, f"no single problem about {column} saying {says!r} in:\n{exc}"
    return found[0]


def view(folder: Path, sql: str) -> list[tuple]:
    export = Export(folder)
    validate(export)
    con = duckdb.connect()
    export.register(con)
    return con.execute(sql).fetchall()


def decisions(folder: Path, tmp_path: Path) -> dict[str, str]:
    export = Export(folder)
    validate(export)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        rows = decide(export, ledger, load_policy("recommended"), AT).fetchall()
    finally:
        ledger.close()
    return {r[0]: r[3] for r in rows}


# -- 1. a time-zone offset in one Parquet part ------------------------------------------------------


def _offset_parts(tmp_path: Path, late: str) -> Path:
    """content/ with part-00000 storing created_at as a timestamp and part-00001 as ISO text."""
    folder = make(tmp_path / "x", content=base_content() + [item("i4", "u1")])
    c = pq.read_table(folder / "content.parquet")
    a, b = naive(c.slice(0, 3)), c.slice(3)
    b = as_text(b, "created_at", [late])
    b = as_text(b, "deleted_at", [None])
    return into_parts(folder, "content", [a, b])


def test_offset_in_a_text_part_is_applied(tmp_path):
    folder = _offset_parts(tmp_path, "2024-06-25T22:00:00-05:00")  # 03:00Z, after the cut-off
    got = dict(view(folder, "SELECT item_id, created_at FROM content"))
    assert got["i4"] == datetime(2024, 6, 26, 3, 0)
    assert got["i1"] == datetime(2020, 1, 1)  # the typed part as before
    assert decisions(folder, tmp_path)["i4"] == "after_cutoff"


def test_zone_name_in_a_text_part_is_refused_as_in_a_single_file(tmp_path):
    folder = _offset_parts(tmp_path, "2024-06-25 22:00:00 Asia/Tokyo")
    text = problem(refusal(folder), "created_at", "not a valid ISO 8601 timestamp")
    assert "part-00001.parquet, row 1" in text and "row 4" in text, text
    assert '"2024-06-25 22:00:00 Asia/Tokyo"' in text and "2024-06-26T00:00:00Z" in text


def test_naive_and_zoned_timestamp_parts_are_each_read_as_utc(tmp_path):
    folder = make(tmp_path / "x", content=base_content() + [item("i4", "u1", created_at="2024-06-26T00:00:00.000001Z")])
    c = pq.read_table(folder / "content.parquet")
    into_parts(folder, "content", [naive(c.slice(0, 2)), c.slice(2)])
    got = dict(view(folder, "SELECT item_id, created_at FROM content"))
    assert got["i1"] == datetime(2020, 1, 1) and got["i4"] == datetime(2024, 6, 26, 0, 0, 0, 1)
    assert decisions(folder, tmp_path)["i4"] == "after_cutoff"


# -- 2. an all-null column of Arrow's null type in the first part ------------------------------------


def test_null_typed_column_in_the_first_part_is_accepted(tmp_path):
    folder = make(tmp_path / "x", users=base_users() + [user("u4", deleted_at="2020-01-01T00:00:00Z")],
                  content=base_content() + [item("i4", "u4")])
    u = pq.read_table(folder / "users.parquet")
    into_parts(folder, "users", [setcol(u.slice(0, 3), "deleted_at", pa.nulls(3)), u.slice(3)])
    got = dict(view(folder, "SELECT user_id, deleted_at FROM users"))
    assert got == {"u1": None, "u2": None, "u3": None, "u4": datetime(2020, 1, 1)}
    assert decisions(folder, tmp_path)["i4"] == "account_deleted"


# -- 3. type mismatches between parts --------------------------------------------------------------


def test_a_bad_date_text_part_gets_the_single_file_message(tmp_path):
    folder = make(tmp_path / "x")
    u = pq.read_table(folder / "users.parquet")
    b = as_text(u.slice(2), "birth_date", ["10/25/1985"])
    into_parts(folder, "users", [u.slice(0, 2), b])
    exc = refusal(folder)
    assert "Conversion Error" not in str(exc)
    text = problem(exc, "birth_date", "not a valid date")
    assert "users/" in text and "part-00001.parquet, row 1" in text and 'birth_date="10/25/1985"' in text, text
    assert "2006-06-26" in text


def test_an_integer_id_part_is_a_type_error_naming_the_part(tmp_path):
    folder = make(tmp_path / "x")
    c = pq.read_table(folder / "content.parquet")
    b = setcol(c.slice(2), "user_id", pa.array([3], pa.int64()))
    into_parts(folder, "content", [c.slice(0, 2), b])
    exc = refusal(folder)
    text = problem(exc, "user_id", "has type BIGINT")
    assert "content/part-00001.parquet" in text and "expected string" in text, text
    assert "matches no user_id" not in str(exc)


def test_text_date_parts_and_date_parts_agree(tmp_path):
    folder = make(tmp_path / "x")
    u = pq.read_table(folder / "users.parquet")
    into_parts(folder, "users", [u.slice(0, 2), as_text(u.slice(2), "birth_date", ["1985-10-25"])])
    got = dict(view(folder, "SELECT user_id, birth_date FROM users"))
    assert got == {"u1": date(1990, 1, 1), "u2": date(1990, 1, 1), "u3": date(1985, 10, 25)}


# -- 4. other spellings of the contract's kinds and visibilities ----------------------------------

ROW4 = {"csv": "row 4 (line 5)", "jsonl": "line 4", "parquet": "row 4"}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
@pytest.mark.parametrize("column,value", [
    ("visibility", "Public"), ("visibility", "PUBLIC"), ("visibility", " public"), ("visibility", "public\t"),
    ("visibility", "Friends"), ("kind", "Photo"), ("kind", "Private_Message"), ("kind", "PRIVATE_MESSAGE"),
    ("kind", "private message"), ("kind", "private-message"), ("kind", " reel"),
])
def test_other_spellings_of_contract_values_are_refused(tmp_path, fmt, column, value):
    folder = make(tmp_path / "x", fmt, content=base_content() + [item("i4", "u1", **{column: value})])
    exc = refusal(folder)
    text = problem(exc, column, "matched exactly")
    assert f"content.{fmt}" in text and f"{ROW4[fmt]}: item_id=\"i4\", {column}={json.dumps(value)}" in text, text
    assert "fix: write" in text and ("private_message" in text if column == "kind" else "public" in text)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_platforms_own_kinds_and_visibilities_are_kept(tmp_path, fmt):
    content = base_content() + [item("i4", "u1", kind="reel"), item("i5", "u1", kind="Video"),
                                item("i6", "u1", visibility="followers_only"), item("i7", "u1", visibility="friends")]
    assert validate(Export(make(tmp_path / "x", fmt, content=content))).rows["content"] == 7


# -- 5. JSONL values that are not text ---------------------------------------------------------------


@pytest.mark.parametrize("table,column,value", [
    ("content", "text", {"en": "hello", "de": "hallo"}),
    ("content", "visibility", {"value": "public"}),
    ("content", "deleted_at", False),
    ("content", "text", True),
    ("content", "user_id", 1),
    ("users", "email", False),
    ("users", "country", ["DE"]),
    ("users", "created_at", 1719410400000),
])
def test_jsonl_values_that_are_not_text_are_refused(tmp_path, table, column, value):
    folder = make(tmp_path / "x", "jsonl")
    path = folder / f"{table}.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    record[column] = value
    lines[1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    exc = refusal(folder)
    text = problem(exc, column, "not text")
    assert f"{table}.jsonl" in text and "example: line 2:" in text, text
    assert f"{column}={json.dumps(value, separators=(',', ':'))}" in text, text
    assert "JSON string" in text


def test_jsonl_nulls_and_strings_are_text(tmp_path):
    folder = make(tmp_path / "x", "jsonl", users=base_users() + [user("u4", email=None, birth_date=None)])
    assert validate(Export(folder)).rows["users"] == 4


# -- 6. media paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("path,says", [
    ("users.parquet", "not under media/"),
    ("media/", "not under media/"),
    ("file:///etc/passwd", "not under media/"),
    ("C:/Windows/x.jpg", "not under media/"),
    ("./media/i2.jpg", "not under media/"),
    ("media\\x.jpg", "backslash"),
    ("media/../users.parquet", "leaves the export folder"),
    ("/etc/passwd", "leaves the export folder"),
])
def test_media_paths_outside_media_are_refused(tmp_path, fmt, path, says):
    folder = make(tmp_path / "x", fmt, content=base_content() + [item("i4", "u1", kind="photo", media_path=path)])
    exc = refusal(folder)
    assert len([p for p in exc.problems if p.column == "media_path"]) == 1, str(exc)
    text = problem(exc, "media_path", says)
    assert f'{ROW4[fmt]}: item_id="i4", media_path={json.dumps(path)}' in text, text
    assert "media/1234.jpg" in text


@pytest.mark.parametrize("path", ["media/my..photo.jpg", "media/a/b..c/x.jpg", "media/my photo é.jpg"])
def test_legitimate_media_paths_are_accepted(tmp_path, path):
    folder = make(tmp_path / "x", content=base_content() + [item("i4", "u1", kind="photo", media_path=path)])
    assert validate(Export(folder)).rows["content"] == 4


# -- 7. times finer than a microsecond -----------------------------------------------------------------


def _ns_parquet(folder: Path, values: list[int], tz: str | None = "UTC", column: str = "created_at") -> Path:
    """content.parquet with `column` in nanoseconds since 1970 (row 4 is i4)."""
    make(folder, content=base_content() + [item("i4", "u1")])
    c = pq.read_table(folder / "content.parquet")
    pq.write_table(setcol(c, column, pa.array(values, pa.timestamp("ns", tz=tz))), folder / "content.parquet")
    return folder


T_NS = 1719360000 * 10**9  # 2024-06-26T00:00:00Z
OLD_NS = 1577836800 * 10**9  # 2020-01-01T00:00:00Z


@pytest.mark.parametrize("tz", ["UTC", None])
def test_a_nanosecond_after_the_cutoff_is_refused_not_cut(tmp_path, tz):
    folder = _ns_parquet(tmp_path / "x", [OLD_NS] * 3 + [T_NS + 1], tz)
    text = problem(refusal(folder), "created_at", "finer than a microsecond")
    assert "content.parquet" in text and 'row 4: item_id="i4"' in text and "fix:" in text, text


def test_whole_microseconds_in_nanosecond_parquet_are_accepted(tmp_path):
    folder = _ns_parquet(tmp_path / "x", [OLD_NS] * 3 + [T_NS + 1000])
    assert dict(view(folder, "SELECT item_id, created_at FROM content"))["i4"] == datetime(2024, 6, 26, 0, 0, 0, 1)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("column", ["created_at", "deleted_at"])
def test_sub_microsecond_text_is_refused(tmp_path, fmt, column):
    folder = make(tmp_path / "x", fmt, content=base_content() + [item("i4", "u1", **{column: "2024-06-26T00:00:00.0000001Z"})])
    text = problem(refusal(folder), column, "finer than a microsecond")
    assert f"content.{fmt}" in text and ROW4[fmt] in text, text


@pytest.mark.parametrize("value", ["2024-06-26T00:00:00.123456000Z", "2024-06-26T00:00:00.5+02:00", "2024-06-26"])
def test_microsecond_text_is_accepted(tmp_path, value):
    folder = make(tmp_path / "x", "csv", content=base_content() + [item("i4", "u1", created_at=value)])
    assert validate(Export(folder)).rows["content"] == 4


def test_sub_microsecond_in_a_part_of_mixed_types_is_refused(tmp_path):
    folder = make(tmp_path / "x", content=base_content() + [item("i4", "u1")])
    c = pq.read_table(folder / "content.parquet")
    ns = setcol(c.slice(3), "created_at", pa.array([T_NS + 1], pa.timestamp("ns")))
    into_parts(folder, "content", [as_text(c.slice(0, 3), "created_at", ["2020-01-01T00:00:00Z"] * 3), ns])
    text = problem(refusal(folder), "created_at", "finer than a microsecond")
    assert "part-00001.parquet, row 1" in text, text


# -- 8. semicolon-delimited CSV diagnostics -------------------------------------------------------------


def _semicolon(folder: Path, drop: str | None = None) -> Path:
    make(folder, "csv", content=[
        item("i1", "u1", text='Line one; with semicolon\nline two, "quoted"\nline three'),
        item("i2", "u2"), item("i3", "u3"), item("i4", "u1"), item("i5", "u1", created_at="yesterday"),
    ])
    for name in ("users", "content", "tags"):
        path = folder / f"{name}.csv"
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        if name == "content" and drop:
            k = rows[0].index(drop)
            rows = [r[:k] + r[k + 1:] for r in rows]
        with open(path, "w", newline="") as fh:
            csv.writer(fh, delimiter=";").writerows(rows)
    return folder


def test_semicolon_csv_problem_is_on_its_line(tmp_path):
    folder = _semicolon(tmp_path / "x")
    lines = (folder / "content.csv").read_text().splitlines()
    assert lines[7].startswith("i5;")  # header, i1 on lines 2-4, i2..i4 on 5-7, i5 on line 8
    text = problem(refusal(folder), "created_at", "not a valid ISO 8601 timestamp")
    assert "row 5 (line 8)" in text, text


def test_semicolon_csv_missing_column_is_named(tmp_path):
    folder = _semicolon(tmp_path / "x", drop="parent_id")
    with pytest.raises(InputError) as info:
        Export(folder)
    text = str(info.value)
    assert "missing column parent_id" in text and "content.csv" in text and "fields" not in text, text


# -- the memo: an export that passed looser rules is checked again --------------------------------------


def test_a_memo_entry_from_older_rules_is_not_trusted(tmp_path):
    from consentry.sources import ValidationMemo, open_export

    folder = make(tmp_path / "x")
    memo = ValidationMemo(tmp_path / "memo.json")
    open_export(folder, memo=memo)
    assert open_export(folder, memo=memo)[2] is True  # cached
    data = json.loads((tmp_path / "memo.json").read_text())
    for entry in data.values():
        del entry["rules"]  # as written before the rules above
    (tmp_path / "memo.json").write_text(json.dumps(data))
    assert open_export(folder, memo=memo)[2] is False
