"""The tables the DPO report counts from (models, purges, people removed,
snapshots, the notice outbox), checked against the audit log and the ledger.

DPO trial: deleting a model's row, a purged person or editing a purge's count,
and flipping in-app notices to "shown" with sqlite3 all passed `audit verify`
(exit 0), and the report, "verified intact before counting", then said
"0 models flagged", "removing 3 rows" and "1,240 notices delivered"."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli_kit import cli, ok
from consentry.generate import generate

pytestmark = pytest.mark.slow  # builds and purges a snapshot, runs a campaign

AT = "2024-06-26T00:00:00Z"


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home where everything was done through consentry: import, an in-app
    campaign with some notices shown, a snapshot, an objection, a purge, a model."""
    home = tmp_path_factory.mktemp("derived")
    generate(home / "export", 300, seed=7, media=0)
    led = f"sqlite:///{home / 'consentry.db'}"
    ok(cli("ledger", "import", home / "export" / "events.jsonl", "--ledger", led))
    cutoff = (datetime.now(UTC) + timedelta(days=40)).strftime("%Y-%m-%dT00:00:00Z")
    ok(cli("notify", "--data", home / "export", "--cutoff", cutoff, "--campaign", "first", "--channels", "in_app",
           "--platform", "Pixgram", "--controller-name", "Pixgram Ltd", "--controller-address", "Dublin",
           "--dpo", "dpo@pixgram.example", "--base-url", "https://privacy.example.org", "--ledger", led))
    with sqlite3.connect(home / "consentry.db") as db:
        pending = [k for (k,) in db.execute("SELECT dedupe_key FROM notice_outbox WHERE state = 'pending' ORDER BY 1")]
    assert len(pending) > 10
    (home / "shown.jsonl").write_text("".join(json.dumps({"dedupe_key": k}) + "\n" for k in pending[:5]))
    ok(cli("notices", "ack", "first", home / "shown.jsonl", "--ledger", led))
    ok(cli("snapshot", "build", "--data", home / "export", "--at", AT, "--name", "s1", "--out", home / "snap" / "s1",
           "--ledger", led))
    ok(cli("model", "register", "llm-v1", "--snapshot", "s1", "--ledger", led))
    with sqlite3.connect(home / "consentry.db") as db:
        author = db.execute("SELECT user_id FROM purged_people LIMIT 1").fetchone()
    assert author is None
    s1 = home / "snap" / "s1" / "table"
    from deltalake import DeltaTable

    who = DeltaTable(str(s1)).to_pyarrow_table(columns=["user_id"]).column("user_id")[0].as_py()
    ok(cli("object", who, "--ledger", led))
    ok(cli("snapshot", "purge", "s1", "--ledger", led))
    ok(cli("audit", "verify", "--ledger", led))
    return home


def copy_of(honest: Path, tmp_path: Path) -> str:
    with sqlite3.connect(honest / "consentry.db") as src, sqlite3.connect(tmp_path / "consentry.db") as dst:
        src.backup(dst)  # with what its WAL holds: a copy of the file alone lacks the last commits
    return f"sqlite:///{tmp_path / 'consentry.db'}"


@pytest.mark.parametrize("sql, said", [
    ("DELETE FROM models", "model 'llm-v1' is registered in the audit log but missing from the models table"),
    ("UPDATE models SET registered_us = registered_us + 86400000000",
     "models row 'llm-v1': its registration time is not the one its audit record bears"),
    # a count no purge of this home can have (3 was flaky: the objector, the table's first row, had 3 rows at times)
    ("UPDATE snapshot_purges SET rows_removed = 987654",
     "snapshot_purges row #1: rows_removed is 987654, but its audit record says"),
    ("DELETE FROM purged_people", "but purged_people lists 0"),
    ("UPDATE snapshots SET rows = rows + 1", "snapshots row 's1': rows is"),
    ("UPDATE notice_outbox SET state = 'shown' WHERE state = 'pending'",
     "is 'shown' in the outbox, but the ledger has no notified event for it"),
    ("UPDATE notice_outbox SET state = 'pending' WHERE state = 'shown'",
     "as notified, but the outbox no longer says that notice was delivered"),
])
def test_a_table_the_report_counts_from_changed_outside_consentry_is_found(honest: Path, tmp_path: Path, sql: str,
                                                                            said: str) -> None:
    led = copy_of(honest, tmp_path)
    with sqlite3.connect(tmp_path / "consentry.db") as db:
        assert db.execute(sql).rowcount > 0
    r = cli("audit", "verify", "--ledger", led)
    text = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 1, text
    assert said in text and "outside consentry" in text, text
    r = cli("report", "--at", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "--out", tmp_path / "rep", "--no-pdf",
            "--ledger", led)
    assert r.exit_code == 2 and "No report was written" in " ".join(r.stderr.split()), r.stderr
    assert not (tmp_path / "rep" / "report.html").exists()


def test_the_honest_home_verifies_and_reports(honest: Path, tmp_path: Path) -> None:
    led = copy_of(honest, tmp_path)
    ok(cli("audit", "verify", "--ledger", led))
    ok(cli("report", "--at", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "--out", tmp_path / "rep", "--no-pdf",
           "--ledger", led))


def test_a_snapshot_built_again_under_a_name_once_unregistered_verifies(honest: Path, tmp_path: Path) -> None:
    """A build whose folder could not be moved into place is unregistered (its record says why); a later
    build under the same name is a new snapshot. The records are read in chain order, so it is not taken
    for a row added outside consentry."""
    from consentry.ledger import Ledger
    from consentry.snapshots import Registry

    led = copy_of(honest, tmp_path)
    with Ledger(led) as ledger:
        Registry(ledger).remove("s1", why="its folder could not be moved into place (a test)")
    ok(cli("snapshot", "build", "--data", honest / "export", "--at", AT, "--name", "s1", "--out", tmp_path / "s1",
           "--ledger", led))
    ok(cli("audit", "verify", "--ledger", led))
