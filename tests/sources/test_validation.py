"""Every refusal of bad input (CONTRACT §1, §2 and the policies of §4): the export's
tables in each format, the ledger's JSONL import and policy files.

A refusal must say where (file, column, an example row or line that an editor
finds), what is wrong, and how to fix it, and must leave nothing half-done: no
file written into the export, no validation memo entry, no ledger event.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from consentry.errors import InputError, PolicyError
from consentry.policy import load_policy, preset_text
from consentry.policy.regions import EEA, EU
from consentry.sources import Export, ExportInvalid, ValidationMemo, open_export, validate
from exportkit import base_content, base_tags, base_users, item, user, write_export

FORMATS = ["parquet", "jsonl", "csv"]
TEXT_FORMATS = ["jsonl", "csv"]


# -- helpers -------------------------------------------------------------------------------




def make(
    folder: Path,
    fmt: str,
    users: list[dict] | None = None,
    content: list[dict] | None = None,
    tags: list[dict] | None = None,
) -> Path:
    return write_export(
        folder,
        base_users() if users is None else users,
        base_content() if content is None else content,
        base_tags() if tags is None else tags,
        fmt=fmt,
    )


def row_label(fmt: str, n: int) -> str:
    """Where an editor finds data row n: the header is line 1 of a CSV file."""
    return {"csv": f"row {n} (line {n + 1})", "jsonl": f"line {n}", "parquet": f"row {n}"}[fmt]


def refusal(folder: Path) -> InputError:
    """Open and validate; the refusal it must raise."""
    with pytest.raises(InputError) as info:
        validate(Export(folder))
    return info.value


def the_problem(exc: InputError, file: str, column: str) -> str:
    """The rendered text of the one problem about file/column (the whole text must hold it too)."""
    assert isinstance(exc, ExportInvalid), f"expected ExportInvalid, got {type(exc).__name__}: {exc}"
    found = [p for p in exc.problems if p.file == file and p.column == column]
    assert len(found) == 1, f"no single problem for {file}/{column} in:\n{exc}"
    text = found[0].render()
    assert text in str(exc)
    return text


def assert_names(text: str, file: str, column: str, example: str | None) -> None:
    assert file in text
    assert f"column '{column}'" in text
    if example is not None:
        assert f"example: {example}" in text, text
    assert "fix:" in text


def replace_parquet_column(path: Path, name: str, array: pa.Array) -> None:
    t = pq.read_table(path)
    t = t.set_column(t.schema.get_field_index(name), name, array)
    pq.write_table(t, path)


def drop_column(path: Path, fmt: str, name: str) -> None:
    if fmt == "parquet":
        pq.write_table(pq.read_table(path).drop([name]), path)
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for r in rows:
            r.pop(name)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        i = rows[0].index(name)
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerows([r[:i] + r[i + 1 :] for r in rows])


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


# -- a valid export ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_export_has_the_right_row_counts(tmp_path, fmt):
    folder = make(tmp_path / "x", fmt)
    report = validate(Export(folder))
    assert report.rows == {"users": 3, "content": 3, "tags": 1}
    assert report.formats == {"users": fmt, "content": fmt, "tags": fmt}
    assert report.fingerprint and report.validated_at


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_tags_file_means_no_tags(tmp_path, fmt):
    folder = make(tmp_path / "x", fmt)
    (folder / f"tags.{fmt}").unlink()
    export = Export(folder)
    assert "tags" not in export.files
    report = validate(export)
    assert report.rows == {"users": 3, "content": 3}
    con = duckdb.connect()
    export.register(con)
    assert con.execute("SELECT count(*) FROM tags").fetchone()[0] == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_tags_table_means_no_tags(tmp_path, fmt):
    # CSV: the header line only; Parquet: a typed table without rows. JSONL has no
    # header: a zero-byte file is refused (test_malformed_exports), so no tags
    # means no tags file.
    folder = make(tmp_path / "x", fmt, tags=[])
    report = validate(Export(folder))
    if fmt == "jsonl":
        assert not (folder / "tags.jsonl").exists()
        assert report.rows == {"users": 3, "content": 3}
    else:
        assert report.rows == {"users": 3, "content": 3, "tags": 0}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_views_have_the_contract_types_and_utc_values(tmp_path, fmt):
    """Offsets are honoured (01:00+02:00 is 23:00Z the day before) and every view
    column has its contract type, whatever the format."""
    folder = make(
        tmp_path / "x",
        fmt,
        users=[user("u1", birth_date="2006-06-26", created_at="2015-01-01T05:00:00+02:00"), user("u2")],
        content=[item("i1", "u1", created_at="2024-06-26T01:00:00+02:00"), item("i2", "u2")],
        tags=[{"item_id": "i1", "tagged_user_id": "u2"}],
    )
    export = Export(folder)
    validate(export)
    con = duckdb.connect()
    export.register(con)
    types = {name: typ for name, typ, *_ in con.execute("DESCRIBE users").fetchall()}
    assert types["birth_date"] == "DATE"
    assert types["created_at"] == "TIMESTAMP"
    assert types["deleted_at"] == "TIMESTAMP"
    got = con.execute("SELECT CAST(created_at AS VARCHAR) FROM content WHERE item_id = 'i1'").fetchone()[0]
    assert got == "2024-06-25 23:00:00"
    got = con.execute(
        "SELECT CAST(created_at AS VARCHAR), CAST(birth_date AS VARCHAR) FROM users WHERE user_id = 'u1'"
    ).fetchone()
    assert got == ("2015-01-01 03:00:00", "2006-06-26")


# -- missing and doubled files ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("table", ["users", "content"])
def test_missing_table_file_is_refused(tmp_path, fmt, table):
    folder = make(tmp_path / "x", fmt)
    (folder / f"{table}.{fmt}").unlink()
    with pytest.raises(InputError) as info:
        Export(folder)
    msg = str(info.value)
    assert str(folder) in msg
    assert f"'{table}' is missing" in msg
    assert f"fix: add {table}.parquet, {table}.jsonl or {table}.csv" in msg


@pytest.mark.parametrize("table, misnamed, fix", [
    ("content", "contents.csv", "rename contents.csv to content.csv"),
    ("users", "Users.csv", "rename Users.csv to users.csv"),
    ("tags", "tag.csv", "rename tag.csv to tags.csv, or remove it if the platform has no tags"),
    ("tags", "TAGS.CSV", "rename TAGS.CSV to tags.csv, or remove it if the platform has no tags"),
    ("tags", "tags.json", "write tags.json as tags.parquet, .jsonl or .csv, or remove it if the platform has no tags"),
])
def test_a_misnamed_table_file_is_named_and_a_misnamed_tags_file_is_not_no_tags(tmp_path, table, misnamed, fix):
    """A README walk-through: contents.csv gave only "the table 'content' is
    missing"; and a misnamed tags file passed for "no tags", so that no tagged
    person would have been checked."""
    folder = make(tmp_path / "x", "csv")
    (folder / f"{table}.csv").rename(folder / misnamed)
    with pytest.raises(InputError) as info:
        Export(folder)
    msg = str(info.value)
    assert f"the table '{table}' is missing, but {misnamed} looks like it" in msg and f"fix: {fix}" in msg, msg
    (folder / misnamed).unlink()
    if table == "tags":
        assert "tags" not in Export(folder).files  # no file at all: no tags, as before


def test_missing_export_folder_is_refused(tmp_path):
    with pytest.raises(InputError) as info:
        Export(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)
    assert "fix:" in str(info.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_table_in_two_formats_is_refused(tmp_path, fmt):
    folder = make(tmp_path / "x", fmt)
    other = {"parquet": "csv", "jsonl": "parquet", "csv": "jsonl"}[fmt]
    make(tmp_path / "other", other)
    shutil.copy(tmp_path / "other" / f"users.{other}", folder / f"users.{other}")
    with pytest.raises(InputError) as info:
        Export(folder)
    msg = str(info.value)
    assert "'users' is there 2 times" in msg
    assert f"users.{fmt}" in msg and f"users.{other}" in msg
    assert str(folder) in msg
    assert "fix:" in msg


def test_table_as_file_and_as_folder_of_parts_is_refused(tmp_path):
    folder = make(tmp_path / "x", "parquet")
    (folder / "content").mkdir()
    shutil.copy(folder / "content.parquet", folder / "content" / "part-0.parquet")
    with pytest.raises(InputError) as info:
        Export(folder)
    assert "'content' is there 2 times" in str(info.value)
    assert "content.parquet" in str(info.value)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "table,column", [("users", "handle"), ("users", "created_at"), ("content", "kind"), ("tags", "tagged_user_id")]
)
def test_missing_column_is_refused_naming_it_and_the_file(tmp_path, fmt, table, column):
    folder = make(tmp_path / "x", fmt)
    path = folder / f"{table}.{fmt}"
    drop_column(path, fmt, column)
    with pytest.raises(InputError) as info:
        Export(folder)
    msg = str(info.value)
    assert str(path) in msg
    head = msg.split("(has:")[0]
    assert re.search(rf"missing column {column}\b", head), msg  # one column: not "column(s)"
    assert "fix:" in msg


# -- unreadable files ----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "not parquet at all"])
def test_corrupt_parquet_is_refused_naming_the_file(tmp_path, damage):
    folder = make(tmp_path / "x", "parquet")
    path = folder / "content.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"hello, I am a CSV file\n")
    with pytest.raises(InputError) as info:
        validate(Export(folder))
    msg = str(info.value)
    assert str(path) in msg
    assert "PARQUET" in msg.upper()
    assert "fix:" in msg
    assert "Traceback" not in msg


@pytest.mark.parametrize(
    "bad",
    ['{"item_id": "i9", "user_id": ', '{"item_id": "i9" "user_id": "u1"}', "not json at all"],
    ids=["truncated", "missing comma", "not json"],
)
def test_malformed_jsonl_is_refused_naming_file_and_line(tmp_path, bad):
    folder = make(tmp_path / "x", "jsonl")
    path = folder / "content.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(2, bad)  # line 3
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        validate(Export(folder))
    msg = str(info.value)
    assert str(path) in msg
    assert "fix:" in msg
    assert re.search(r"\bline 3\b", msg), msg
    assert not re.search(r"\bline 4\b", msg), f"names the wrong line:\n{msg}"


def test_jsonl_line_that_is_not_an_object_is_refused_naming_the_line(tmp_path):
    folder = make(tmp_path / "x", "jsonl")
    path = folder / "content.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(1, "[1, 2, 3]")  # line 2
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        validate(Export(folder))
    msg = str(info.value)
    assert str(path) in msg or "content.jsonl" in msg
    assert re.search(r"\bline 2\b", msg), msg
    assert "missing column" not in msg, f"blames columns that are all there:\n{msg}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "where",
    [
        pytest.param(
            "near the top",
        ),
        pytest.param(
            "far down",
        ),
    ],
)
def test_csv_row_with_wrong_number_of_fields_is_refused_naming_file_and_line(tmp_path, where):
    n = 3 if where == "near the top" else 60_000
    folder = make(tmp_path / "x", "csv", content=[item(f"i{k}", "u1") for k in range(1, n + 1)])
    path = folder / "content.csv"
    lines = path.read_text().splitlines()
    bad_line = 3 if where == "near the top" else n
    lines.insert(bad_line - 1, "x,y,z")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        validate(Export(folder))
    msg = str(info.value)
    assert "content.csv" in msg, msg
    assert "missing column" not in msg, f"blames columns that are all there:\n{msg}"
    assert re.search(rf"\bline {bad_line}\b", msg), msg


# -- wrong types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table,column,array,shown",
    [
        ("users", "user_id", pa.array([1, 2, 3], pa.int64()), "BIGINT"),
        ("users", "birth_date", pa.array([0, 0, 0], pa.timestamp("us")), "TIMESTAMP"),
        ("users", "country", pa.array([49, 49, 1], pa.int32()), "INTEGER"),
        ("content", "item_id", pa.array([1, 2, 3], pa.int64()), "BIGINT"),
        ("content", "created_at", pa.array([1_600_000_000, 1_600_000_001, 1_600_000_002], pa.int64()), "BIGINT"),
        ("tags", "tagged_user_id", pa.array([1], pa.int64()), "BIGINT"),
    ],
    ids=["users.user_id int64", "users.birth_date timestamp", "users.country int32", "content.item_id int64",
         "content.created_at int64", "tags.tagged_user_id int64"],
)
def test_wrong_parquet_type_is_refused(tmp_path, table, column, array, shown):
    folder = make(tmp_path / "x", "parquet")
    replace_parquet_column(folder / f"{table}.parquet", column, array)
    exc = refusal(folder)
    text = the_problem(exc, f"{table}.parquet", column)
    assert_names(text, f"{table}.parquet", column, None)
    assert f"has type {shown}" in text


# -- values ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "table,column",
    [
        ("content", "item_id"),
        ("content", "user_id"),
        ("content", "kind"),
        ("content", "visibility"),
        ("content", "created_at"),
        ("users", "user_id"),
        ("users", "created_at"),
        ("tags", "item_id"),
        ("tags", "tagged_user_id"),
    ],
)
def test_null_in_required_column_is_refused(tmp_path, fmt, table, column):
    users, content, tags = base_users(), base_content(), base_tags()
    if table == "content":
        content.append({**item("i4", "u1"), column: None})
        n = 4
    elif table == "users":
        users.append({**user("u4"), column: None})
        n = 4
    else:
        tags.append({"item_id": "i1", "tagged_user_id": "u2", column: None})
        n = 2
    folder = make(tmp_path / "x", fmt, users, content, tags)
    text = the_problem(refusal(folder), f"{table}.{fmt}", column)
    assert_names(text, f"{table}.{fmt}", column, row_label(fmt, n))
    assert f"{column}=null" in text
    assert "1 row has no value" in text  # it said "1 row(s) have no value"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", TEXT_FORMATS)
@pytest.mark.parametrize("value", ["   ", ""])
def test_blank_text_counts_as_null_in_required_column(tmp_path, fmt, value):
    folder = make(tmp_path / "x", fmt, content=base_content() + [item("i4", "u1", kind=value)])
    text = the_problem(refusal(folder), f"content.{fmt}", "kind")
    assert_names(text, f"content.{fmt}", "kind", row_label(fmt, 4))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", TEXT_FORMATS)
@pytest.mark.parametrize(
    "table,column",
    [("content", "created_at"), ("content", "deleted_at"), ("users", "created_at"), ("users", "deleted_at")],
)
def test_unparseable_timestamp_is_refused(tmp_path, fmt, table, column):
    users, content = base_users(), base_content()
    if table == "content":
        content.append(item("i4", "u1", **{column: "26/06/2024 10:00"}))
    else:
        users.append(user("u4", **{column: "26/06/2024 10:00"}))
    folder = make(tmp_path / "x", fmt, users, content)
    text = the_problem(refusal(folder), f"{table}.{fmt}", column)
    assert_names(text, f"{table}.{fmt}", column, row_label(fmt, 4))
    assert '"26/06/2024 10:00"' in text
    assert "not a valid ISO 8601 timestamp" in text
    # A README walk-through: the fix said "or leave it empty" for required columns, which are then refused as empty.
    assert ("or leave it empty" in text) == (column == "deleted_at"), text


@pytest.mark.slow
@pytest.mark.parametrize(
    "value",
    [
        "not a time",
        "2024-02-30T00:00:00Z",
        "yesterday",
        "20240626T000000",
        "2024-06-26T25:00:00Z",
        pytest.param(
            "epoch",
        ),
        "infinity",
        "-infinity",
    ],
)
def test_unparseable_timestamp_values(tmp_path, value):
    folder = make(tmp_path / "x", "csv", content=base_content() + [item("i4", "u1", created_at=value)])
    text = the_problem(refusal(folder), "content.csv", "created_at")
    assert_names(text, "content.csv", "created_at", "row 4 (line 5)")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", TEXT_FORMATS)
@pytest.mark.parametrize(
    "value",
    [
        "31/12/1990",
        "1990-02-30",
        "not a date",
        "epoch",
        "infinity",
        "-infinity",
    ],
)
def test_unparseable_date_is_refused(tmp_path, fmt, value):
    folder = make(tmp_path / "x", fmt, users=base_users() + [user("u4", birth_date=value)])
    text = the_problem(refusal(folder), f"users.{fmt}", "birth_date")
    assert_names(text, f"users.{fmt}", "birth_date", row_label(fmt, 4))
    assert "not a valid date" in text
    assert json.dumps(value) in text


@pytest.mark.slow
def test_parquet_string_timestamp_that_does_not_parse_is_refused(tmp_path):
    folder = make(tmp_path / "x", "parquet")
    replace_parquet_column(
        folder / "content.parquet",
        "created_at",
        pa.array(["2020-01-01T00:00:00Z", "2020-01-01T00:00:00+02:00", "sometime in 2020"]),
    )
    text = the_problem(refusal(folder), "content.parquet", "created_at")
    assert_names(text, "content.parquet", "created_at", 'row 3: item_id="i3", created_at="sometime in 2020"')


def test_parquet_string_timestamps_that_parse_are_accepted(tmp_path):
    folder = make(tmp_path / "x", "parquet")
    replace_parquet_column(
        folder / "content.parquet",
        "created_at",
        pa.array(["2020-01-01T00:00:00Z", "2020-01-01T00:00:00+02:00", "2020-01-01 12:00:00"]),
    )
    assert validate(Export(folder)).rows["content"] == 3


@pytest.mark.slow
def test_parquet_string_date_that_does_not_parse_is_refused(tmp_path):
    folder = make(tmp_path / "x", "parquet")
    replace_parquet_column(folder / "users.parquet", "birth_date", pa.array(["1990-01-01", "31/12/1990", None]))
    text = the_problem(refusal(folder), "users.parquet", "birth_date")
    assert_names(text, "users.parquet", "birth_date", 'row 2: user_id="u2", birth_date="31/12/1990"')


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("value", ["ZZ", "Germany", "DEU", "EU"])
def test_unknown_country_code_is_refused(tmp_path, fmt, value):
    folder = make(tmp_path / "x", fmt, users=base_users() + [user("u4", country=value)])
    text = the_problem(refusal(folder), f"users.{fmt}", "country")
    assert_names(text, f"users.{fmt}", "country", f'{row_label(fmt, 4)}: user_id="u4", country={json.dumps(value)}')


@pytest.mark.parametrize("fmt", FORMATS)
def test_country_codes_are_case_insensitive_and_may_be_empty(tmp_path, fmt):
    folder = make(tmp_path / "x", fmt, users=base_users() + [user("u4", country="de"), user("u5", country=None)])
    assert validate(Export(folder)).rows["users"] == 5


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("value", ["not a tag", "english!", "e", "en_US"])
def test_bad_language_tag_is_refused(tmp_path, fmt, value):
    folder = make(tmp_path / "x", fmt, users=base_users() + [user("u4", language=value)])
    text = the_problem(refusal(folder), f"users.{fmt}", "language")
    assert_names(text, f"users.{fmt}", "language", f'{row_label(fmt, 4)}: user_id="u4", language={json.dumps(value)}')


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_good_language_tags_are_accepted(tmp_path, fmt):
    users = base_users() + [user("u4", language="pt-BR"), user("u5", language="nl"), user("u6", language=None)]
    assert validate(Export(make(tmp_path / "x", fmt, users=users))).rows["users"] == 6


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("path", ["../x.jpg", "/etc/passwd", "media/../../x.jpg", "media\\..\\x.jpg"])
def test_media_path_escaping_the_folder_is_refused(tmp_path, fmt, path):
    folder = make(tmp_path / "x", fmt, content=base_content() + [item("i4", "u1", kind="photo", media_path=path)])
    text = the_problem(refusal(folder), f"content.{fmt}", "media_path")
    example = f'{row_label(fmt, 4)}: item_id="i4", media_path={json.dumps(path)}'
    assert_names(text, f"content.{fmt}", "media_path", example)
    assert "1 path leaves the export folder" in text  # it said "1 path(s) leave"


# -- uniqueness and references ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("column", ["user_id", "handle"])
def test_duplicate_in_users_is_refused(tmp_path, fmt, column):
    dup = user("u1", handle="other") if column == "user_id" else user("u4", handle="u1")
    folder = make(tmp_path / "x", fmt, users=base_users() + [dup])
    text = the_problem(refusal(folder), f"users.{fmt}", column)
    assert_names(text, f"users.{fmt}", column, None)
    assert f'{column}="u1" appears 2 times: {row_label(fmt, 1)}, {row_label(fmt, 4)}' in text
    assert "must be unique" in text


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_item_id_is_refused(tmp_path, fmt):
    folder = make(tmp_path / "x", fmt, content=base_content() + [item("i2", "u3")])
    text = the_problem(refusal(folder), f"content.{fmt}", "item_id")
    assert_names(text, f"content.{fmt}", "item_id", None)
    assert f'item_id="i2" appears 2 times: {row_label(fmt, 2)}, {row_label(fmt, 4)}' in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_null_handles_are_not_duplicates(tmp_path, fmt):
    users = base_users() + [user("u4", handle=None), user("u5", handle=None)]
    assert validate(Export(make(tmp_path / "x", fmt, users=users))).rows["users"] == 5


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "table,column,target",
    [
        ("content", "user_id", "users"),
        ("content", "parent_id", "content"),
        ("tags", "item_id", "content"),
        ("tags", "tagged_user_id", "users"),
    ],
)
def test_dangling_reference_is_refused(tmp_path, fmt, table, column, target):
    content, tags = base_content(), base_tags()
    if table == "content":
        content.append(item("i4", "ghost") if column == "user_id" else item("i4", "u1", parent_id="ghost"))
        example = f'{row_label(fmt, 4)}: item_id="i4", {column}="ghost"'
    else:
        if column == "item_id":
            tags.append({"item_id": "ghost", "tagged_user_id": "u1"})
        else:
            tags.append({"item_id": "i1", "tagged_user_id": "ghost"})
        example = f'{row_label(fmt, 2)}: item_id="{"ghost" if column == "item_id" else "i1"}"'
    folder = make(tmp_path / "x", fmt, content=content, tags=tags)
    text = the_problem(refusal(folder), f"{table}.{fmt}", column)
    assert_names(text, f"{table}.{fmt}", column, example)
    assert f"1 row has a {column} that matches no" in text and f"{target}.{fmt}" in text


# -- row numbers an editor finds ---------------------------------------------------------------------


@pytest.mark.slow
def test_jsonl_line_numbers_count_blank_lines(tmp_path):
    folder = make(tmp_path / "x", "jsonl")
    path = folder / "content.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(1, "")  # a blank line 2
    lines.append(json.dumps(item("i4", "u1", created_at="garbage")))  # line 5
    path.write_text("\n".join(lines) + "\n")
    text = the_problem(refusal(folder), "content.jsonl", "created_at")
    assert "example: line 5:" in text, text


@pytest.mark.slow
def test_csv_line_numbers_count_newlines_inside_quoted_fields(tmp_path):
    content = [
        item("i1", "u1", text="first line\nsecond line\nthird line"),
        item("i2", "u2"),
        item("i3", "u3", created_at="garbage"),
    ]
    folder = make(tmp_path / "x", "csv", content=content)
    # header on line 1, i1 on lines 2-4, i2 on line 5, i3 on line 6
    assert (folder / "content.csv").read_text().splitlines()[5].startswith("i3,")
    text = the_problem(refusal(folder), "content.csv", "created_at")
    assert "example: row 3 (line 6):" in text, text


# -- several problems at once ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_several_value_problems_are_reported_together(tmp_path, fmt):
    users = base_users() + [user("u4", country="ZZ"), user("u5", language="??")]
    content = base_content() + [item("i4", "u1", kind=None), item("i5", "u1", media_path="../../etc/shadow")]
    folder = make(tmp_path / "x", fmt, users=users, content=content)
    exc = refusal(folder)
    assert isinstance(exc, ExportInvalid)
    found = {(p.file, p.column) for p in exc.problems}
    assert found == {
        (f"users.{fmt}", "country"),
        (f"users.{fmt}", "language"),
        (f"content.{fmt}", "kind"),
        (f"content.{fmt}", "media_path"),
    }
    assert "(4 problems; nothing was imported)" in str(exc)
    assert str(exc).count("fix:") == 4


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_several_key_problems_are_reported_together(tmp_path, fmt):
    users = base_users() + [user("u1", handle="again"), user("u4", handle="u2")]
    content = base_content() + [item("i1", "u1"), item("i4", "ghost"), item("i5", "u1", parent_id="nope")]
    tags = base_tags() + [{"item_id": "nope", "tagged_user_id": "u1"}, {"item_id": "i1", "tagged_user_id": "ghost"}]
    folder = make(tmp_path / "x", fmt, users=users, content=content, tags=tags)
    exc = refusal(folder)
    assert isinstance(exc, ExportInvalid)
    assert {(p.file, p.column) for p in exc.problems} == {
        (f"users.{fmt}", "user_id"),
        (f"users.{fmt}", "handle"),
        (f"content.{fmt}", "item_id"),
        (f"content.{fmt}", "user_id"),
        (f"content.{fmt}", "parent_id"),
        (f"tags.{fmt}", "item_id"),
        (f"tags.{fmt}", "tagged_user_id"),
    }


@pytest.mark.slow
def test_value_and_key_problems_are_reported_together(tmp_path):
    users = base_users() + [user("u4", country="ZZ"), user("u1", handle="again")]
    content = base_content() + [item("i4", "ghost")]
    folder = make(tmp_path / "x", "csv", users=users, content=content)
    exc = refusal(folder)
    assert isinstance(exc, ExportInvalid)
    assert {(p.file, p.column) for p in exc.problems} == {
        ("users.csv", "country"),
        ("users.csv", "user_id"),
        ("content.csv", "user_id"),
    }


def test_type_problems_in_several_tables_are_reported_together(tmp_path):
    folder = make(tmp_path / "x", "parquet")
    replace_parquet_column(folder / "users.parquet", "user_id", pa.array([1, 2, 3], pa.int64()))
    replace_parquet_column(folder / "content.parquet", "created_at", pa.array([1, 2, 3], pa.int64()))
    exc = refusal(folder)
    found = {(p.file, p.column) for p in exc.problems}
    assert found == {("users.parquet", "user_id"), ("content.parquet", "created_at")}


# -- nothing half-imported, and the memo ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_validation_never_writes_into_the_export_folder(tmp_path, fmt):
    good = make(tmp_path / "good", fmt)
    bad = make(tmp_path / "bad", fmt, content=base_content() + [item("i1", "ghost")])
    before = {"good": snapshot(good), "bad": snapshot(bad)}
    memo = ValidationMemo(tmp_path / "home" / "validated.json")
    open_export(good, memo=memo)
    open_export(good, memo=memo)
    with pytest.raises(ExportInvalid):
        open_export(bad, memo=memo)
    assert {"good": snapshot(good), "bad": snapshot(bad)} == before


@pytest.mark.slow
def test_a_refused_export_leaves_no_memo_entry(tmp_path):
    memo = ValidationMemo(tmp_path / "home" / "validated.json")
    good = make(tmp_path / "good", "csv")
    bad = make(tmp_path / "bad", "csv", users=base_users() + [user("u1", handle="x")])
    with pytest.raises(ExportInvalid):
        open_export(bad, memo=memo)
    assert memo.get(Export(bad)) is None
    open_export(good, memo=memo)
    entries = json.loads(memo.path.read_text())
    assert list(entries) == [Export(good).fingerprint()]
    with pytest.raises(ExportInvalid):  # and the memo does not let it through on a second try
        open_export(bad, memo=memo)
    assert memo.get(Export(bad)) is None


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_memo_skips_an_unchanged_export_and_revalidates_a_changed_one(tmp_path, fmt):
    memo = ValidationMemo(tmp_path / "home" / "validated.json")
    folder = make(tmp_path / "x", fmt)
    _, first, cached = open_export(folder, memo=memo)
    assert not cached
    _, again, cached = open_export(folder, memo=memo)
    assert cached
    assert again.rows == first.rows == {"users": 3, "content": 3, "tags": 1}

    # same bytes, new mtime: validated again
    path = folder / f"content.{fmt}"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    _, _, cached = open_export(folder, memo=memo)
    assert not cached

    # new content (new size): validated again, with the new counts
    make(folder, fmt, content=base_content() + [item("i4", "u1")])
    _, report, cached = open_export(folder, memo=memo)
    assert not cached
    assert report.rows["content"] == 4
    _, _, cached = open_export(folder, memo=memo)
    assert cached


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_memo_never_hides_a_file_that_became_invalid(tmp_path, fmt):
    memo = ValidationMemo(tmp_path / "home" / "validated.json")
    folder = make(tmp_path / "x", fmt)
    open_export(folder, memo=memo)
    make(folder, fmt, content=base_content() + [item("i4", "ghost")])
    with pytest.raises(ExportInvalid) as info:
        open_export(folder, memo=memo)
    assert f"content.{fmt}, column 'user_id'" in str(info.value)


@pytest.mark.slow
def test_memo_revalidates_when_a_tags_file_appears(tmp_path):
    memo = ValidationMemo(tmp_path / "home" / "validated.json")
    folder = make(tmp_path / "x", "parquet")
    (folder / "tags.parquet").unlink()
    open_export(folder, memo=memo)
    make(tmp_path / "y", "parquet", tags=[{"item_id": "i1", "tagged_user_id": "ghost"}])
    shutil.copy(tmp_path / "y" / "tags.parquet", folder / "tags.parquet")
    with pytest.raises(ExportInvalid) as info:
        open_export(folder, memo=memo)
    assert "tags.parquet, column 'tagged_user_id'" in str(info.value)


# -- ledger JSONL import ---------------------------------------------------------------------------------

GOOD_EVENTS = [
    {"user_id": f"u{i}", "type": "notified", "at": "2024-01-01T00:00:00Z", "channel": "email"} for i in range(200)
]

BAD_LINES = {
    "bad json": ('{"user_id": "u1", "type": ', None, "not valid JSON"),
    "unknown type": (
        json.dumps({"user_id": "u1", "type": "subscribed", "at": "2024-01-01T00:00:00Z"}),
        "type",
        "'subscribed'",
    ),
    "unknown channel": (
        json.dumps({"user_id": "u1", "type": "objected", "at": "2024-01-01T00:00:00Z", "channel": "fax"}),
        "channel",
        "'fax'",
    ),
    "missing user_id": (json.dumps({"type": "objected", "at": "2024-01-01T00:00:00Z"}), "user_id", "required"),
    "bad at": (json.dumps({"user_id": "u1", "type": "objected", "at": "yesterday"}), "at", "'yesterday'"),
    "numeric at": (json.dumps({"user_id": "u1", "type": "objected", "at": 1719360000}), "at", "ISO 8601"),
    "rejection without note": (
        json.dumps({"user_id": "u1", "type": "objection_rejected", "at": "2024-01-01T00:00:00Z"}),
        None,
        "compelling grounds",
    ),
    "rejection with blank note": (
        json.dumps({"user_id": "u1", "type": "objection_rejected", "at": "2024-01-01T00:00:00Z", "note": "  "}),
        None,
        "compelling grounds",
    ),
    "unknown field": (
        json.dumps({"user_id": "u1", "type": "objected", "at": "2024-01-01T00:00:00Z", "reason": "no"}),
        "reason",
        "unknown field",
    ),
}


def _write_events(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.mark.parametrize("case", list(BAD_LINES))
@pytest.mark.parametrize("position", ["last", "second"])
def test_ledger_import_refuses_bad_line_and_writes_nothing(tmp_path, ledger, case, position):
    bad, column, words = BAD_LINES[case]
    lines = [json.dumps(e) for e in GOOD_EVENTS]
    lines.insert(len(lines) if position == "last" else 1, bad)
    lineno = len(lines) if position == "last" else 2
    path = _write_events(tmp_path / "events.jsonl", lines)
    with pytest.raises(InputError) as info:
        ledger.import_jsonl(path)
    msg = str(info.value)
    assert f"{path}, line {lineno}" in msg
    if column:
        assert f"column '{column}'" in msg
    assert words in msg
    assert "nothing was imported" in msg
    assert "fix:" in msg
    assert ledger.count() == 0
    assert ledger.watermark() == 0
    assert ledger.history("u0") == [] and ledger.state("u0") is None


def test_ledger_import_refusal_keeps_what_was_there(tmp_path, ledger):
    ok = _write_events(tmp_path / "ok.jsonl", [json.dumps(e) for e in GOOD_EVENTS[:3]])
    assert ledger.import_jsonl(ok).added == 3
    bad = _write_events(
        tmp_path / "bad.jsonl",
        [json.dumps(e) for e in GOOD_EVENTS[3:]] + [json.dumps({"user_id": "u1", "type": "nope", "at": "2024-01-01"})],
    )
    with pytest.raises(InputError):
        ledger.import_jsonl(bad)
    assert ledger.count() == 3 and ledger.watermark() == 3
    rest = _write_events(tmp_path / "rest.jsonl", [json.dumps(e) for e in GOOD_EVENTS])
    assert ledger.import_jsonl(rest).added == 197


def test_ledger_import_line_numbers_count_blank_lines(tmp_path, ledger):
    lines = [json.dumps(GOOD_EVENTS[0]), "", json.dumps(GOOD_EVENTS[1]), '{"user_id": "u1", "type": "objected"}']
    path = _write_events(tmp_path / "events.jsonl", lines)
    with pytest.raises(InputError) as info:
        ledger.import_jsonl(path)
    assert f"{path}, line 4, column 'at'" in str(info.value)
    assert ledger.count() == 0


def test_ledger_import_line_that_is_not_an_object(tmp_path, ledger):
    path = _write_events(tmp_path / "events.jsonl", [json.dumps(GOOD_EVENTS[0]), "[1, 2]"])
    with pytest.raises(InputError) as info:
        ledger.import_jsonl(path)
    assert f"{path}, line 2" in str(info.value)
    assert ledger.count() == 0


def test_ledger_import_of_a_missing_file(tmp_path, ledger):
    with pytest.raises(InputError) as info:
        ledger.import_jsonl(tmp_path / "nope.jsonl")
    assert str(tmp_path / "nope.jsonl") in str(info.value)
    assert "fix:" in str(info.value)


# -- policy files -------------------------------------------------------------------------------------------


def recommended() -> dict:
    """The built-in policy's rules, to edit, under a name of their own (an edited
    file may not pass for the built-in one)."""
    return {**yaml.safe_load(preset_text("recommended")), "name": "edited"}


def write_policy(tmp_path: Path, data: dict | str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def policy_error(path: Path) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy(str(path))
    msg = str(info.value)
    assert str(path) in msg
    return msg


def test_policy_yaml_syntax_error_names_its_line(tmp_path):
    lines = preset_text("recommended").splitlines()
    n = next(i for i, line in enumerate(lines, 1) if line.startswith("minimum_age:"))
    lines[n - 1] = "minimum_age: 18: 19"
    msg = policy_error(write_policy(tmp_path, "\n".join(lines) + "\n"))
    assert f"{tmp_path / 'policy.yaml'}, line {n}:" in msg
    assert "not valid YAML" in msg


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "42\n"])
def test_policy_that_is_not_a_mapping_is_refused(tmp_path, text):
    assert "mapping" in policy_error(write_policy(tmp_path, text))


def test_policy_with_private_message_in_kinds_is_refused(tmp_path):
    data = recommended()
    data["kinds"].append("private_message")
    msg = policy_error(write_policy(tmp_path, data))
    assert "kinds: private_message can never be used" in msg


@pytest.mark.parametrize(
    "where,path",
    [("jurisdiction", "jurisdictions[0].bogus"), ("top", "bogus")],
)
def test_policy_unknown_field_is_refused_with_its_path(tmp_path, where, path):
    data = recommended()
    (data["jurisdictions"][0] if where == "jurisdiction" else data)["bogus"] = 1
    msg = policy_error(write_policy(tmp_path, data))
    assert f"{path}: unknown field" in msg
    assert "fix:" in msg


def test_policy_with_two_default_jurisdictions_is_refused(tmp_path):
    data = recommended()
    data["jurisdictions"][0]["countries"] = ["*"]
    msg = policy_error(write_policy(tmp_path, data))
    assert "exactly one jurisdiction must have countries: ['*']" in msg
    assert "found 2" in msg


def test_policy_without_default_jurisdiction_is_refused(tmp_path):
    data = recommended()
    data["jurisdictions"].pop()
    assert "found 0" in policy_error(write_policy(tmp_path, data))


def test_policy_with_a_country_in_two_jurisdictions_is_refused(tmp_path):
    data = recommended()
    data["jurisdictions"].insert(
        1, {"name": "germany", "countries": ["DE"], "basis": "consent", "honour_objections": True, "notice_days": 30}
    )
    msg = policy_error(write_policy(tmp_path, data))
    assert "country DE is in both 'europe' and 'germany'" in msg


def test_policy_with_a_country_twice_in_one_jurisdiction_is_refused(tmp_path):
    data = recommended()
    data["jurisdictions"][0]["countries"] = ["EU", "DE"]
    assert "jurisdictions[0].countries: country listed twice: DE" in policy_error(write_policy(tmp_path, data))


def test_policy_with_an_unknown_country_code_is_refused(tmp_path):
    data = recommended()
    data["jurisdictions"][0]["countries"] = ["EEA", "GB", "CH", "XX"]
    msg = policy_error(write_policy(tmp_path, data))
    assert "jurisdictions[0].countries: unknown country code XX" in msg


def test_policy_with_a_duplicate_key_is_refused(tmp_path):
    text = preset_text("recommended").replace("minimum_age: 18\n", "minimum_age: 18\nminimum_age: 13\n")
    assert text.count("minimum_age:") == 2
    msg = policy_error(write_policy(tmp_path, text))
    assert "minimum_age" in msg


@pytest.mark.parametrize("group,codes", [("EU", EU), ("EEA", EEA)])
def test_policy_groups_expand(tmp_path, group, codes):
    data = recommended()
    data["jurisdictions"][0]["countries"] = [group]
    pol = load_policy(str(write_policy(tmp_path, data)))
    europe = pol.jurisdictions[0]
    assert sorted(europe.countries) == sorted(codes)
    assert len(europe.countries) == (27 if group == "EU" else 30)
    assert pol.jurisdiction_for("DE").name == "europe"
    assert pol.jurisdiction_for("NO").name == ("europe" if group == "EEA" else "rest_of_world")
    assert pol.jurisdiction_for("GB").name == "rest_of_world"


def test_policy_hash_is_stable_across_layout_and_changes_with_the_rules(tmp_path):
    base = load_policy("recommended").hash
    data = recommended()
    # different key order, comments, lower-case and reordered codes, reordered kinds and jurisdictions
    shuffled = {k: data[k] for k in reversed(list(data))}
    shuffled["kinds"] = list(reversed(data["kinds"]))
    shuffled["jurisdictions"] = [
        {
            **{k: j[k] for k in reversed(list(j))},
            "countries": [c.lower() if c != "*" else c for c in reversed(j["countries"])],
        }
        for j in reversed(data["jurisdictions"])
    ]
    text = "# my copy of the recommended policy\n" + yaml.safe_dump(shuffled, sort_keys=False).replace(
        "\nkinds:", "\n# which kinds\nkinds:"
    )
    assert load_policy(str(write_policy(tmp_path, text, "shuffled.yaml"))).hash == base
    renamed = {**data, "name": "ours", "description": "the same rules, another name"}
    assert load_policy(str(write_policy(tmp_path, renamed, "renamed.yaml"))).hash == base

    changes = {
        "notice": lambda d: d["jurisdictions"][0].__setitem__("notice_days", 31),
        "objections": lambda d: d["jurisdictions"][1].__setitem__("honour_objections", False),
        "basis": lambda d: d["jurisdictions"][1].__setitem__("basis", "consent"),
        "age": lambda d: d.__setitem__("minimum_age", 16),
        "kinds": lambda d: d["kinds"].append("video"),
        "tagged": lambda d: d.__setitem__("tagged_people", "blur"),
        "window": lambda d: d.__setitem__("content_since", "2020-01-01"),
        "country": lambda d: d["jurisdictions"][0]["countries"].remove("CH"),
    }
    hashes = {base}
    for name, change in changes.items():
        d = recommended()
        change(d)
        h = load_policy(str(write_policy(tmp_path, d, f"{name}.yaml"))).hash
        assert h != base, name
        hashes.add(h)
    assert len(hashes) == len(changes) + 1


def test_a_policy_file_may_not_pass_for_a_built_in_one(tmp_path):
    """A file named 'recommended' with other rules (notice 10 days, not 30) was
    accepted, and snapshot list, the report and the center's pages then said
    'recommended' over rules that were not."""
    data = yaml.safe_load(preset_text("recommended"))
    assert load_policy(str(write_policy(tmp_path, data, "same.yaml"))).hash == load_policy("recommended").hash
    data["jurisdictions"][0]["notice_days"] = 10
    msg = policy_error(write_policy(tmp_path, data, "edited.yaml"))
    assert "name: 'recommended' is a built-in policy's, and this file's rules differ from it" in msg
    assert load_policy(str(write_policy(tmp_path, {**data, "name": "recommended-10-days"}, "own.yaml"))).name == "recommended-10-days"
