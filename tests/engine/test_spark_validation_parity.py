"""Spark refuses exactly what DuckDB refuses (issue #13, point 2): `--engine spark`
validates the export with Spark's own reader and "the same validation rules as
DuckDB's". For each malformed (or tricky but valid) export below, both validators
refuse it with the same words (file, column, example row or line, fix), or both
accept it and read the same values and give the same decisions.

The cases are the export-trial defects DuckDB's validation was fixed for: Parquet
parts whose column types differ, semicolon- and tab-separated CSV, other
spellings of contract values, JSONL values that are not text, media paths, times
finer than a microsecond, all-null (null-typed) columns, CSV line numbers.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason="the Spark engine needs pyspark (pip install -e '.[test]')")
if shutil.which("java") is None:
    pytest.skip("the Spark engine needs Java 17 (apt-get install -y openjdk-17-jre-headless)", allow_module_level=True)

import test_export_trial_fixes as tf  # noqa: E402
from consentry.engine import decide  # noqa: E402
from consentry.engine.spark import decided, load_inputs, register_export, session  # noqa: E402
from consentry.engine.spark_validate import validate_spark  # noqa: E402
from consentry.errors import InputError  # noqa: E402
from consentry.ledger import Ledger  # noqa: E402
from consentry.policy import load_policy  # noqa: E402
from consentry.sources import Export, validate  # noqa: E402
from consentry.sources.lines import MAX_RECORD_BYTES  # noqa: E402
from consentry.sources.schema import TABLES  # noqa: E402
from exportkit import base_content, base_users, item, user  # noqa: E402
from test_spark import _refusal_text  # noqa: E402

pytestmark = pytest.mark.slow  # a Spark session, and Spark jobs for every case

AT = datetime(2024, 6, 26, tzinfo=UTC)
T_NS, OLD_NS = tf.T_NS, tf.OLD_NS

@pytest.fixture(scope="module")
def bucket(request):  # noqa: ANN001, ANN201
    """The test S3 server (conftest's `s3`), when there is one."""
    try:
        return request.getfixturevalue("s3")
    except pytest.skip.Exception:
        return None


@pytest.fixture(scope="module")
def spark(bucket):  # noqa: ANN001, ANN201
    """One session for the module (as test_spark's), its executors told where the bucket is."""
    conf = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}
    if bucket is not None:
        conf.update({f"spark.executorEnv.{k}": v for k, v in bucket.env.items()})
    s = session("local[2]", conf)
    yield s
    s.stop()


# -- the cases: each builds an export into a folder and returns it ------------------------------------

CASES: dict[str, Callable[[Path], Path]] = {}


def case(name: str) -> Callable[[Callable[[Path], Path]], Callable[[Path], Path]]:
    def register(build: Callable[[Path], Path]) -> Callable[[Path], Path]:
        assert name not in CASES
        CASES[name] = build
        return build

    return register


def _parts(folder: Path, table: str, *edits: Callable[[pa.Table], pa.Table], sizes: tuple[int, ...] = ()) -> Path:
    """TABLE.parquet as a folder of parts (`sizes` rows each, the rest in the last), part k edited by edits[k]."""
    t = pq.read_table(folder / f"{table}.parquet")
    cuts, start = [], 0
    for n in sizes:
        cuts.append(t.slice(start, n))
        start += n
    cuts.append(t.slice(start))
    return tf.into_parts(folder, table, [edit(p) for edit, p in zip(edits, cuts)])


def _same(t: pa.Table) -> pa.Table:
    return t


def _text_ts(name: str, values: list[str | None]) -> Callable[[pa.Table], pa.Table]:
    return lambda t: tf.as_text(t, name, values)


# 1. a folder of Parquet parts whose column types differ ------------------------------------------------


@case("parts: naive timestamp, then ISO text with an offset")
def _(folder: Path) -> Path:
    return tf._offset_parts(folder, "2024-06-25T22:00:00-05:00")  # 03:00Z: after the cut-off


@case("parts: zoned timestamp, then ISO text with an offset")
def _(folder: Path) -> Path:
    tf.make(folder, content=base_content() + [item("i4", "u1")])
    return _parts(folder, "content", _same, lambda t: tf.as_text(tf.as_text(t, "created_at", ["2024-06-25T22:00:00-05:00"]),
                                                                 "deleted_at", [None]), sizes=(3,))


@case("parts: ISO text with an offset, then zoned timestamps")
def _(folder: Path) -> Path:
    tf.make(folder, content=base_content() + [item("i4", "u1", created_at="2024-06-25T23:30:00Z")])
    return _parts(folder, "content", _text_ts("created_at", ["2024-06-25T19:00:00-05:00"]), _same, sizes=(1,))


@case("parts: ISO text without a zone, then zoned timestamps")
def _(folder: Path) -> Path:
    tf.make(folder, content=base_content() + [item("i4", "u1")])
    return _parts(folder, "content", _text_ts("created_at", ["2024-06-26 00:00:00.000001"]), _same, sizes=(1,))


@case("parts: naive timestamp, then ISO text with a zone name")
def _(folder: Path) -> Path:
    return tf._offset_parts(folder, "2024-06-25 22:00:00 Asia/Tokyo")


@case("parts: two zoned timestamp parts, then ISO text with a zone name")
def _(folder: Path) -> Path:
    """Runs of parts with the same types are read together: rows are still numbered in path order."""
    tf.make(folder, content=base_content() + [item("i4", "u1"), item("i5", "u2")])
    return _parts(folder, "content", _same, _same, _text_ts("created_at", ["2024-06-26T00:00:00Z", "tomorrow"]),
                  sizes=(2, 1))


@case("parts: naive and zoned timestamps")
def _(folder: Path) -> Path:
    tf.make(folder, content=base_content() + [item("i4", "u1", created_at="2024-06-26T00:00:00.000001Z")])
    return _parts(folder, "content", tf.naive, _same, sizes=(2,))


@case("parts: zoned and naive timestamps")
def _(folder: Path) -> Path:
    tf.make(folder, users=base_users() + [user("u4", deleted_at="2024-06-26T00:00:00Z")],
            content=base_content() + [item("i4", "u4")])
    return _parts(folder, "users", _same, tf.naive, sizes=(2,))


@case("parts: null-typed column in the first part")
def _(folder: Path) -> Path:
    tf.make(folder, users=base_users() + [user("u4", deleted_at="2020-01-01T00:00:00Z")],
            content=base_content() + [item("i4", "u4")])
    return _parts(folder, "users", lambda t: tf.setcol(t, "deleted_at", pa.nulls(3)), _same, sizes=(3,))


@case("parts: null-typed column in a later part")
def _(folder: Path) -> Path:
    tf.make(folder, users=base_users() + [user("u4")], content=base_content() + [item("i4", "u4", parent_id="i1")])
    return _parts(folder, "content", _same, lambda t: tf.setcol(t, "parent_id", pa.nulls(t.num_rows)), sizes=(3,))


@case("parts: a date part, then a bad date text part")
def _(folder: Path) -> Path:
    tf.make(folder)
    return _parts(folder, "users", _same, _text_ts("birth_date", ["10/25/1985"]), sizes=(2,))


@case("parts: a date part, then a date text part")
def _(folder: Path) -> Path:
    tf.make(folder)
    return _parts(folder, "users", _same, _text_ts("birth_date", ["1985-10-25"]), sizes=(2,))


@case("parts: string ids, then an integer id part")
def _(folder: Path) -> Path:
    tf.make(folder)
    return _parts(folder, "content", _same, lambda t: tf.setcol(t, "user_id", pa.array([3], pa.int64())), sizes=(2,))


@case("parts: an integer id part, then string ids")
def _(folder: Path) -> Path:
    tf.make(folder, users=base_users() + [user("7")], content=base_content() + [item("i4", "7")])
    return _parts(folder, "content", _same, lambda t: tf.setcol(t, "user_id", pa.array([7], pa.int64())), sizes=(3,))


@case("parts: ISO text, then a nanosecond part finer than a microsecond")
def _(folder: Path) -> Path:
    tf.make(folder, content=base_content() + [item("i4", "u1")])
    return _parts(folder, "content", _text_ts("created_at", ["2020-01-01T00:00:00Z"] * 3),
                  lambda t: tf.setcol(t, "created_at", pa.array([T_NS + 1], pa.timestamp("ns"))), sizes=(3,))


@case("parts: ISO text, then a nanosecond part in whole microseconds")
def _(folder: Path) -> Path:
    tf.make(folder, content=base_content() + [item("i4", "u1")])
    return _parts(folder, "content", _text_ts("created_at", ["2020-01-01T00:00:00Z"] * 3),
                  lambda t: tf.setcol(t, "created_at", pa.array([T_NS + 1000], pa.timestamp("ns", tz="UTC"))),
                  sizes=(3,))


@case("parts: zoned nanoseconds, then a null-typed part")
def _(folder: Path) -> Path:
    tf.make(folder, content=base_content() + [item("i4", "u1")])
    return _parts(folder, "content",
                  lambda t: tf.setcol(t, "deleted_at", pa.array([None, T_NS - 1000, None], pa.timestamp("ns", tz="UTC"))),
                  lambda t: tf.setcol(t, "deleted_at", pa.nulls(t.num_rows)), sizes=(3,))


# 2. CSV in another dialect -----------------------------------------------------------------------------


def _resep(folder: Path, delimiter: str) -> Path:
    for name in ("users", "content", "tags"):
        path = folder / f"{name}.csv"
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        with open(path, "w", newline="") as fh:
            csv.writer(fh, delimiter=delimiter).writerows(rows)
    return folder


def _tricky_content() -> list[dict]:
    return [item("i1", "u1", text='Line one; with semicolon\nline two, "quoted"\tand a tab\nline three'),
            item("i2", "u2", kind="photo", media_path="media/i2.jpg"), item("i3", "u3", kind="comment", parent_id="i1"),
            item("i4", "u3", created_at="2024-06-26T00:00:00.000001Z")]


@case("csv ;: a bad timestamp after a record of three lines")
def _(folder: Path) -> Path:
    return tf._semicolon(folder)


@case("csv ;: valid")
def _(folder: Path) -> Path:
    return _resep(tf.make(folder, "csv", content=_tricky_content()), ";")


@case("csv ;: 'Public'")
def _(folder: Path) -> Path:
    return _resep(tf.make(folder, "csv", content=_tricky_content() + [item("i5", "u1", visibility="Public")]), ";")


@case("csv tab: valid")
def _(folder: Path) -> Path:
    return _resep(tf.make(folder, "csv", content=_tricky_content()), "\t")


@case("csv |: a media path outside media/")
def _(folder: Path) -> Path:
    return _resep(tf.make(folder, "csv", content=_tricky_content() + [item("i5", "u1", media_path="users.csv")]), "|")


def _requote(folder: Path, **kw: object) -> Path:
    for name in ("users", "content", "tags"):
        path = folder / f"{name}.csv"
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        with open(path, "w", newline="") as fh:
            csv.writer(fh, quoting=csv.QUOTE_ALL, **kw).writerows(rows)
    return folder


@case("csv ': quoted with single quotes")
def _(folder: Path) -> Path:
    return _requote(tf.make(folder, "csv", content=_tricky_content() + [item("i5", "u1", text="it's \"a\" b;c, d\\e")]),
                    quotechar="'")


@case("csv \\: quotes escaped with a backslash")
def _(folder: Path) -> Path:
    return _requote(tf.make(folder, "csv", content=_tricky_content() + [item("i5", "u1", text="it's \"a\" b;c, d\\e")]),
                    escapechar="\\", doublequote=False)


@case("csv ;: a record over the size limit, after one with a comma")
def _(folder: Path) -> Path:
    """The line is found by reading the file as DuckDB's sniffer says (';'), not as comma-separated
    (which finds a record of two fields first). The sniffer reads the first 20,480 rows: the long
    record comes after them."""
    tf.make(folder, "csv", content=[item("i1", "u1", text="hello, world")] + [item(f"m{k}", "u1") for k in range(21_000)])
    _resep(folder, ";")
    with open(folder / "content.csv", "a", newline="") as fh:
        csv.writer(fh, delimiter=";").writerow(["i5", "u1", "post", "public", "2020-01-01T00:00:00Z", "",
                                                "x" * (MAX_RECORD_BYTES + 1), "", ""])
    return folder


@case("csv ,: a bad timestamp after a record of three lines")
def _(folder: Path) -> Path:
    return tf.make(folder, "csv", content=_tricky_content() + [item("i5", "u1", created_at="yesterday")])


@case("csv , CRLF: a bad timestamp after a record of three lines")
def _(folder: Path) -> Path:
    tf.make(folder, "csv", content=_tricky_content() + [item("i5", "u1", created_at="yesterday")])
    for p in folder.glob("*.csv"):
        with open(p, newline="") as fh:
            rows = list(csv.reader(fh))
        with open(p, "w", newline="") as fh:
            csv.writer(fh, lineterminator="\r\n").writerows(rows)
    return folder


# 3. other spellings of the contract's values ---------------------------------------------------------


for _fmt, _column, _value in [("parquet", "visibility", "Public"), ("csv", "kind", "Photo"),
                              ("jsonl", "kind", "Private_Message"), ("parquet", "kind", " reel")]:
    case(f"{_fmt}: {_column} {_value!r}")(
        lambda folder, fmt=_fmt, column=_column, value=_value: tf.make(
            folder, fmt, content=base_content() + [item("i4", "u1", **{column: value})]))


@case("csv: the platform's own kinds and visibilities")
def _(folder: Path) -> Path:
    return tf.make(folder, "csv", content=base_content() + [
        item("i4", "u1", kind="reel"), item("i5", "u1", kind="Video"), item("i6", "u1", visibility="followers_only")])


# 4. JSONL values that are not text ------------------------------------------------------------------


def _jsonl_value(table: str, column: str, value: object) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        tf.make(folder, "jsonl")
        path = folder / f"{table}.jsonl"
        lines = path.read_text().splitlines()
        record = json.loads(lines[1])
        record[column] = value
        lines[1] = json.dumps(record)
        path.write_text("\n".join(lines) + "\n")
        return folder

    return build


case("jsonl: text an object")(_jsonl_value("content", "text", {"en": "hello"}))
case("jsonl: email false")(_jsonl_value("users", "email", False))
case("jsonl: user_id a number")(_jsonl_value("content", "user_id", 1))

# 5. media paths --------------------------------------------------------------------------------------

for _fmt, _path in [("parquet", "users.parquet"), ("csv", "media\\x.jpg"), ("parquet", "media/../users.parquet"),
                    ("csv", "/etc/passwd"), ("parquet", "media/")]:
    case(f"{_fmt}: media_path {_path!r}")(
        lambda folder, fmt=_fmt, path=_path: tf.make(
            folder, fmt, content=base_content() + [item("i4", "u1", kind="photo", media_path=path)]))


@case("parquet: media paths with '..' in a name")
def _(folder: Path) -> Path:
    return tf.make(folder, content=base_content() + [item("i4", "u1", kind="photo", media_path="media/my..photo.jpg"),
                                                     item("i5", "u1", kind="photo", media_path="media/a/b..c/x é.jpg")])


# 6. times finer than a microsecond --------------------------------------------------------------------


@case("csv: created_at finer than a microsecond")
def _(folder: Path) -> Path:
    return tf.make(folder, "csv", content=base_content() + [item("i4", "u1", created_at="2024-06-26T00:00:00.0000001Z")])


@case("jsonl: deleted_at finer than a microsecond")
def _(folder: Path) -> Path:
    return tf.make(folder, "jsonl", content=base_content() + [item("i4", "u1", deleted_at="2024-06-26T00:00:00.0000001Z")])


@case("csv: nine digits, whole microseconds")
def _(folder: Path) -> Path:
    return tf.make(folder, "csv", content=base_content() + [item("i4", "u1", created_at="2024-06-26T00:00:00.000001000Z")])


@case("parquet: zoned nanoseconds, one after the cut-off")
def _(folder: Path) -> Path:
    return tf._ns_parquet(folder, [OLD_NS] * 3 + [T_NS + 1], "UTC")


@case("parquet: naive nanoseconds, one after the cut-off")
def _(folder: Path) -> Path:
    return tf._ns_parquet(folder, [OLD_NS] * 3 + [T_NS + 1], None)


@case("parquet: nanoseconds in whole microseconds")
def _(folder: Path) -> Path:
    return tf._ns_parquet(folder, [OLD_NS] * 3 + [T_NS + 1000], "UTC")


@case("parquet: nanosecond deleted_at, whole microseconds")
def _(folder: Path) -> Path:
    return tf._ns_parquet(folder, [None, None, None, T_NS - 1000], None, column="deleted_at")


# 7. all-null columns -------------------------------------------------------------------------------------


@case("parquet: null-typed columns in a single file")
def _(folder: Path) -> Path:
    tf.make(folder, users=base_users() + [user("u4", birth_date=None)])
    for table, columns in (("users", ("deleted_at", "email")), ("content", ("deleted_at", "parent_id", "media_path"))):
        t = pq.read_table(folder / f"{table}.parquet")
        for c in columns:
            t = tf.setcol(t, c, pa.nulls(t.num_rows))
        pq.write_table(t, folder / f"{table}.parquet")
    return folder


@case("parquet: a null-typed required column")
def _(folder: Path) -> Path:
    tf.make(folder)
    t = pq.read_table(folder / "content.parquet")
    pq.write_table(tf.setcol(t, "created_at", pa.nulls(t.num_rows)), folder / "content.parquet")
    return folder


# -- the comparison --------------------------------------------------------------------------------------


def _duck_values(export: Export) -> dict[str, list[tuple]]:
    import duckdb

    con = duckdb.connect()
    try:
        export.register(con)
        return {t.name: sorted(con.execute(f"SELECT {_cols(t, 'epoch_us')} FROM {t.name}").fetchall(), key=repr)
                for t in TABLES}
    finally:
        con.close()


def _spark_values(ss, export: Export) -> dict[str, list[tuple]]:  # noqa: ANN001
    register_export(ss, export)
    return {t.name: sorted((tuple(r) for r in ss.sql(f"SELECT {_cols(t, 'unix_micros')} FROM {t.name}").collect()),
                           key=repr) for t in TABLES}


def _cols(table, micros: str) -> str:  # noqa: ANN001
    """The table's columns, as values both engines give alike: an instant as microseconds, a date as text."""
    out = []
    for c in table.columns:
        q = f'"{c.name}"' if micros == "epoch_us" else f"`{c.name}`"
        out.append(f"{micros}({q})" if c.kind == "timestamp" else
                   f"CAST({q} AS {'VARCHAR' if micros == 'epoch_us' else 'STRING'})" if c.kind == "date" else q)
    return ", ".join(out)


def _decisions(ss, export: Export, tmp_path: Path) -> tuple[list[tuple], list[tuple]]:  # noqa: ANN001
    policy = load_policy("meta-2024")  # no notice outside Europe: some items are eligible
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as led:
        duck = sorted(decide(export, led, policy, AT).fetchall())
        load_inputs(ss, export, led, AT, scratch)
        with decided(ss, policy, AT) as df:
            on_spark = sorted(tuple(r) for r in df.collect())
    return duck, on_spark


def _compare(ss, export: Export, tmp_path: Path, name: str) -> None:  # noqa: ANN001
    duck = _refusal_text(lambda: validate(export))
    on_spark = _refusal_text(lambda: validate_spark(ss, export))
    assert on_spark == duck, f"{name}\n--- DuckDB:\n{duck}\n--- Spark:\n{on_spark}"
    if not duck.startswith("valid"):
        return
    assert _spark_values(ss, export) == _duck_values(export), name  # every value read alike
    want, got = _decisions(ss, export, tmp_path)
    assert got == want, name


@pytest.mark.parametrize("name", list(CASES))
def test_spark_refuses_what_duckdb_refuses_and_reads_what_it_reads(spark, tmp_path, name) -> None:
    folder = CASES[name](tmp_path / "export")
    try:
        export = Export(folder)
    except InputError as exc:
        pytest.fail(f"refused before any engine reads it, so not a case for this test: {exc}")
    _compare(spark, export, tmp_path, name)


#: The cases whose reading differs in a bucket (Spark's executors read it through consentry's data source).
IN_A_BUCKET = ["parts: naive timestamp, then ISO text with an offset",
               "parts: two zoned timestamp parts, then ISO text with a zone name",
               "parts: null-typed column in the first part", "parts: ISO text, then a nanosecond part finer than a microsecond",
               "parts: zoned nanoseconds, then a null-typed part", "parquet: zoned nanoseconds, one after the cut-off",
               "parquet: nanosecond deleted_at, whole microseconds", "parquet: null-typed columns in a single file"]


@pytest.mark.parametrize("name", IN_A_BUCKET)
def test_in_a_bucket_too(spark, bucket, tmp_path, name) -> None:
    if bucket is None:
        pytest.skip("no S3 server: pip install -e '.[test]' (moto[server])")
    uri = bucket.upload(CASES[name](tmp_path / "export"), f"parity/{tmp_path.name}")
    _compare(spark, Export(uri), tmp_path, name)


def test_the_cases_cover_refusals_and_acceptances(tmp_path) -> None:
    """The corpus holds both: exports DuckDB refuses, and tricky exports it reads."""
    said = {}
    for name, build in CASES.items():
        folder = build(tmp_path / str(len(said)))
        said[name] = _refusal_text(lambda folder=folder: validate(Export(folder)))
    refused = [n for n, s in said.items() if not s.startswith("valid")]
    assert len(refused) >= 20 and len(said) - len(refused) >= 10, said
