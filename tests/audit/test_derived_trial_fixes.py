"""DPO trial, defects A and B.

A: `audit verify` said "intact" after edits that the report and the CLI then
showed as fact: a snapshot's policy and cut-off changed in the `snapshots`
table, its stored manifest edited ("since_cutoff:objected": 0, a minimum age
of 13), and the people a purge removed swapped or their triggering event
changed in `purged_people`. Each is now checked against the `snapshot_built`
and `snapshot_purged` records chained with them.

B: an objection deleted from the end of the ledger, with `ledger_head`
lowered to match, passed the numbering check that `evaluate` and `snapshot
build` run first, so the objector's rows went into a new snapshot. The
check now also compares the head with the last event the audit log records.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_kit import cli, ok

from consentry.generate import generate

pytestmark = pytest.mark.slow  # builds and purges snapshots

AT = "2024-06-26T00:00:00Z"
YEAR_US = 365 * 86400 * 10**6


def said(result) -> str:  # noqa: ANN001 - a click Result
    return " ".join((result.stdout + result.stderr).split())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Everything done through consentry: import, snapshot s1, an objection
    (after the cut-off) before snapshot s2, another objection, a purge of s1."""
    from deltalake import DeltaTable

    home = tmp_path_factory.mktemp("derived_fixes")
    generate(home / "export", 300, seed=7, media=0)
    led = f"sqlite:///{home / 'consentry.db'}"
    ok(cli("ledger", "import", home / "export" / "events.jsonl", "--ledger", led))
    ok(cli("snapshot", "build", "--data", home / "export", "--at", AT, "--name", "s1", "--out", home / "snap" / "s1",
           "--ledger", led))
    authors = sorted(set(DeltaTable(str(home / "snap" / "s1" / "table")).to_pyarrow_table(columns=["user_id"])
                         .column("user_id").to_pylist()))
    assert len(authors) >= 3
    ok(cli("object", authors[0], "--ledger", led))  # after the cut-off: left out of s2 as since_cutoff:objected
    ok(cli("snapshot", "build", "--data", home / "export", "--at", AT, "--name", "s2", "--out", home / "snap" / "s2",
           "--ledger", led))
    ok(cli("object", authors[1], "--ledger", led))
    ok(cli("snapshot", "purge", "s1", "--ledger", led))
    ok(cli("audit", "verify", "--ledger", led))
    with sqlite3.connect(home / "consentry.db") as db:
        assert db.execute("SELECT count(*) FROM purged_people WHERE trigger_seq IS NOT NULL").fetchone()[0] >= 2
        m2 = json.loads(db.execute("SELECT manifest FROM snapshots WHERE name = 's2'").fetchone()[0])
    assert m2["excluded_at_build"].get("since_cutoff:objected", 0) > 0, m2["excluded_at_build"]
    (home / "authors.json").write_text(json.dumps(authors))
    return home


def copy_of(home: Path, tmp_path: Path) -> str:
    with sqlite3.connect(home / "consentry.db") as src, sqlite3.connect(tmp_path / "consentry.db") as dst:
        src.backup(dst)
    return f"sqlite:///{tmp_path / 'consentry.db'}"


def edit_manifest(db: sqlite3.Connection, name: str, change) -> None:  # noqa: ANN001 - a function of the dict
    m = json.loads(db.execute("SELECT manifest FROM snapshots WHERE name = ?", (name,)).fetchone()[0])
    change(m)
    db.execute("UPDATE snapshots SET manifest = ? WHERE name = ?", (json.dumps(m, indent=2), name))


def _set(m: dict, path: tuple, value: object) -> None:
    for k in path[:-1]:
        m = m[k]
    m[path[-1]] = value


def _unpurged_author(db: sqlite3.Connection, authors: list[str]) -> str:
    gone = {u for (u,) in db.execute("SELECT user_id FROM purged_people")}
    return next(a for a in authors if a not in gone)


def _tamper(db: sqlite3.Connection, how: str, authors: list[str]) -> None:
    if how == "policy name":
        db.execute("UPDATE snapshots SET policy_name = 'consent-only' WHERE name = 's1'")
    elif how == "policy hash":
        db.execute("UPDATE snapshots SET policy_hash = 'sha256:0000000000000000' WHERE name = 's1'")
    elif how == "cutoff":
        db.execute(f"UPDATE snapshots SET cutoff_us = cutoff_us + {YEAR_US} WHERE name = 's1'")
    elif how == "built later":
        db.execute(f"UPDATE snapshots SET built_us = built_us + {YEAR_US} WHERE name = 's1'")
    elif how == "rows built":
        db.execute("UPDATE snapshots SET rows_built = rows_built + 5 WHERE name = 's1'")
    elif how == "manifest excluded":
        edit_manifest(db, "s2", lambda m: _set(m, ("excluded_at_build", "since_cutoff:objected"), 0))
    elif how == "manifest minimum age":
        edit_manifest(db, "s2", lambda m: _set(m, ("policy_document", "minimum_age"), 13))
    elif how == "manifest decisions":
        edit_manifest(db, "s2", lambda m: _set(m, ("decisions", "eligible"), m["decisions"]["eligible"] + 1))
    elif how == "manifest cutoff":
        edit_manifest(db, "s1", lambda m: _set(m, ("cutoff",), "2025-06-26T00:00:00Z"))
    elif how == "manifest purges":
        edit_manifest(db, "s1", lambda m: _set(m, ("purges",), []))
    elif how == "manifest purge count":
        edit_manifest(db, "s1", lambda m: _set(m, ("purges", 0, "rows_removed"), 0))
    elif how == "manifest rows":
        edit_manifest(db, "s1", lambda m: _set(m, ("rows",), m["rows"] + 1))
    elif how == "person swapped":
        victim = db.execute("SELECT user_id FROM purged_people ORDER BY user_id LIMIT 1").fetchone()[0]
        db.execute("UPDATE purged_people SET user_id = ? WHERE user_id = ?", (_unpurged_author(db, authors), victim))
    elif how == "trigger":
        db.execute("UPDATE purged_people SET trigger_seq = 5 WHERE trigger_seq IS NOT NULL")
    elif how == "cause":
        db.execute("UPDATE purged_people SET cause = 'account_deleted' WHERE cause = 'objected'")
    elif how == "person rows":
        db.execute("UPDATE purged_people SET rows = rows + 1")
    elif how == "purged at":
        db.execute(f"UPDATE purged_people SET purged_us = purged_us - {YEAR_US}")
    else:  # pragma: no cover
        raise AssertionError(how)


@pytest.mark.parametrize("how, words", [
    ("policy name", "snapshots row 's1': policy_name is 'consent-only', but its audit record says 'recommended'"),
    ("policy hash", "snapshots row 's1': policy_hash is 'sha256:0000000000000000'"),
    ("cutoff", "snapshots row 's1': cutoff is '2025-06-26T00:00:00Z', but its audit record says '2024-06-26T00:00:00Z'"),
    ("built later", "snapshots row 's1': it was built at"),
    ("rows built", "snapshots row 's1': rows_built is"),
    ("manifest excluded", "snapshots row 's2': manifest excluded_at_build['since_cutoff:objected'] is 0, but its audit record says"),
    ("manifest minimum age", "snapshots row 's2': manifest policy_document is not the policy its audit record names"),
    ("manifest decisions", "snapshots row 's2': manifest decisions['eligible'] is"),
    ("manifest cutoff", "snapshots row 's1': manifest cutoff is '2025-06-26T00:00:00Z'"),
    ("manifest purges", "snapshots row 's1': its manifest lists 0 purges, but the audit log records 1"),
    ("manifest purge count", "snapshots row 's1': manifest purge 1 rows_removed is 0"),
    ("manifest rows", "snapshots row 's1': manifest rows is"),
    ("person swapped", "purged_people of purge #1 are not the people its audit record names"),
    ("trigger", "purged_people of purge #1 are not the people its audit record names"),
    ("cause", "purged_people of purge #1 are not the people its audit record names"),
    ("person rows", "purged_people of purge #1 are not the people its audit record names"),
    ("purged at", "purged_people of purge #1"),
])
def test_an_edit_the_report_or_cli_would_show_as_fact_breaks_verify(home: Path, tmp_path: Path, how: str,
                                                                     words: str) -> None:
    led = copy_of(home, tmp_path)
    authors = json.loads((home / "authors.json").read_text())
    with sqlite3.connect(tmp_path / "consentry.db") as db:
        _tamper(db, how, authors)
    r = cli("audit", "verify", "--ledger", led)
    text = said(r)
    assert r.exit_code == 1, text
    assert words in text and "outside consentry" in text, text
    r = cli("report", "--at", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "--out", tmp_path / "rep", "--no-pdf",
            "--ledger", led)
    assert r.exit_code == 2 and "No report was written" in said(r), said(r)


def test_the_untouched_home_still_verifies(home: Path, tmp_path: Path) -> None:
    ok(cli("audit", "verify", "--ledger", copy_of(home, tmp_path)))


def _rehash_chain(db: sqlite3.Connection) -> None:
    """Re-hash every record from the first on, as a careful forger (or this test, making an old ledger) would."""
    from consentry.ledger.chain import GENESIS, canonical, link

    prev = GENESIS
    for seq, at_us, kind, actor, subject, data in db.execute(
            "SELECT seq, at_us, kind, actor, subject, data FROM audit_log ORDER BY seq").fetchall():
        h = link(prev, canonical(seq, at_us, kind, actor, subject, data))
        db.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
        prev = h
    db.execute("UPDATE audit_head SET last_hash = ?", (prev,))


def _as_before_the_digest(db: sqlite3.Connection) -> None:
    """The purge records as consentry wrote them before they held the digest of the people removed."""
    for seq, data in db.execute("SELECT seq, data FROM audit_log WHERE kind = 'snapshot_purged'").fetchall():
        d = json.loads(data)
        assert "people_digest" in d  # written by this version
        del d["people_digest"]
        db.execute("UPDATE audit_log SET data = ? WHERE seq = ?",
                   (json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False), seq))
    _rehash_chain(db)


def test_a_ledger_written_before_the_people_digest_still_verifies_as_far_as_it_can(home: Path, tmp_path: Path) -> None:
    """Purge records without `people_digest` (older ledgers): intact as they are; the count of people and the
    purge each row names are still checked."""
    led = copy_of(home, tmp_path)
    with sqlite3.connect(tmp_path / "consentry.db") as db:
        _as_before_the_digest(db)
    ok(cli("audit", "verify", "--ledger", led))
    with sqlite3.connect(tmp_path / "consentry.db") as db:
        db.execute("DELETE FROM purged_people WHERE rowid = (SELECT min(rowid) FROM purged_people)")
    r = cli("audit", "verify", "--ledger", led)
    assert r.exit_code == 1 and "but purged_people lists" in said(r), said(r)


# -- B: the last event deleted and the head lowered to match ------------------------------------------------


def test_a_deleted_last_objection_with_the_head_lowered_stops_evaluate_and_build(home: Path, tmp_path: Path) -> None:
    led = copy_of(home, tmp_path)
    authors = json.loads((home / "authors.json").read_text())
    with sqlite3.connect(tmp_path / "consentry.db") as db:
        last = db.execute("SELECT max(seq) FROM ledger_events").fetchone()[0]
        who = _unpurged_author(db, authors)
    ok(cli("object", who, "--ledger", led))  # the last event
    with sqlite3.connect(tmp_path / "consentry.db") as db:
        assert db.execute("SELECT user_id, type FROM ledger_events WHERE seq = ?", (last + 1,)).fetchone() == (who, "objected")
        db.execute("DELETE FROM ledger_events WHERE seq = ?", (last + 1,))
        db.execute("UPDATE ledger_head SET last_seq = ?", (last,))
    for args in (("evaluate", "--data", home / "export", "--at", AT, "--out", tmp_path / "d.parquet"),
                 ("snapshot", "build", "--data", home / "export", "--at", AT, "--name", "s3", "--out", tmp_path / "s3")):
        r = cli(*args, "--ledger", led)
        assert r.exit_code == 2, (args, said(r))
        assert (f"the audit log records ledger event #{last + 1}, but the ledger's events and its head end at "
                f"#{last}") in said(r), said(r)
        assert "`consentry audit verify` names every change" in said(r)
    assert not (tmp_path / "d.parquet").exists() and not (tmp_path / "s3").exists()
    with sqlite3.connect(tmp_path / "consentry.db") as db:
        assert db.execute("SELECT count(*) FROM snapshots WHERE name = 's3'").fetchone()[0] == 0


def test_an_imported_group_cut_short_with_the_head_lowered_is_refused(tmp_path: Path) -> None:
    """Imports are chained by `ledger_events` records (a seq range): deleting the last imported events and
    lowering the head is found from the group's range."""
    from consentry.ledger import Ledger

    generate(tmp_path / "export", 200, seed=3, media=0)
    led = f"sqlite:///{tmp_path / 'l.db'}"
    ok(cli("ledger", "import", tmp_path / "export" / "events.jsonl", "--ledger", led))
    with sqlite3.connect(tmp_path / "l.db") as db:
        assert db.execute("SELECT count(*) FROM audit_log WHERE kind = 'ledger_events'").fetchone()[0] >= 1
        last = db.execute("SELECT max(seq) FROM ledger_events").fetchone()[0]
        db.execute("DELETE FROM ledger_events WHERE seq > ?", (last - 3,))
        db.execute("UPDATE ledger_head SET last_seq = ?", (last - 3,))
    with Ledger(led) as ledger:
        problem = ledger.numbering_problem()
    assert problem is not None and f"the audit log records ledger event #{last}, but" in problem, problem
    assert f"end at #{last - 3}" in problem and "outside consentry" in problem


def test_an_intact_ledger_passes_the_numbering_check(home: Path, tmp_path: Path) -> None:
    from consentry.ledger import Ledger

    with Ledger(copy_of(home, tmp_path)) as ledger:
        assert ledger.numbering_problem() is None
