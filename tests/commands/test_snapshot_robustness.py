"""Snapshots that are not where, or not as, consentry recorded them: a folder
moved by hand, an export renamed, a Delta table written to by another tool.
Every command says which snapshot, where, and what to do, never a traceback;
`purge --all` goes on with the others; lineage and `impact` never answer from
a table that is not there or not the one recorded."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from center_kit import ALICE, CenterKit, center, center_factory, export_dir, smtp  # noqa: F401  (fixtures)
from cli_kit import cli, ok, table_rows
from consentry.ledger import Ledger, NewEvent
from consentry.snapshots import Registry, impact
from exportkit import item, user, write_export

pytestmark = pytest.mark.slow  # builds and purges Delta tables

AT = "2024-06-26T00:00:00Z"
PEOPLE = ["ann", "dan", "eve"]


@pytest.fixture
def world(tmp_path: Path, monkeypatch):
    """Three notified adults with four posts each, in two copies of one export; a ledger."""
    export = write_export(tmp_path / "export", [user(p) for p in PEOPLE],
                          [item(f"{p[0]}{i}", p, text=f"{p} says {i}") for p in PEOPLE for i in range(4)], [])
    shutil.copytree(export, tmp_path / "exportB")
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at 80 columns otherwise
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    led.append([NewEvent(user_id=u, type="notified", at="2024-01-01T00:00:00Z", channel="email") for u in PEOPLE])
    yield tmp_path, led
    led.close()


def run(led: Ledger, *args: object):  # noqa: ANN201 - a click Result
    return cli(*args, "--ledger", str(led.engine.url))


def build(led: Ledger, data: Path, name: str) -> Path:
    ok(run(led, "snapshot", "build", "--data", data, "--at", AT, "--name", name))
    return Path(Registry(led).require(name).uri).parent


def said(result) -> str:  # noqa: ANN001
    """Everything the command printed, as one line (rich breaks long lines in a narrow run)."""
    return " ".join((result.stdout + result.stderr).split())


def no_traceback(result) -> None:  # noqa: ANN001
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr


def object_(led: Ledger, who: str) -> None:
    led.record(NewEvent(user_id=who, type="objected", at=datetime.now(UTC), channel="web"))


def plant(folder: Path, user_id: str) -> None:
    """Append a row with deltalake, as another tool would: consentry does not know of it."""
    dt = DeltaTable(str(folder / "table"))
    row = dt.to_pyarrow_table().slice(0, 1)
    row = row.set_column(row.schema.get_field_index("item_id"), "item_id", pa.array(["planted"]))
    row = row.set_column(row.schema.get_field_index("user_id"), "user_id", pa.array([user_id]))
    write_deltalake(str(folder / "table"), row, mode="append", partition_by=["bucket"])


def authors(folder: Path) -> set[str]:
    return set(DeltaTable(str(folder / "table")).to_pyarrow_table().column("user_id").to_pylist())


# -- finding 1: one moved snapshot or missing export stopped `purge --all` for every snapshot -------------


def test_purge_all_goes_on_past_a_moved_snapshot_and_names_it(world) -> None:
    """An ML engineer's trial: s1 moved by hand (mv snapshots/s1 ./s1-archived),
    then `snapshot purge --all` died with deltalake's TableNotFoundError (a
    traceback, exit 1) before s2, which then still held the objector's rows.
    Now every other snapshot is purged, s1 is named with its path and the fix,
    and the command exits non-zero at the end."""
    tmp, led = world
    s1 = build(led, tmp / "export", "s1")
    s2 = build(led, tmp / "exportB", "s2")
    object_(led, "eve")
    s1.rename(tmp / "s1-archived")
    r = run(led, "snapshot", "purge", "--all")
    no_traceback(r)
    assert r.exit_code == 1, said(r)
    assert "eve" not in authors(s2) and "s2: events" in said(r) and "removed 4 rows of 1 person" in said(r)
    assert f"snapshot 's1': its folder is missing at {s1} (moved or deleted)" in said(r), said(r)
    assert f"fix: move the snapshot's folder back to {s1}" in said(r)
    assert "1 of 2 snapshots could not be purged: s1" in said(r)
    assert run(led, "snapshot", "verify", "s2").exit_code == 0
    # Put back, it is purged like the others.
    (tmp / "s1-archived").rename(s1)
    r = ok(run(led, "snapshot", "purge", "--all"))
    assert "eve" not in authors(s1)


def test_purge_all_goes_on_past_a_snapshot_whose_export_is_gone_and_names_it(world) -> None:
    """The same trial with s1's export renamed: `--all` stopped at s1 with "the
    export this snapshot was built from (...) is gone", naming no snapshot,
    and s2 was never purged. Now s2 is purged, and s1 is named with its folder
    and the fix (its own command, with --data)."""
    tmp, led = world
    s1 = build(led, tmp / "export", "s1")
    s2 = build(led, tmp / "exportB", "s2")
    object_(led, "eve")
    (tmp / "export").rename(tmp / "export-renamed")
    r = run(led, "snapshot", "purge", "--all")
    no_traceback(r)
    assert r.exit_code == 1, said(r)
    assert "eve" not in authors(s2) and "eve" in authors(s1)
    assert f"snapshot 's1' ({s1}): the export it was built from ({tmp / 'export'}) is gone" in said(r), said(r)
    assert "consentry snapshot purge s1 --data" in said(r)
    r = ok(run(led, "snapshot", "purge", "s1", "--data", tmp / "export-renamed"))
    assert "eve" not in authors(s1)


def test_verify_and_purge_of_a_moved_snapshot_say_what_where_and_the_fix(world) -> None:
    """`snapshot verify s1` and `snapshot purge s1` on a moved snapshot printed
    raw tracebacks (TableNotFoundError). Now: exit 2, the snapshot, its path and the fix."""
    tmp, led = world
    s1 = build(led, tmp / "export", "s1")
    object_(led, "eve")
    s1.rename(tmp / "s1-archived")
    for args in (("snapshot", "verify", "s1"), ("snapshot", "purge", "s1")):
        r = run(led, *args)
        no_traceback(r)
        assert r.exit_code == 2, (args, said(r))
        assert f"error: snapshot 's1': its folder is missing at {s1} (moved or deleted)" in said(r), said(r)
        assert f"fix: move the snapshot's folder back to {s1}" in said(r)
    assert not s1.exists()  # nothing was made where it was


def test_a_data_file_deleted_from_a_snapshot_is_named_by_every_command(world) -> None:
    """DPO trial: with one Parquet file of the table deleted by hand, `snapshot verify`, `purge` and
    `impact` ended in a traceback (DuckDB's "No files found"), while `snapshot list` and the report
    called the snapshot fine. Now every command names the snapshot, the missing file and the fix."""
    tmp, led = world
    s1 = build(led, tmp / "export", "s1")
    object_(led, "eve")
    victim = sorted((s1 / "table").rglob("*.parquet"))[0]
    victim.unlink()
    why = f"its Delta table at {s1 / 'table'} names 1 data file that is not on disk (such as {victim.relative_to(s1 / 'table')})"
    for args in (("snapshot", "verify", "s1"), ("snapshot", "purge", "s1", "--data", tmp / "export")):
        r = run(led, *args)
        no_traceback(r)
        assert r.exit_code == 2, (args, said(r))
        assert f"error: snapshot 's1': {why}" in said(r), said(r)
        assert "fix: put the snapshot's folder back as it was built" in said(r), said(r)
    r = run(led, "impact", "eve")
    no_traceback(r)
    assert r.exit_code == 1 and f"s1: cannot be checked: {why}" in said(r), said(r)
    r = run(led, "snapshot", "list")
    no_traceback(r)
    assert "UNREADABLE" in said(r), said(r)


# -- finding 2: a moved snapshot vanished from impact, took a model, and was listed as fine --------------


def test_impact_names_a_snapshot_it_cannot_check(world) -> None:
    """`consentry impact USER` left a moved snapshot out without a word: the
    person was told less than the truth. Now it is listed as "cannot be
    checked: its folder is missing at PATH", with the models trained on it,
    and the command exits 1 (the answer is incomplete)."""
    tmp, led = world
    s1 = build(led, tmp / "export", "s1")
    build(led, tmp / "exportB", "s2")
    ok(run(led, "model", "register", "m1", "--snapshot", "s1"))
    s1.rename(tmp / "s1-archived")
    r = run(led, "impact", "eve")
    no_traceback(r)
    assert r.exit_code == 1, said(r)
    assert "s2 (built" in said(r) and "4 rows of theirs now" in said(r)
    assert f"s1: cannot be checked: its folder is missing at {s1}" in said(r), said(r)
    assert "model m1 was trained on it" in said(r)
    found = impact(led, "eve")  # the library says so too: the center's /me reads it
    assert [s.snapshot for s in found] == ["s2"]
    assert [(u.snapshot, u.why) for u in found.unchecked] == [("s1", f"its folder is missing at {s1} (moved or deleted)")]


def test_impact_does_not_answer_from_a_table_changed_outside_consentry(world) -> None:
    """DPO trial: after a row was appended with deltalake, `impact` counted it
    among the person's rows ("9 rows of theirs now", one of them planted) with
    exit 0. Such a table is now listed as cannot be checked, with why and the
    fix, and the command exits 1."""
    tmp, led = world
    d1 = build(led, tmp / "export", "d1")
    plant(d1, "eve")
    r = run(led, "impact", "eve")
    no_traceback(r)
    assert r.exit_code == 1, said(r)
    assert "d1: cannot be checked: its table was changed outside consentry" in said(r), said(r)
    assert "rows of theirs now" not in said(r)
    assert "fix (d1): find out who wrote to" in said(r)
    found = impact(led, "eve")
    assert list(found) == [] and [u.snapshot for u in found.unchecked] == ["d1"]


def test_build_and_evaluate_refuse_a_ledger_with_an_event_deleted_outside_consentry(world) -> None:
    """DPO trial: after an objection was deleted from the ledger (and its
    person_state row), `audit verify` named it but `snapshot build` and
    `evaluate` went on, and the new snapshot held the objector's rows."""
    import sqlite3

    tmp, led = world
    object_(led, "eve")
    led.record(NewEvent(user_id="dan", type="notified", at="2024-02-01T00:00:00Z", channel="email"))
    db = led.engine.url.database
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM ledger_events WHERE user_id = 'eve' AND type = 'objected'")
        con.execute("DELETE FROM person_state WHERE user_id = 'eve'")
    for args in (("snapshot", "build", "--data", tmp / "export", "--at", AT, "--name", "x"),
                 ("evaluate", "--data", tmp / "export", "--at", AT, "--out", tmp / "d.parquet")):
        r = run(led, *args)
        no_traceback(r)
        assert r.exit_code == 2, (args, said(r))
        assert "ledger event #4 is missing: the ledger holds 4 events numbered up to #5" in said(r), said(r)
        assert "`consentry audit verify` names every change" in said(r)
    assert Registry(led).get("x") is None and not (tmp / "d.parquet").exists()


def test_the_report_marks_a_snapshot_that_is_not_on_disk_as_recorded(world) -> None:
    """DPO trial: with a row appended by another tool, the report's "rows now"
    still gave the recorded count, and the notes said it was the count when
    the report was generated. Now the cell says the state and an alert says why."""
    tmp, led = world
    d1 = build(led, tmp / "export", "d1")
    build(led, tmp / "exportB", "d2")
    plant(d1, "eve")
    d2 = Path(Registry(led).require("d2").uri).parent
    d2.rename(tmp / "d2-moved")
    time.sleep(1.1)  # --at is to the second: after both builds
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ok(run(led, "report", "--at", at, "--out", tmp / "rep", "--no-pdf"))
    html = " ".join((tmp / "rep" / "report.html").read_text().split())
    assert 'data-key="disk:d1">CHANGED OUTSIDE CONSENTRY<' in html and 'data-key="disk:d2">MISSING<' in html, html
    assert f"snapshot &#39;d1&#39; ({d1}): its table was changed outside consentry" in html
    assert f"its folder is missing at {d2} (moved or deleted)" in html
    assert "not what is on disk now" in html


def test_model_register_refuses_a_moved_snapshot_and_list_marks_it(world) -> None:
    """`model register m9 --snapshot rec1` recorded a model on a snapshot whose
    table was not there, and `snapshot list` showed it as if fine."""
    tmp, led = world
    s1 = build(led, tmp / "export", "s1")
    s1.rename(tmp / "s1-archived")
    r = run(led, "model", "register", "m9", "--snapshot", "s1")
    no_traceback(r)
    assert r.exit_code == 2 and f"snapshot 's1': its folder is missing at {s1} (moved or deleted)" in said(r), said(r)
    assert Registry(led).models() == []
    r = ok(run(led, "snapshot", "list"))
    [row] = [row for row in table_rows(r.stdout) if row and row[0] == "s1"]
    assert "MISSING" in " ".join(row), row
    assert f"its folder is missing at {s1}" in said(r)


# -- finding 3: a table changed outside consentry ------------------------------------------------------------


def test_a_table_changed_outside_consentry_is_reported_and_not_trained_on(world) -> None:
    """A row appended with deltalake's write_deltalake: verify flagged the row
    but not that the table was no longer at the version and row count the
    manifest records; purge said "nothing to remove"; model register recorded
    "trained on d1 version 0 (N rows)", which was not what was on disk. Now
    verify fails on the version and row count, and purge and model register
    refuse it (lineage must name what the model saw)."""
    tmp, led = world
    d1 = build(led, tmp / "export", "d1")
    object_(led, "eve")
    ok(run(led, "snapshot", "purge", "d1"))  # eve leaves; the manifest records version 3 (write, vacuum start/end)
    recorded = Registry(led).require("d1").manifest
    plant(d1, "eve")
    r = run(led, "snapshot", "verify", "d1")
    no_traceback(r)
    assert r.exit_code == 1, said(r)
    assert (f"snapshot 'd1' ({d1}): its table was changed outside consentry: it is at Delta version "
            f"{recorded.table_version + 1} with {recorded.rows + 1} rows, but consentry recorded version "
            f"{recorded.table_version} with {recorded.rows} rows") in said(r), said(r)
    assert "planted (user eve)" in said(r)
    for args in (("snapshot", "purge", "d1"), ("model", "register", "mt", "--snapshot", "d1")):
        r = run(led, *args)
        no_traceback(r)
        assert r.exit_code == 2 and "its table was changed outside consentry" in said(r), (args, said(r))
        assert "nothing to remove" not in said(r)
    assert Registry(led).models() == []
    r = ok(run(led, "snapshot", "list"))
    assert "CHANGED OUTSIDE CONSENTRY" in said(r)


def test_a_data_file_rewritten_in_place_is_reported_by_verify(world) -> None:
    """A Parquet file rewritten under its own name (same rows, other text) moves
    no Delta version and no row count, so verify called the snapshot fine.
    Its digest (recorded at build and at each purge) now tells."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tmp, led = world
    d1 = build(led, tmp / "export", "d1")
    ok(run(led, "snapshot", "verify", "d1"))
    victim = Path(DeltaTable(str(d1 / "table")).file_uris()[0].removeprefix("file://"))
    rows = pq.read_table(victim)
    rows = rows.set_column(rows.schema.get_field_index("text"), "text",
                           pc.binary_join_element_wise(rows.column("text"), pa.scalar(" call +44 20 7946 0958"), ""))
    pq.write_table(rows, victim)
    r = run(led, "snapshot", "verify", "d1")
    no_traceback(r)
    assert r.exit_code == 1, said(r)
    assert f"snapshot 'd1' ({d1}): its files are not the ones consentry recorded" in said(r), said(r)
    assert "a data file or an image was rewritten outside consentry" in said(r)


def test_model_register_still_takes_a_table_consentry_purged(world) -> None:
    """The check above must not refuse consentry's own commits: a purge's write and its vacuum."""
    tmp, led = world
    build(led, tmp / "export", "s")
    object_(led, "eve")
    ok(run(led, "snapshot", "purge", "s"))
    r = ok(run(led, "model", "register", "m", "--snapshot", "s"))
    m = Registry(led).require("s").manifest
    assert f"trained on s version {m.table_version} ({m.rows} rows" in said(r)
    assert ok(run(led, "snapshot", "verify", "s"))


# -- finding 4: counts and unknown ids ---------------------------------------------------------------------


def test_verify_counts_rows_and_lists_problems_separately(world) -> None:
    """verify said "3 of 7,169 rows should not be there" for one row with three problems."""
    tmp, led = world
    d1 = build(led, tmp / "export", "d1")
    object_(led, "eve")
    ok(run(led, "snapshot", "purge", "d1"))  # eve's 4 rows leave: 8 stay
    plant(d1, "eve")  # one row with two problems: its author objected, and it is not in the export
    r = run(led, "snapshot", "verify", "d1")
    assert r.exit_code == 1
    assert "d1: 1 of 9 rows should not be there (2 problems):" in said(r), said(r)


def test_impact_of_an_id_that_is_no_user_does_not_reassure(world) -> None:
    """`consentry impact u9999999` (no such user) answered "no snapshot holds
    their rows", as if the person had been checked and found clear."""
    tmp, led = world
    build(led, tmp / "export", "s1")
    r = run(led, "impact", "u9999999")
    no_traceback(r)
    assert r.exit_code == 2, said(r)
    assert "no snapshot holds their rows" not in said(r)
    assert f"u9999999: not a user of the export the snapshots were built from ({tmp / 'export'})" in said(r), said(r)
    assert "fix: check the id" in said(r)
    assert "s1 (built" in said(ok(run(led, "impact", "ann")))  # a user of the export is answered as before


def test_purge_receipts_of_a_moved_snapshot_do_not_crash(world) -> None:
    """Found beside finding 2: `/me/receipts.json` and `consentry audit receipt`
    read each purge's facts from the table's log, and a moved snapshot raised
    deltalake's TableNotFoundError there. The receipt is still issued from the
    purge's record and the audit chain; what only the table's log can say is left empty."""
    from consentry.snapshots.receipts import receipts_for

    tmp, led = world
    s1 = build(led, tmp / "export", "s1")
    object_(led, "eve")
    ok(run(led, "snapshot", "purge", "s1"))
    [before] = receipts_for(led, "eve")
    assert before["removed_in_version"] == 1
    s1.rename(tmp / "s1-archived")
    [after] = receipts_for(led, "eve")
    assert after["removed_in_version"] is None and after["audit"] == before["audit"] and after["rows"] == 4


def test_the_privacy_center_still_answers_with_a_moved_snapshot(center: CenterKit, tmp_path: Path) -> None:  # noqa: F811
    """Guard for finding 2: /me and its download call the same `impact`, whose
    answer now carries the snapshots it could not check beside the list; a
    moved snapshot must not break the page (it is in `impact(...).unchecked`)."""
    from consentry.snapshots import build as build_snapshot

    c = center.signed_in_client(ALICE)
    pol = center.app.state.center.policy  # type: ignore[attr-defined]
    build_snapshot(center.export, center.ledger, pol, datetime(2024, 6, 26, tzinfo=UTC), "train-1", out=tmp_path / "train-1")
    (tmp_path / "train-1").rename(tmp_path / "moved")
    page = c.get("/me")
    assert page.status_code == 200
    assert [u.snapshot for u in impact(center.ledger, ALICE).unchecked] == ["train-1"]
    # ... and the person is told of it, on the page and in the download, not left to think it holds nothing.
    text = " ".join(page.text.split())
    assert "The training set train-1 (made" in text and "cannot be checked right now" in text, text
    assert "None of your data is or was in a training set." not in text
    download = c.get("/me/download")
    assert download.status_code == 200
    import io
    import json
    import zipfile

    sets = json.loads(zipfile.ZipFile(io.BytesIO(download.content)).read("training_sets.json"))
    assert [(s["snapshot"], s.get("cannot_be_checked")) for s in sets] == [("train-1", True)]
