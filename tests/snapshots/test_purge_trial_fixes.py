"""A trial of purge and verify on a generated export (300 users): the export
corrected or shrunk (rows hard-deleted, a birth date, a visibility), a wrong
`--data`, an erasure under `meta-2024`, a verify started while a purge runs,
and what the counts of a purge say. After a purge, verify against the same
export finds no row that should not be there."""

from __future__ import annotations

import importlib
import json
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable
from exportkit import write_export
from test_snapshots import T, rows, world  # noqa: F401, F811 - `world` is the fixture the tests here take
from typer.testing import CliRunner

from consentry.cli import app
from consentry.commands.snapshot import _purged_line
from consentry.ledger import NewEvent
from consentry.people.third_party import ThirdParties
from consentry.policy import load_policy
from consentry.snapshots import Registry, SnapshotError, build
from consentry.snapshots.purge import purge
from consentry.snapshots.recovery import INTENT
from consentry.snapshots.verify import verify

pytestmark = pytest.mark.slow

purge_module = importlib.import_module("consentry.snapshots.purge")  # the package's `purge` is the function


def corrected(export: Path, dest: Path, *, users: str = "", content: str = "", tags: str = "") -> Path:
    """A copy of `export` (tables and media) with SQL `WHERE`/`SELECT` edits: each argument is a
    query over the table named `t` whose rows become the new table (empty: unchanged)."""
    def table(name: str, query: str) -> list[dict]:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{export}/{name}.parquet')")
        got = con.sql(query or "SELECT * FROM t").to_arrow_table().to_pylist()
        con.close()
        return got

    out = write_export(dest, table("users", users), table("content", content), table("tags", tags))
    shutil.copytree(export / "media", out / "media", dirs_exist_ok=True)
    return out


def whys(problems) -> dict[str, set[str]]:  # noqa: ANN001 - verify's problems
    out: dict[str, set[str]] = {}
    for p in problems:
        out.setdefault(p.item_id, set()).add(p.why)
    return out


# -- 1: rows hard-deleted from the export ----------------------------------------------------------------


def test_purge_removes_rows_whose_items_the_export_no_longer_has(world, tmp_path) -> None:
    """dan's account and his posts were erased the way many platforms erase:
    by deleting the rows. verify said "not in the export any more ... run purge";
    purge said "nothing to remove" and left them."""
    tmp, export, led = world
    build(export, led, load_policy("recommended"), T, "s", out=tmp / "s")
    dans = {k for k, v in rows(led, "s").items() if v["user_id"] == "dan"}
    assert len(dans) == 5
    newer = corrected(export.folder, tmp_path / "export3", users="SELECT * FROM t WHERE user_id <> 'dan'",
                      content="SELECT * FROM t WHERE user_id <> 'dan'",
                      tags="SELECT * FROM t WHERE item_id NOT IN ('p3')")  # p3 is dan's photo
    assert {p.item_id for p in verify(led, "s", data=newer)[1]} == dans
    r = purge(led, "s", data=newer)
    assert r.rows_removed == 5 and r.counts == {"not_in_export": 5}
    assert not dans & set(rows(led, "s"))
    assert verify(led, "s", data=newer)[1] == []


# -- 2: export corrections (a birth date, a visibility) --------------------------------------------------


def test_purge_removes_what_a_corrected_birth_date_or_visibility_excludes(world, tmp_path) -> None:
    """eve's birth date is corrected (she is a child) and cat's post t2 made
    private: verify flagged the rows ("minor", "not_public"), purge said
    "nothing to remove", so a child's posts stayed in the training set."""
    tmp, export, led = world
    build(export, led, load_policy("recommended"), T, "s", out=tmp / "s")
    before = rows(led, "s")
    eves = {k for k, v in before.items() if v["user_id"] == "eve"}
    assert len(eves) == 6 and "t2" in before
    newer = corrected(
        export.folder, tmp_path / "export4",
        users="SELECT * REPLACE (CASE WHEN user_id = 'eve' THEN DATE '2010-01-01' ELSE birth_date END AS birth_date) FROM t",
        content="SELECT * REPLACE (CASE WHEN item_id = 't2' THEN 'private' ELSE visibility END AS visibility) FROM t")
    found = whys(verify(led, "s", data=newer)[1])
    assert set(found) == eves | {"t2"} and "not eligible at the cut-off: not_public" in found["t2"]
    r = purge(led, "s", data=newer)
    assert r.rows_removed == 7 and r.counts == {"minor": 6, "not_public": 1} and r.full
    assert r.people == 2 and r.people_excluded == 1  # eve, a minor; cat, whose post is private now
    assert not (eves | {"t2"}) & set(rows(led, "s"))
    assert verify(led, "s", data=newer)[1] == []
    # Nothing changed in the export since: the next purge checks only the people with new events.
    led.record(NewEvent(user_id="ann", type="objected", at=datetime.now(UTC), channel="web"))
    again = purge(led, "s", data=newer)
    assert not again.full and again.rows_removed == 2 and again.counts == {"objected": 2}
    assert verify(led, "s", data=newer)[1] == []
    # The export changes again (every item made visible to friends only): the whole check runs again.
    left = len(rows(led, "s"))
    newest = corrected(newer, tmp_path / "export5", content="SELECT * REPLACE ('friends' AS visibility) FROM t")
    third = purge(led, "s", data=newest)
    assert third.full and third.rows_removed == left and third.counts == {"not_public": left}
    assert rows(led, "s") == {} and verify(led, "s", data=newest)[1] == []


def test_the_first_purge_after_a_build_checks_the_whole_export_and_remembers_it(world) -> None:
    tmp, export, led = world
    build(export, led, load_policy("recommended"), T, "s", out=tmp / "s")
    assert purge(led, "s").full
    assert not purge(led, "s").full  # the export's files are the ones checked: only new events are looked at
    (export.folder / "users.parquet").touch()  # a newer copy of the same file: checked again
    assert purge(led, "s").full


# -- 3: the wrong export -----------------------------------------------------------------------------------


def test_a_purge_against_an_export_without_most_of_the_rows_is_refused_before_anything_is_written(world, tmp_path,
                                                                                               monkeypatch) -> None:
    """`snapshot purge s1 --data exportX` (another generated export) removed
    rows, flagged models and vacuumed. Now: refused, nothing written, with
    what, where and the fix; an option overrides when the platform really
    deleted that much."""
    tmp, export, led = world
    build(export, led, load_policy("recommended"), T, "s", out=tmp / "s")
    rec = Registry(led).require("s")
    n = rec.manifest.rows
    version = DeltaTable(rec.uri).version()
    # Another platform's export: the same shape, only one of the snapshot's item ids (t2).
    other = corrected(export.folder, tmp_path / "exportX", content="SELECT * FROM t WHERE item_id IN ('t2', 'p2', 'p3')",
                      tags="SELECT * FROM t")
    with pytest.raises(SnapshotError) as e:
        purge(led, "s", data=other)
    said = str(e.value)
    assert f"{n - 1:,} of {n:,} rows" in said and str(other) in said and "snapshot 's'" in said
    assert "--accept-missing-items" in said and "fix:" in said
    assert DeltaTable(rec.uri).version() == version and not (tmp / "s" / INTENT).exists()
    m = Registry(led).require("s").manifest
    assert m.purges == [] and m.rows == n == len(rows(led, "s"))
    # The CLI: exit 1, one message, nothing removed.
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp))
    res = CliRunner().invoke(app, ["snapshot", "purge", "s", "--data", str(other), "--ledger", led.url])
    assert res.exit_code != 0 and "--accept-missing-items" in res.output and "Traceback" not in res.output
    assert len(rows(led, "s")) == n
    # The platform really deleted that much: the option says so.
    res = CliRunner().invoke(app, ["snapshot", "purge", "s", "--data", str(other), "--accept-missing-items",
                                   "--ledger", led.url])
    assert res.exit_code == 0, res.output
    assert set(rows(led, "s")) == {"t2"} and verify(led, "s", data=other)[1] == []


def test_a_purge_against_another_export_with_the_same_item_ids_is_refused(world, tmp_path) -> None:
    """ML engineer's trial: another generated export shares most item ids (a generator numbers them
    alike) but gives them other authors; only the missing ids were counted, and the purge removed 82%
    of the snapshot and vacuumed it. Item ids never change hands: the same ids by other authors are
    another platform's export."""
    tmp, export, led = world
    build(export, led, load_policy("recommended"), T, "s", out=tmp / "s")
    rec = Registry(led).require("s")
    n, version = rec.manifest.rows, DeltaTable(rec.uri).version()
    swap = "CASE user_id WHEN 'ann' THEN 'dan' WHEN 'dan' THEN 'eve' WHEN 'eve' THEN 'ann' ELSE user_id END"
    other = corrected(export.folder, tmp_path / "exportY", content=f"SELECT * REPLACE ({swap} AS user_id) FROM t")
    with pytest.raises(SnapshotError) as e:
        purge(led, "s", data=other)
    said = str(e.value)
    assert "have an item there by another author" in said and "nothing was removed" in said, said
    assert DeltaTable(rec.uri).version() == version and len(rows(led, "s")) == n


# -- 4: an erased person's id in `tagged` under meta-2024 -------------------------------------------------


def test_under_meta_2024_an_erased_persons_id_leaves_the_tagged_column(world) -> None:
    """meta-2024 does not check tagged people, so ben's id is in the rows of
    the photos that tag him. He asks for erasure: a purge left his id there
    and verify passed."""
    tmp, export, led = world
    build(export, led, load_policy("meta-2024"), T, "m", out=tmp / "m")
    before = rows(led, "m")
    assert before["p2"]["tagged"] == ["ben"] and before["p3"]["tagged"] == ["ben"]
    assert verify(led, "m")[1] == []
    led.record(NewEvent(user_id="ben", type="erasure_requested", at=datetime.now(UTC), channel="web"))
    found = whys(verify(led, "m")[1])
    assert set(found) == {"p2", "p3"} and any("ben" in w for w in found["p2"]), found
    r = purge(led, "m")
    after = rows(led, "m")
    assert set(after) == set(before) and after["p2"]["tagged"] == [] and after["p3"]["tagged"] == []
    assert r.rows_removed == 0 and r.counts.get("tagged_ids_removed") == 2
    assert verify(led, "m")[1] == []
    assert purge(led, "m").counts == {}


def test_under_meta_2024_a_build_after_an_erasure_never_names_the_erased_person(world) -> None:
    """Left by the purge fix: a build made after ben asked for erasure still put
    his id in the `tagged` column of the photos that tag him (meta-2024 keeps
    them), so the snapshot failed its own verify until a purge."""
    tmp, export, led = world
    led.record(NewEvent(user_id="ben", type="erasure_requested", at=datetime.now(UTC), channel="web"))
    build(export, led, load_policy("meta-2024"), T, "m", out=tmp / "m")
    got = rows(led, "m")
    assert "p2" in got and "p3" in got  # the photos are kept (meta-2024 ignores the people in them)
    assert not any("ben" in (r["tagged"] or []) for r in got.values()), got
    assert verify(led, "m")[1] == []


# -- 5: a verify while a purge runs -------------------------------------------------------------------------


def test_a_verify_started_while_a_purge_runs_waits_for_it(world, monkeypatch) -> None:
    """A verify started during a purge crashed with `IOException: Cannot open
    file .../part-...parquet` (the purge vacuumed the files it was reading).
    It now waits for the snapshot's lock and reads the purged table."""
    tmp, export, led = world
    build(export, led, load_policy("recommended"), T, "s", out=tmp / "s")
    led.record(NewEvent(user_id="ann", type="objected", at=datetime.now(UTC), channel="web"))
    paused, resume = threading.Event(), threading.Event()
    real = purge_module.failpoint

    def pause(name: str) -> None:
        if name == "purge:commit":  # committed, not vacuumed yet
            paused.set()
            resume.wait(30)
        real(name)

    monkeypatch.setattr(purge_module, "failpoint", pause)
    got: dict = {}
    purging = threading.Thread(target=lambda: got.setdefault("purge", purge(led, "s")))
    purging.start()
    assert paused.wait(30)
    checking = threading.Thread(target=lambda: got.setdefault("verify", verify(led, "s")))
    checking.start()
    checking.join(1.5)
    waited = checking.is_alive()
    resume.set()
    purging.join(60)
    checking.join(60)
    assert waited, "verify ran while the purge held the snapshot"
    assert got["purge"].rows_removed == 2
    total, problems = got["verify"]
    assert problems == [] and total == len(rows(led, "s"))


# -- 6: what the counts say ---------------------------------------------------------------------------------


def test_the_counts_of_a_purge_say_whose_rows_left_and_why(world, tmp_path) -> None:
    """A third-party removal was in no purged_people row (they summed to one
    row less than rows_removed), and "removed 4 rows of 2 people" counted eve,
    who only lost an item she deleted and a photo a third party objected to."""
    tmp, export, led = world
    build(export, led, load_policy("recommended"), T, "s", out=tmp / "s")
    led.record(NewEvent(user_id="ann", type="objected", at=datetime.now(UTC), channel="web"))
    parties = ThirdParties(led, export)
    parties.confirm(parties.submit("x@example.net", items="p4"), lambda conn: None)
    newer = corrected(export.folder, tmp_path / "export2",
                      content="SELECT * REPLACE (CASE WHEN item_id = 'e0' THEN TIMESTAMPTZ '2025-01-01 00:00:00+00' "
                              "ELSE deleted_at END AS deleted_at) FROM t")
    r = purge(led, "s", data=newer)
    assert r.rows_removed == 4
    assert r.counts == {"objected": 2, "content_deleted": 1, "third_party_objected": 1}
    people = {u: p for u in ("ann", "eve", "cat") for p in Registry(led).purged_for(u)}
    assert {u: (p["cause"], p["rows"]) for u, p in people.items()} == {
        "ann": ("objected", 2), "eve": ("content_deleted", 2)}
    assert sum(p["rows"] for p in people.values()) == r.rows_removed and r.people == 2 and r.people_excluded == 1
    line = _purged_line("s", r)
    assert ("removed 4 rows: 2 of 1 person who may no longer be used, 1 deleted in the export, "
            "1 objected to by a person without an account;") in line, line
    assert json.loads(json.dumps(r.counts)) == Registry(led).require("s").manifest.purges[-1].counts


# -- the Spark purge: the same rows, counts and record ------------------------------------------------------


@pytest.mark.skipif(shutil.which("java") is None, reason="the Spark engine needs Java 17")
def test_a_spark_purge_of_a_corrected_export_and_an_erasure_leaves_what_a_duckdb_purge_leaves(world, tmp_path) -> None:
    """Two copies of one meta-2024 snapshot, purged one on DuckDB and one on
    Spark of the same export corrections (dan's rows gone, eve a child, t2
    private) and ben's erasure (his id in `tagged`): the same rows byte for
    byte, the same counts and people, and both verify; then an incremental
    purge (the export unchanged) agrees as well."""
    pytest.importorskip("pyspark")
    from consentry.engine.spark import session

    tmp, export, led = world
    later = datetime(2026, 12, 2, tzinfo=UTC)
    newer = corrected(
        export.folder, tmp_path / "export6",
        users="SELECT * REPLACE (CASE WHEN user_id = 'eve' THEN DATE '2010-01-01' ELSE birth_date END AS birth_date) "
              "FROM t WHERE user_id <> 'dan'",
        content="SELECT * REPLACE (CASE WHEN item_id = 't2' THEN 'private' ELSE visibility END AS visibility) FROM t "
                "WHERE user_id <> 'dan'",
        tags="SELECT * FROM t WHERE item_id <> 'p3'")
    build(export, led, load_policy("meta-2024"), T, "d", out=tmp / "d")
    build(export, led, load_policy("meta-2024"), T, "k", out=tmp / "k")
    led.record(NewEvent(user_id="ben", type="erasure_requested", at="2026-12-01T12:00:00Z", channel="web"))
    spark = session("local[2]", {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    try:
        rd = purge(led, "d", data=newer, now=later)
        rk = purge(led, "k", data=newer, now=later, spark=spark)
        key = lambda r: r["item_id"]  # noqa: E731
        got = {n: sorted(DeltaTable(Registry(led).require(n).uri).to_pyarrow_table().to_pylist(), key=key) for n in "dk"}
        assert got["d"] == got["k"] and got["d"]
        assert rd.full and rk.full and rd.counts == rk.counts and rd.counts.get("tagged_ids_removed") == 1  # p2
        assert {"not_in_export", "minor", "not_public"} <= set(rd.counts)
        assert (rd.rows_removed, rd.people, rd.people_excluded) == (rk.rows_removed, rk.people, rk.people_excluded)
        assert ([(p["user_id"], p["cause"], p["trigger_seq"]) for u in ("ben", "dan", "eve") for p in Registry(led).purged_for(u) if p["snapshot"] == "d"]
                == [(p["user_id"], p["cause"], p["trigger_seq"]) for u in ("ben", "dan", "eve") for p in Registry(led).purged_for(u) if p["snapshot"] == "k"])
        assert next(r for r in got["d"] if r["item_id"] == "p2")["tagged"] == []
        for n in "dk":
            assert verify(led, n, data=newer, now=later)[1] == []
        led.record(NewEvent(user_id="ann", type="objected", at="2026-12-01T13:00:00Z", channel="web"))
        rd = purge(led, "d", data=newer, now=later)
        rk = purge(led, "k", data=newer, now=later, spark=spark)
        assert not rd.full and not rk.full and rd.counts == rk.counts == {"objected": 2}
        got = {n: sorted(DeltaTable(Registry(led).require(n).uri).to_pyarrow_table().to_pylist(), key=key) for n in "dk"}
        assert got["d"] == got["k"]
    finally:
        spark.stop()


def test_a_person_erased_from_the_export_by_deleting_rows_leaves_the_tagged_column(world, tmp_path) -> None:
    """The same erasure done the way many platforms do it, by deleting ben's
    rows (his user and his tags): his id stayed in the rows of the photos that
    tagged him, and neither verify nor purge said a word."""
    tmp, export, led = world
    build(export, led, load_policy("meta-2024"), T, "m", out=tmp / "m")
    newer = corrected(export.folder, tmp_path / "export7", users="SELECT * FROM t WHERE user_id <> 'ben'",
                      tags="SELECT * FROM t WHERE tagged_user_id <> 'ben'")
    found = whys(verify(led, "m", data=newer)[1])
    assert found == {"p2": {"it names ben in tagged, who is no longer in the export"},
                     "p3": {"it names ben in tagged, who is no longer in the export"}}, found
    r = purge(led, "m", data=newer)
    assert r.rows_removed == 0 and r.counts == {"tagged_ids_removed": 2}
    assert rows(led, "m")["p2"]["tagged"] == [] and verify(led, "m", data=newer)[1] == []


# -- what set a removal off (the report's times, a person's receipt) -----------------------------------------


def test_a_removal_is_timed_from_the_event_that_caused_it(world) -> None:
    """DPO trial: `purged_people.trigger_seq` was the person's last event of any type after the
    watermark (a notice sent after the objection: "cause notified, 1.1 s"; a repeated objection
    restarted the clock), and a third party's objection was never the trigger of anything, so the
    report timed the wrong event and left third-party removals untimed."""
    from sqlalchemy import select

    from consentry.ledger.tables import events as events_table

    tmp, export, led = world
    build(export, led, load_policy("recommended"), T, "s", out=tmp / "s")
    first = led.record(NewEvent(user_id="ann", type="objected", at=datetime.now(UTC), channel="web"))
    led.record(NewEvent(user_id="ann", type="notified", at=datetime.now(UTC), channel="in_app"))
    led.record(NewEvent(user_id="ann", type="objected", at=datetime.now(UTC), channel="api"))  # a repeat
    led.record(NewEvent(user_id="dan", type="objected", at=datetime.now(UTC), channel="web"))
    led.record(NewEvent(user_id="dan", type="objection_withdrawn", at=datetime.now(UTC), channel="web"))
    again = led.record(NewEvent(user_id="dan", type="objected", at=datetime.now(UTC), channel="web"))
    parties = ThirdParties(led, export)
    parties.confirm(parties.submit("x@example.net", items="p4"), lambda conn: None)
    with led.reader.connect() as conn:
        (tp_seq,) = conn.execute(select(events_table.c.seq).where(
            events_table.c.type == "third_party_objected", events_table.c.item_id == "p4")).scalars().all()
    purge(led, "s", data=export.folder)
    got = {u: [(p["cause"], p["trigger_seq"]) for p in Registry(led).purged_for(u)] for u in ("ann", "dan", "eve")}
    assert got == {"ann": [("objected", first.seq)], "dan": [("objected", again.seq)],
                   "eve": [("third_party_objected", tp_seq)]}, got


# -- models: flagged by the version they saw (ML engineer's trial) --------------------------------------------


def test_a_model_trained_before_a_purge_and_registered_after_it_is_flagged(world) -> None:
    """Registered when training ended, after a purge ran meanwhile, a model was recorded as trained
    on the purged version and never flagged: `model list` said current, `impact` named no model.
    `--version` says which version the training read, and flags follow versions, not times."""
    from consentry.snapshots.lineage import impact, register_model

    tmp, export, led = world
    build(export, led, load_policy("recommended"), T, "s", out=tmp / "s")
    rec = Registry(led).require("s")
    read_at = DeltaTable(rec.uri).version()  # the training starts here
    led.record(NewEvent(user_id="ann", type="objected", at=datetime.now(UTC), channel="web"))
    purge(led, "s", data=export.folder)
    model = register_model(led, "late", "s", version=read_at)
    assert model.table_version == read_at and model.rows == rec.manifest.rows and model.flagged, model
    assert model.rows_purged_since == 2
    assert [m.name for i in impact(led, "ann") for m in i.models] == ["late"]
    now = register_model(led, "after", "s")  # trained on what is there now: current
    assert not now.flagged and now.table_version == Registry(led).require("s").manifest.table_version
    with pytest.raises(SnapshotError, match="has no version 99"):
        register_model(led, "nope", "s", version=99)
    listing = " ".join(CliRunner().invoke(app, ["model", "list", "--ledger", str(led.engine.url)]).stdout.split())
    assert "late" in listing and "retrain or unlearn" in listing, listing


def test_a_purge_that_only_hides_mentions_flags_the_models_that_saw_them(world) -> None:
    """A purge that removed no row but hid an objector's @handle in 4 others' rows never flagged a
    model trained on that text: `model list` said current."""
    from consentry.snapshots.lineage import register_model

    tmp, export, led = world
    build(export, led, load_policy("recommended"), T, "s", out=tmp / "s")
    register_model(led, "m", "s")
    led.record(NewEvent(user_id="cat", type="objected", at=datetime.now(UTC), channel="web"))  # t1 says "@cat"
    r = purge(led, "s", data=export.folder)
    assert r.counts.get("mentions_redacted") == 1, r.counts
    model = Registry(led).model("m")
    assert model.flagged and model.rows_rewritten_since == 1, model
