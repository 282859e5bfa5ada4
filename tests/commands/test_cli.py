"""The `consentry` command end to end: through Typer's CliRunner on `consentry.cli.app`
and through the installed console script in a real subprocess.

Every refusal exits 2 with a message a person can act on, never a traceback,
and never prints a ledger password.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from cli_kit import cli, ok, table_rows
from consentry.engine import ORDER
from consentry.policy import load_policy, parse_policy, preset_names, preset_text
from consentry.timeutil import iso, parse_instant
from exportkit import item, user, write_export

AT = "2024-06-26T00:00:00Z"
CONSOLE_SCRIPT = Path(sys.executable).parent / "consentry"
RULES = [r.value for r in ORDER]  # the 16 reasons, in contract order
PERSON_RULES = RULES[5:12]

USERS = [
    user("alice"),
    user("bob", birth_date="2010-01-01"),  # a minor
    user("carol", country="US", language="en"),
    user("dave"),  # never notified
]
CONTENT = [
    item("p1", "alice"),
    item("ph1", "alice", kind="photo", media_path="media/ph1.jpg"),
    item("pm1", "alice", kind="private_message"),
    item("c1", "carol", kind="comment", parent_id="p1"),
    item("p2", "dave"),
    item("s1", "alice", kind="story", visibility="friends"),
]
TAGS = [{"item_id": "ph1", "tagged_user_id": "bob"}]
EVENTS = [
    {"event_id": "e1", "user_id": "alice", "type": "notified", "at": "2024-01-01T00:00:00Z", "channel": "email"},
    {"event_id": "e2", "user_id": "carol", "type": "notified", "at": "2024-01-01T00:00:00Z", "channel": "email"},
    {"event_id": "e3", "user_id": "carol", "type": "objected", "at": "2024-03-01T00:00:00Z", "channel": "web"},
]
EXPECTED = {
    "p1": "eligible",
    "ph1": "tagged_person",
    "pm1": "private_message",
    "c1": "objected",
    "p2": "not_notified",
    "s1": "not_public",
}


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh working folder that is also CONSENTRY_HOME, with an export and events."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    monkeypatch.delenv("CONSENTRY_LEDGER", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at 80 columns otherwise
    write_export(tmp_path / "export", USERS, CONTENT, TAGS)
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return tmp_path


def refused(result) -> str:
    """Exit 2 through consentry's own error path: a message, no traceback."""
    text = result.stdout + result.stderr
    assert result.exit_code == 2, f"exit {result.exit_code}\n{text}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in text
    assert "\nerror: " in "\n" + result.stderr, result.stderr
    return result.stderr[result.stderr.index("error: ") :]


def decisions(path: Path) -> dict[str, str]:
    rows = pq.read_table(path).to_pylist()
    return {r["item_id"]: r["reason"] for r in rows}


# -- policies ------------------------------------------------------------------------------------


def test_policy_list_shows_every_builtin_with_its_hash(home):
    r = ok(cli("policy", "list"))
    assert set(preset_names()) == {"recommended", "meta-2024", "consent-only"}
    for name in preset_names():
        row = next(row for row in table_rows(r.stdout) if row and row[0] == name)
        assert row[1] == load_policy(name).hash


@pytest.mark.parametrize("name", ["recommended", "meta-2024", "consent-only"])
def test_policy_show_prints_a_loadable_yaml_with_the_same_hash(home, name):
    r = ok(cli("policy", "show", name))
    assert yaml.safe_load(r.stdout)["name"] == name
    policy = parse_policy(r.stdout)
    assert policy.hash == load_policy(name).hash
    assert r.stdout == preset_text(name)
    assert load_policy(name).hash in r.stderr  # the hash goes to stderr, so stdout stays pure YAML
    # what a person does next: save it and check it
    (home / "mine.yaml").write_text(r.stdout)
    check = ok(cli("policy", "check", "mine.yaml"))
    assert f"hash {policy.hash}" in check.stdout


def test_policy_check_a_good_file(home):
    data = yaml.safe_load(preset_text("recommended"))
    data["name"] = "ours"
    data["jurisdictions"][1]["notice_days"] = 60
    (home / "ours.yaml").write_text(yaml.safe_dump(data))
    r = ok(cli("policy", "check", "ours.yaml"))
    expected = load_policy(str(home / "ours.yaml")).hash
    assert expected != load_policy("recommended").hash
    assert "ours.yaml: valid policy 'ours'" in r.stdout
    assert expected in r.stdout


@pytest.mark.parametrize(
    "case,text,words",
    [
        (
            "private_message",
            preset_text("recommended").replace("kinds: [post,", "kinds: [private_message, post,"),
            "private_message can never be used",
        ),
        (
            "yaml syntax",
            preset_text("recommended").replace("minimum_age: 18\n", "minimum_age: 18: 19\n"),
            "bad.yaml, line 8: not valid YAML",
        ),
        (
            "unknown field",
            preset_text("recommended").replace("    notice_days: 30\n", "    notice_days: 30\n    bogus: 1\n", 1),
            "jurisdictions[0].bogus: unknown field",
        ),
        # A README walk-through: an impossible date crashed with PyYAML's traceback.
        *[(f"impossible date {d}", preset_text("recommended").replace("content_since: null", f"content_since: {d}"),
           f"bad.yaml, line {line}: '{d}' is not a real date ({why})")
          for d, why, line in (("2024-13-01", "month must be in 1..12", 10), ("2024-02-30", "day is out of range for month", 10),
                               ("2020-01-01T00:00:00+25:00", "its offset from UTC is out of range", 10))],
    ],
)
def test_policy_check_a_bad_file(home, case, text, words):
    (home / "bad.yaml").write_text(text)
    msg = refused(cli("policy", "check", "bad.yaml"))
    assert "bad.yaml" in msg
    assert words in msg


def test_policy_check_a_missing_file(home):
    msg = refused(cli("policy", "check", "nope.yaml"))
    assert "'nope.yaml' is neither a built-in policy nor a file" in msg
    assert "fix:" in msg


# -- validate ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_validate_a_good_export(home):
    before = sorted(p.name for p in (home / "export").iterdir())
    r = ok(cli("validate", "--data", "export"))
    tables = ("users", "content", "tags")
    counts = {row[0]: (row[1], row[2]) for row in table_rows(r.stdout) if row and row[0] in tables}
    assert counts == {"users": ("parquet", "4"), "content": ("parquet", "6"), "tags": ("parquet", "1")}
    assert "valid" in r.stdout
    memo = json.loads((home / ".consentry" / "validated.json").read_text())
    assert len(memo) == 1 and next(iter(memo.values()))["rows"] == {"users": 4, "content": 6, "tags": 1}
    assert sorted(p.name for p in (home / "export").iterdir()) == before
    assert not (home / "consentry.db").exists()  # validating needs no ledger


@pytest.mark.slow
@pytest.mark.parametrize(
    "users,content,file,column",
    [
        (USERS, CONTENT + [item("x1", "ghost")], "content.parquet", "user_id"),
        (USERS + [user("eve", country="ZZ")], CONTENT, "users.parquet", "country"),
        (USERS + [user("alice", handle="again")], CONTENT, "users.parquet", "user_id"),
        (USERS, CONTENT + [item("x1", "alice", media_path="../../etc/passwd")], "content.parquet", "media_path"),
    ],
    ids=["dangling user_id", "unknown country", "duplicate user_id", "media_path escapes"],
)
def test_validate_a_bad_export(home, users, content, file, column):
    write_export(home / "bad", users, content, TAGS)
    msg = refused(cli("validate", "--data", "bad"))
    assert f"{file}, column '{column}'" in msg
    assert re.search(r"example: .*\brow \d+\b", msg), msg
    assert "fix:" in msg
    assert "nothing was imported" in msg
    assert not (home / ".consentry" / "validated.json").exists()


@pytest.mark.slow
def test_validate_a_missing_table_and_a_missing_folder(home):
    (home / "export" / "users.parquet").unlink()
    msg = refused(cli("validate", "--data", "export"))
    assert "the table 'users' is missing" in msg
    assert "fix: add users.parquet, users.jsonl or users.csv" in msg
    msg = refused(cli("validate", "--data", "nowhere"))
    assert "nowhere: no such export folder" in msg


# -- ledger -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ledger_import_counts_and_is_idempotent(home):
    r = ok(cli("ledger", "import", "events.jsonl"))
    assert "3 events read, 3 added, 0 already in the ledger (events #1-#3)" in r.stdout
    assert (home / "consentry.db").exists()  # the default ledger lives in CONSENTRY_HOME
    r = ok(cli("ledger", "import", "events.jsonl"))
    assert "3 events read, 0 added, 3 already in the ledger" in r.stdout
    r = ok(cli("ledger", "status"))
    assert "3 events, watermark #3" in r.stdout


@pytest.mark.slow
def test_ledger_import_of_a_bad_file_writes_nothing(home):
    lines = [json.dumps(e) for e in EVENTS] + [json.dumps({"user_id": "x", "type": "objected", "at": "soon"})]
    (home / "bad.jsonl").write_text("\n".join(lines) + "\n")
    msg = refused(cli("ledger", "import", "bad.jsonl"))
    assert "bad.jsonl, line 4, column 'at'" in msg
    assert "nothing was imported" in msg
    assert "0 events" in ok(cli("ledger", "status")).stdout
    msg = refused(cli("ledger", "import", "missing.jsonl"))
    assert "missing.jsonl: no such file" in msg


@pytest.mark.slow
def test_ledger_show_table_and_json(home):
    ok(cli("ledger", "import", "events.jsonl"))
    r = ok(cli("ledger", "show", "carol"))
    rows = [row for row in table_rows(r.stdout) if row and row[0].isdigit()]
    assert [(row[1], row[2], row[3]) for row in rows] == [
        ("2024-01-01T00:00:00Z", "notified", "email"),
        ("2024-03-01T00:00:00Z", "objected", "web"),
    ]
    assert "now: objects, has not consented, was notified" in r.stdout

    r = ok(cli("ledger", "show", "carol", "--json"))
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(e["event_id"], e["seq"], e["type"], e["at"], e["channel"]) for e in events] == [
        ("e2", 2, "notified", "2024-01-01T00:00:00Z", "email"),
        ("e3", 3, "objected", "2024-03-01T00:00:00Z", "web"),
    ]
    assert all(e["user_id"] == "carol" for e in events)
    # Imported events keep the file's channel and say which file they came from (CONTRACT §2).
    assert {e["imported_from"] for e in events} == {str((home / "events.jsonl").resolve())}
    ok(cli("object", "dave"))
    live = [json.loads(line) for line in ok(cli("ledger", "show", "dave", "--json")).stdout.splitlines()][-1]
    assert live["channel"] == "cli" and live["imported_from"] is None

    assert "no events for nobody" in ok(cli("ledger", "show", "nobody")).stdout
    assert ok(cli("ledger", "show", "nobody", "--json")).stdout == ""


@pytest.mark.slow
def test_object_records_an_objection_now_that_applies_from_its_time(home):
    ok(cli("ledger", "import", "events.jsonl"))
    r = ok(cli("object", "dave"))
    m = re.search(r"recorded as event #(\d+); it applies from\s+(\S+Z)", r.stdout)
    assert m, r.stdout
    # not "from then on" only: the operator is told that existing snapshots lose the rows at the next purge
    assert "snapshots already built" in " ".join(r.stdout.split()) and "snapshot purge" in r.stdout
    # The command it names runs as written (`consentry snapshot purge` alone was refused: "name a snapshot, or
    # pass --all"), and says what it did where there is nothing to purge (it printed nothing at all).
    named = re.search(r"`consentry (snapshot purge[^`]*)`", " ".join(r.stdout.split()))
    assert named, r.stdout
    purged = ok(cli(*named.group(1).split())).stdout
    assert "no snapshot in this ledger yet: nothing to purge" in purged, purged
    seq, printed = int(m.group(1)), m.group(2)
    assert seq == 4

    shown = json.loads(ok(cli("ledger", "show", "dave", "--json")).stdout)
    assert (shown["seq"], shown["type"], shown["channel"], shown["at"]) == (4, "objected", "cli", printed)
    rows = [row for row in table_rows(ok(cli("ledger", "show", "dave")).stdout) if row and row[0] == "4"]
    assert rows and rows[0][1:4] == [printed, "objected", "cli"]

    # Once means once, as in the privacy center: a second objection while the first is in force records nothing
    # (it used to record event #5, "it applies from" a later instant than the objection already had).
    again = " ".join(ok(cli("object", "dave")).stdout.split())
    assert f"dave already objects: event #{seq}, in force since {printed}; nothing new was recorded" in again, again
    assert ok(cli("ledger", "status")).stdout.count("4 events") == 1

    # it takes effect at exactly that instant, not a microsecond before
    at = parse_instant(printed)
    ok(cli("evaluate", "--data", "export", "--at", printed, "--out", "now.parquet"))
    assert decisions(home / "now.parquet")["p2"] == "objected"
    before = iso(at - timedelta(microseconds=1))
    ok(cli("evaluate", "--data", "export", "--at", before, "--out", "before.parquet"))
    assert decisions(home / "before.parquet")["p2"] == "not_notified"


# -- evaluate ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_evaluate_writes_one_decision_per_item_and_prints_every_reason(home, fmt):
    write_export(home / f"export-{fmt}", USERS, CONTENT, TAGS, fmt=fmt)
    ok(cli("ledger", "import", "events.jsonl"))
    r = ok(cli("evaluate", "--data", f"export-{fmt}", "--at", AT, "--policy", "recommended", "--out", "d.parquet"))

    table = pq.read_table(home / "d.parquet")
    assert table.column_names == ["item_id", "user_id", "eligible", "reason"]
    assert table.num_rows == len(CONTENT)
    rows = table.to_pylist()
    assert {r["item_id"]: r["reason"] for r in rows} == EXPECTED
    assert {r["item_id"]: r["user_id"] for r in rows} == {c["item_id"]: c["user_id"] for c in CONTENT}
    assert all(r["eligible"] == (r["reason"] == "eligible") for r in rows)

    printed = {row[1]: int(row[2].replace(",", "")) for row in table_rows(r.stdout) if len(row) > 2 and row[1] in RULES}
    assert list(printed) == RULES  # all 15, in contract order, zeros included
    assert printed == {reason: list(EXPECTED.values()).count(reason) for reason in RULES}
    total = [row for row in table_rows(r.stdout) if len(row) > 2 and row[1] == "total"]
    assert total and total[0][2] == "6"
    assert "wrote 6 decisions to d.parquet" in r.stdout
    assert load_policy("recommended").hash in r.stdout
    assert "ledger up to event #3" in r.stdout


def test_a_second_evaluate_reads_the_ledger_through_its_extract_and_sees_a_new_objection(home):
    """#15 point 1: the CLI keeps the events it read per watermark in
    CONSENTRY_HOME; a re-run reads only the events after it, and an objection
    recorded in between is honoured."""
    ok(cli("ledger", "import", "events.jsonl"))
    ok(cli("evaluate", "--data", "export", "--at", AT, "--out", "d1.parquet"))
    extracts = list((home / ".consentry" / "extracts").glob("events-*.parquet"))
    assert len(extracts) == 1 and pq.read_table(extracts[0]).num_rows == 3
    assert decisions(home / "d1.parquet") == EXPECTED
    (home / "more.jsonl").write_text(json.dumps(
        {"event_id": "e4", "user_id": "alice", "type": "objected", "at": "2024-02-01T00:00:00Z", "channel": "web"}) + "\n")
    ok(cli("ledger", "import", "more.jsonl"))
    r = ok(cli("evaluate", "--data", "export", "--at", AT, "--out", "d2.parquet"))
    assert "ledger up to event #4" in r.stdout
    assert pq.read_table(extracts[0]).num_rows == 4
    assert {k for k, v in decisions(home / "d2.parquet").items() if v == "objected"} == {"c1", "p1", "ph1"}


@pytest.mark.slow
def test_evaluate_with_another_policy_and_a_policy_file(home):
    ok(cli("ledger", "import", "events.jsonl"))
    ok(cli("evaluate", "--data", "export", "--at", AT, "--policy", "meta-2024", "--out", "meta.parquet"))
    meta = decisions(home / "meta.parquet")
    assert meta["ph1"] == "eligible"  # meta-2024 does not look at tagged people
    assert meta["c1"] == "eligible"  # nor at objections outside Europe
    (home / "mine.yaml").write_text(preset_text("meta-2024").replace("minimum_age: 18", "minimum_age: 21")
                                    .replace("name: meta-2024", "name: mine"))
    r = ok(cli("evaluate", "--data", "export", "--at", AT, "--policy", "mine.yaml", "--out", "mine.parquet"))
    assert load_policy(str(home / "mine.yaml")).hash in r.stdout
    assert decisions(home / "mine.parquet") == meta


@pytest.mark.parametrize("who", [" dave", "dave ", "da\tve", "dave\u200b"])
def test_object_refuses_an_id_that_can_match_no_export(home, who):
    """A README walk-through: `consentry object " u0000042"` was recorded, and
    could never protect anyone (the export refuses ids with such spaces)."""
    msg = refused(cli("object", who))
    assert f"user_id: {who!r} begins or ends with white space or holds a control character" in msg, msg
    assert ok(cli("ledger", "status")).stdout.count(": 0 events") == 1


def test_evaluate_on_a_ledger_without_events_says_so(home):
    """A README walk-through: evaluate run in another folder made a new empty
    ledger there and decided as if nobody had ever objected, with exit 0 and
    no word but "ledger up to event #0"."""
    msg = refused(cli("evaluate", "--data", "export", "--at", AT, "--out", "d.parquet"))
    assert f"there is no ledger at {home / 'consentry.db'}; nothing was read, and no empty ledger was made there" in msg
    assert not (home / "consentry.db").exists()
    (home / "none.jsonl").write_text("")
    ok(cli("ledger", "import", "none.jsonl"))  # a ledger with no events yet
    r = ok(cli("evaluate", "--data", "export", "--at", AT, "--out", "d.parquet"))
    said = " ".join(r.stderr.split())
    assert f"warning: the ledger sqlite:///{home / 'consentry.db'} holds no events" in said, said
    assert "know of no notice, objection, consent or erasure request" in said and "consentry ledger import FILE" in said
    r = ok(cli("explain", "c1", "--data", "export", "--at", AT))
    assert "holds no events" in r.stderr
    ok(cli("ledger", "import", "events.jsonl"))
    r = ok(cli("evaluate", "--data", "export", "--at", AT, "--out", "d.parquet"))
    assert "holds no events" not in r.stderr and decisions(home / "d.parquet")["c1"] == "objected"


@pytest.mark.parametrize("at, why", [("yesterday", ""), ("26/06/2024", ""), ("2024-13-01T00:00:00Z", " (month must be in 1..12)"),
                                     ("2024-02-30", " (day is out of range for month)"),
                                     ("2024-06-26T00:00:00+25:00", " (its offset from UTC is out of range)")])
def test_evaluate_with_a_bad_cutoff(home, at, why):
    """A README walk-through: an impossible month or offset was only "not an ISO 8601 cut-off time": it says which."""
    msg = refused(cli("evaluate", "--data", "export", "--at", at, "--out", "d.parquet"))
    assert f"'{at}' is not an ISO 8601 cut-off time{why}\n" in msg, msg
    assert "fix: write it like 2024-06-26T00:00:00Z" in msg
    assert not (home / "d.parquet").exists()


def test_evaluate_with_an_unknown_policy(home):
    msg = refused(cli("evaluate", "--data", "export", "--at", AT, "--policy", "gdpr-max", "--out", "d.parquet"))
    assert "'gdpr-max' is neither a built-in policy nor a file" in msg
    for name in preset_names():
        assert name in msg
    assert not (home / "d.parquet").exists()


@pytest.mark.slow
def test_evaluate_to_a_missing_folder(home):
    msg = refused(cli("evaluate", "--data", "export", "--at", AT, "--out", "no/such/d.parquet"))
    assert "no/such/d.parquet: its folder does not exist" in msg
    assert "fix:" in msg
    assert not (home / "no").exists()


@pytest.mark.parametrize(("out", "words"), [
    ("/proc/d.parquet", "/proc/d.parquet: cannot write in /proc"),  # was DuckDB's IOException, after all the work
    ("folder.parquet", "folder.parquet: is a folder (an evaluation on Spark writes one); on DuckDB the decisions are one file"),
    ("d.csv", "d.csv: the decisions file must end in .parquet"),  # had no fix line
    ("nodir/d.parquet", "nodir/d.parquet: its folder does not exist"),
    ("", "fix: e.g. --out decisions.parquet"),  # `--out "$UNSET"`: a traceback (Path('.') has an empty name)
    ("..", "fix: e.g. --out ../decisions.parquet"),
])
def test_evaluate_refuses_an_output_it_cannot_write_before_deciding(home, out, words):
    """A README walk-through: a bad --out was refused only after the export
    had been read and checked (a full read of a large one)."""
    (home / "folder.parquet").mkdir()
    r = cli("evaluate", "--data", "export", "--at", AT, "--out", out)
    msg = refused(r)
    assert words in msg and "fix:" in msg, msg
    assert "export export" not in r.stderr and "users" not in r.stderr, r.stderr  # the export was not read first


def test_snapshot_build_refuses_a_folder_it_cannot_write(home):
    ok(cli("ledger", "import", "events.jsonl"))
    msg = refused(cli("snapshot", "build", "--data", "export", "--at", AT, "--name", "s1", "--out", "/proc/s1"))
    assert "/proc/s1: cannot write in /proc" in msg  # was a traceback on the lock file /proc/.s1.lock
    msg = refused(cli("snapshot", "build", "--data", "export", "--at", AT, "--name", "s1", "--out", "/proc/x/s1"))
    assert "cannot create /proc/x" in msg
    assert "s1" not in ok(cli("snapshot", "list")).stdout  # nothing registered


def test_ledger_import_of_a_folder_says_so(home):
    msg = refused(cli("ledger", "import", str(home)))
    assert f"{home}: is a folder, not a file" in msg


@pytest.mark.slow
def test_evaluate_refuses_a_bad_export_without_writing(home):
    write_export(home / "bad", USERS, CONTENT + [item("p1", "bob")], TAGS)
    msg = refused(cli("evaluate", "--data", "bad", "--at", AT, "--out", "d.parquet"))
    assert "content.parquet, column 'item_id'" in msg
    assert not (home / "d.parquet").exists()


# -- explain ----------------------------------------------------------------------------------------


def _check_lines(text: str) -> dict[str, str]:
    """rule name -> its line, for the lines of a rules table (item first, later duplicates kept out)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"\s*(\d+)\s+([a-z_]+)\s", line)
        if m and m.group(2) in RULES and m.group(2) not in out:
            out[m.group(2)] = line
    return out


@pytest.mark.slow
def test_explain_a_photo_with_a_tagged_minor(home):
    ok(cli("ledger", "import", "events.jsonl"))
    r = ok(cli("explain", "ph1", "--data", "export", "--at", AT))
    out = r.stdout
    head, _, tagged = out.partition("tagged person bob")
    assert tagged, out
    lines = _check_lines(head)
    assert list(lines) == RULES[:15]  # every rule, in order (16, eligible, is the verdict below)
    for name, line in lines.items():
        assert re.match(rf"\s*{RULES.index(name) + 1}\s+{name}\s", line)
    assert "◀ decides" in lines["tagged_person"]
    assert sum("decides" in line for line in lines.values()) == 1
    assert "bob fails minor" in lines["tagged_person"]
    assert "FAIL" not in lines["minor"] and "pass" in lines["minor"]

    person = _check_lines(tagged)
    assert list(person) == PERSON_RULES
    assert "FAIL ◀ decides" in person["minor"]
    assert "aged 14 at the cut-off" in person["minor"]
    assert "excluded by rule 14 (tagged_person)" in out


@pytest.mark.slow
def test_explain_shows_an_objection_by_someone_without_an_account(home):
    from consentry.ledger import Ledger
    from consentry.people.third_party import ThirdParties, ThirdPartyError
    from consentry.sources import open_export

    ok(cli("ledger", "import", "events.jsonl"))
    led = Ledger(f"sqlite:///{home / 'consentry.db'}")
    export = open_export(home / "export")[0]
    parties = ThirdParties(led, export)
    ref = parties.submit("x@example.net", items="nope")
    before = ok(cli("explain", "p1", "--data", "export", "--at", AT)).stdout
    assert "no objection by anyone without an account" in before
    parties.confirm(ref, lambda conn: None)  # named only an unknown id: nothing protected yet
    assert [c.item_id for c in parties.candidates(ref)] == []
    with pytest.raises(ThirdPartyError, match="nope"):
        parties.protect(ref, ["p1", "nope"], actor="admin:dpo")
    [event] = parties.protect(ref, ["p1"], actor="admin:dpo")
    led.close()
    at = iso(event.at + timedelta(seconds=1))
    out = ok(cli("explain", "p1", "--data", "export", "--at", at)).stdout
    assert "third_party_objected" in out and "objection in force" in out and "(admin:dpo)" in out
    assert "excluded by rule 15 (third_party_objected)" in out
    # At the old cut-off the objection did not exist yet: rule 15 passes.
    assert "excluded by rule 15" not in ok(cli("explain", "p1", "--data", "export", "--at", AT)).stdout


@pytest.mark.slow
def test_explain_shows_the_fraction_of_a_second_that_decides(home):
    """A DPO's trial: notified half a second after the notice was due, the
    person fails rule 12, and explain said "needed by 2024-05-27 00:00:00 UTC,
    first notified 2024-05-27 00:00:00 UTC", which reads as on time."""
    late = {"event_id": "e9", "user_id": "dave", "type": "notified", "at": "2024-05-27T00:00:00.5Z", "channel": "email"}
    (home / "late.jsonl").write_text(json.dumps(late) + "\n")
    ok(cli("ledger", "import", "late.jsonl"))
    line = _check_lines(ok(cli("explain", "p2", "--data", "export", "--at", AT)).stdout)["not_notified"]
    assert "FAIL" in line and "needed by 2024-05-27 00:00:00 UTC" in line, line
    assert "first notified 2024-05-27 00:00:00.5 UTC" in line, line


@pytest.mark.slow
def test_explain_says_when_a_deletion_came_after_the_cut_off(home):
    """A DPO's trial: an account deleted a second after T passes rule 6, and
    explain showed "pass" beside "account deleted 2024-06-26 00:00:01 UTC"
    without saying it was after the cut-off (the same for a deleted item)."""
    users = [{**u, "deleted_at": "2024-06-26T00:00:01Z"} if u["user_id"] == "alice" else u for u in USERS]
    content = [{**c, "deleted_at": "2024-07-01T00:00:00Z"} if c["item_id"] == "p1" else c for c in CONTENT]
    write_export(home / "later", users, content, TAGS)
    ok(cli("ledger", "import", "events.jsonl"))
    lines = _check_lines(ok(cli("explain", "p1", "--data", "later", "--at", AT)).stdout)
    assert "account deleted 2024-06-26 00:00:01 UTC (after the cut-off)" in lines["account_deleted"], lines
    assert "FAIL" not in lines["account_deleted"]
    assert "deleted 2024-07-01 00:00:00 UTC (after the cut-off)" in lines["content_deleted"], lines


@pytest.mark.slow
def test_explain_says_what_changed_since_the_cut_off_for_an_eligible_item(home):
    """A DPO's trial: an author who objected after T, with the item deleted
    after T too, got "may be used at the cut-off" and nothing more, while a
    snapshot built now leaves the item out and a purge takes it out of earlier
    ones. explain now says what fails since the cut-off, and only when it does."""
    content = [{**c, "deleted_at": "2024-07-01T00:00:00Z"} if c["item_id"] == "p1" else c for c in CONTENT]
    write_export(home / "later", USERS, content, TAGS)
    ok(cli("ledger", "import", "events.jsonl"))
    before = ok(cli("explain", "p1", "--data", "later", "--at", AT)).stdout
    assert "passes every rule" in before
    assert "Since the cut-off" in before and "the item was deleted 2024-07-01 00:00:00 UTC" in before, before
    assert "now fails" not in before, before
    ok(cli("object", "alice"))
    out = " ".join(ok(cli("explain", "p1", "--data", "later", "--at", AT)).stdout.split())
    assert "passes every rule" in out  # the verdict at T stands
    assert "Since the cut-off (not counted at it): the author alice now fails rule 11 (objected); the item was " \
        "deleted 2024-07-01 00:00:00 UTC. A snapshot built now applies this" in out, out
    assert "Since the cut-off" not in ok(cli("explain", "p1", "--data", "export", "--at", "2099-01-01T00:00:00Z")).stdout


@pytest.mark.slow
def test_explain_agrees_with_evaluate_for_every_item(home):
    ok(cli("ledger", "import", "events.jsonl"))
    ok(cli("evaluate", "--data", "export", "--at", AT, "--out", "d.parquet"))
    for item_id, reason in decisions(home / "d.parquet").items():
        out = ok(cli("explain", item_id, "--data", "export", "--at", AT)).stdout
        assert out.startswith(f"{item_id} by ")
        if reason == "eligible":
            assert "passes every rule" in out
            assert "decides" not in out
        else:
            assert f"excluded by rule {RULES.index(reason) + 1} ({reason})" in out
            assert "◀ decides" in _check_lines(out)[reason]


@pytest.mark.slow
def test_explain_an_unknown_item(home):
    ok(cli("ledger", "import", "events.jsonl"))
    msg = refused(cli("explain", "nope", "--data", "export", "--at", AT))
    assert "there is no item 'nope' in this export" in msg


# -- ledger URLs ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_postgres_ledger_import_and_evaluate(home, pg_url):
    r = ok(cli("ledger", "import", "events.jsonl", "--ledger", pg_url))
    assert "3 added" in r.stdout
    assert "0 added" in ok(cli("ledger", "import", "events.jsonl", "--ledger", pg_url)).stdout
    r = ok(cli("evaluate", "--data", "export", "--at", AT, "--out", "pg.parquet", "--ledger", pg_url))
    assert decisions(home / "pg.parquet") == EXPECTED
    assert "ledger up to event #3" in r.stdout
    assert not (home / "consentry.db").exists()  # the default SQLite ledger was not touched
    shown = ok(cli("ledger", "show", "carol", "--json", "--ledger", pg_url)).stdout.splitlines()
    shown = [json.loads(line) for line in shown]
    assert [e["event_id"] for e in shown] == ["e2", "e3"]


UNREACHABLE = "postgresql+psycopg://u:s3cret@127.0.0.1:1/x"


@pytest.mark.parametrize(
    "args",
    [
        ["ledger", "import", "events.jsonl"],
        ["ledger", "show", "carol"],
        ["ledger", "status"],
        ["object", "carol"],
        ["evaluate", "--data", "export", "--at", AT, "--out", "d.parquet"],
        ["explain", "p1", "--data", "export", "--at", AT],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_unreachable_ledger_never_prints_the_password(home, args):
    r = cli(*args, "--ledger", UNREACHABLE)
    msg = refused(r)
    assert "s3cret" not in r.stdout + r.stderr
    assert "cannot reach the ledger postgresql+psycopg://u:***@127.0.0.1:1/x" in msg
    assert not (home / "d.parquet").exists()


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://u:s3cret@127.0.0.1:notaport/x", "nosuchdb://u:s3cret@host/x", "u:s3cret@127.0.0.1/x"],
)
def test_malformed_ledger_url_never_prints_the_password(home, url):
    r = cli("ledger", "status", "--ledger", url)
    refused(r)
    assert "s3cret" not in r.stdout + r.stderr


def test_ledger_url_from_the_environment(home, monkeypatch):
    monkeypatch.setenv("CONSENTRY_LEDGER", f"sqlite:///{home / 'elsewhere.db'}")
    ok(cli("ledger", "import", "events.jsonl"))
    assert (home / "elsewhere.db").exists() and not (home / "consentry.db").exists()


# -- the installed command, in a real process -------------------------------------------------------


def _run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONSENTRY_HOME": str(home), "COLUMNS": "200"}
    env.pop("CONSENTRY_LEDGER", None)
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args], cwd=home, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_console_script_refuses_a_bad_export_without_a_traceback(home):
    assert CONSOLE_SCRIPT.exists()
    write_export(home / "bad", USERS, CONTENT + [item("x1", "ghost")], TAGS, fmt="csv")
    p = _run(home, "validate", "--data", "bad")
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    assert "content.csv, column 'user_id'" in p.stderr
    assert 'example: row 7 (line 8): item_id="x1", user_id="ghost"' in p.stderr
    assert "fix:" in p.stderr

    p = _run(home, "ledger", "status", "--ledger", UNREACHABLE)
    assert p.returncode == 2
    assert "Traceback" not in p.stdout + p.stderr and "s3cret" not in p.stdout + p.stderr


@pytest.mark.slow
def test_console_script_imports_and_evaluates(home):
    p = _run(home, "ledger", "import", "events.jsonl")
    assert p.returncode == 0, p.stderr
    assert "3 added" in p.stdout
    p = _run(home, "evaluate", "--data", "export", "--at", AT, "--out", "d.parquet")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert decisions(home / "d.parquet") == EXPECTED
    for reason in RULES:
        assert reason in p.stdout


@pytest.mark.parametrize("group", ["", "snapshot", "model", "audit", "notices", "ledger", "policy", "admin", "mail"])
def test_every_command_is_summed_up_on_one_line_of_its_groups_help(group, monkeypatch):
    """`consentry --help` lists each command with the first paragraph of its
    docstring, and Typer's rich mode keeps that paragraph's line breaks: a
    summary written over two lines came out as ragged rows (`serve`, `notify`,
    `snapshot build`, `audit receipt`, `admin client` did). Wide enough that
    nothing wraps, every row of the Commands box must start with a command."""
    monkeypatch.setenv("COLUMNS", "250")
    out = ok(cli(*([group] if group else []), "--help")).stdout
    box = out[out.index("Commands"):]
    rows = [line.strip("│ ").rstrip() for line in box.splitlines()[1:] if line.startswith("│")]
    assert rows, out
    names = {r.split()[0] for r in rows}
    continued = [r for r in rows if not re.match(r"^[a-z][a-z-]*\s{2,}\S", r)]
    assert not continued, f"rows that do not start with a command: {continued}\n{out}"
    assert len(names) == len(rows)


def test_no_help_text_loses_words_to_rich_markup() -> None:
    """Typer renders help in rich mode, where `[word]` is a style tag and is
    dropped: `documents --help` said the notice shows "else a )." for "else a
    [placeholder])". Every command's and option's help must render as written."""
    from rich.markup import render
    from typer.main import get_command

    from consentry.cli import app

    eaten, seen = [], []

    def walk(cmd, path: str) -> None:  # noqa: ANN001 - a Typer (vendored click) command or group
        seen.append(path)
        texts = [("", cmd.help or "")] + [(p.name, getattr(p, "help", None) or "") for p in cmd.params]
        eaten.extend(f"{path} {name}: {text!r}" for name, text in texts if render(text).plain != text)
        for name in cmd.list_commands(None) if hasattr(cmd, "list_commands") else ():
            walk(cmd.get_command(None, name), f"{path} {name}")

    walk(get_command(app), "consentry")
    assert "consentry documents" in seen and "consentry snapshot build" in seen, seen
    assert not eaten, "help texts that rich markup shortens:\n" + "\n".join(eaten)
    out = ok(cli("documents", "--help")).stdout
    assert "placeholder" in " ".join(out.split()), out


def test_no_message_hedges_a_count_with_an_s_in_brackets() -> None:
    """"1 model(s) flagged", "1 row(s) have no value", "1 removal(s) have": a
    count says its noun in the form that agrees with it (`consentry.words`).
    Every string literal of the package and every template is read."""
    import io
    import tokenize

    import consentry

    root = Path(consentry.__file__).parent
    hedge = re.compile(r"[a-z]\(s\)\W")
    hedged = []
    for path in root.rglob("*"):
        if path.suffix == ".py":
            tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
            hedged += [f"{path.name}:{t.start[0]}" for t in tokens if t.type == tokenize.STRING and hedge.search(t.string)]
        elif path.suffix in (".j2", ".html", ".txt") and hedge.search(path.read_text(encoding="utf-8")):
            hedged.append(path.name)
    assert hedged == []


def test_what_the_cli_quotes_is_shown_as_is_even_in_brackets(home) -> None:
    """rich read "[/x]" in a user id or a cut-off as its markup: the command
    ended in a MarkupError traceback, "[bold]ann" was shown as "ann", and the
    documents' note lost its word "[placeholders]"."""
    ok(cli("ledger", "import", "events.jsonl"))
    assert ok(cli("ledger", "show", "[/x]")).stdout.strip() == "no events for [/x]"
    assert ok(cli("ledger", "show", "[bold]ann")).stdout.strip() == "no events for [bold]ann"
    assert ok(cli("ledger", "show", "u:smile:1")).stdout.strip() == "no events for u:smile:1"  # not "u😄1"
    assert "no snapshot named '[/x]'" in refused(cli("snapshot", "show", "[/x]"))
    assert "'[/x]' is not an ISO 8601 cut-off time" in refused(
        cli("evaluate", "--data", "export", "--at", "[/x]", "--out", "d.parquet"))
    assert "'[red]nope' is not an ISO 8601 cut-off time" in refused(
        cli("explain", "[/i]", "--data", "export", "--at", "[red]nope"))
    r = ok(cli("documents", "--out", "docs"))
    assert "the documents leave [placeholders] for what was not given" in r.stderr


def test_documents_without_a_privacy_center_address_leave_a_placeholder_not_a_made_up_one(home) -> None:
    """The notice linked people to https://privacy.example.org unless
    --privacy-center was given; and the note named only the controller,
    contact and DPO as missing."""
    ok(cli("ledger", "import", "events.jsonl"))
    r = ok(cli("documents", "--out", "docs", "--controller", "Pixgram B.V., Amsterdam", "--contact", "privacy@pixgram.example",
               "--dpo", "Ana Silva", "--platform", "Pixgram"))
    notice = (home / "docs" / "notice.md").read_text(encoding="utf-8")
    assert "example.org" not in notice and "[web address of the privacy center]/o/[personal-link]" in notice
    note = " ".join(r.stderr.split())
    assert "the privacy center's address (--privacy-center)" in note and "--controller)" not in note, note
    r = ok(cli("documents", "--out", "docs", "--controller", "Pixgram B.V., Amsterdam", "--contact", "privacy@pixgram.example",
               "--dpo", "Ana Silva", "--platform", "Pixgram", "--privacy-center", "https://privacy.pixgram.example/"))
    assert "note:" not in r.stderr, r.stderr
    notice = (home / "docs" / "notice.md").read_text(encoding="utf-8")
    assert "https://privacy.pixgram.example/o/[personal-link]" in notice and "[web address" not in notice
    ok(cli("documents", "--out", "docs-de", "--language", "de"))
    assert "[Webadresse des Datenschutzcenters]/o/" in (home / "docs-de" / "notice.md").read_text(encoding="utf-8")


def test_every_styled_message_turns_markup_on_for_itself() -> None:
    """The consoles print as is (markup off); a message written with rich's
    tags must say markup=True, or "[bold]Summary:[/]" is printed literally."""
    import ast

    import consentry.commands as pkg

    bare = []
    for path in Path(pkg.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "print"):
                continue
            tagged = any(isinstance(c, ast.Constant) and isinstance(c.value, str) and "[/]" in c.value
                         for arg in node.args for c in ast.walk(arg))
            markup = any(k.arg == "markup" and isinstance(k.value, ast.Constant) and k.value.value is True
                         for k in node.keywords)
            if tagged and not markup:
                bare.append(f"{path.name}:{node.lineno}")
    assert bare == []


def test_a_message_is_one_line_in_a_pipe_or_a_log(home, monkeypatch) -> None:
    """rich broke every message at 80 columns when the output was not a
    terminal (a pipe, a cron job's log): 'wrote ... decisions to
    .../decisions.parquet in 0.1s (policy' and the rest on the next line."""
    monkeypatch.setenv("COLUMNS", "80")
    ok(cli("ledger", "import", "events.jsonl"))
    out = home / ("a-rather-long-folder-name-for-the-decisions-of-this-run" * 2)
    out.mkdir()
    r = ok(cli("evaluate", "--data", "export", "--at", AT, "--out", out / "decisions.parquet"))
    [said] = [ln for ln in r.stdout.splitlines() if ln.startswith("wrote ")]
    assert said.endswith("engine duckdb)") and str(out / "decisions.parquet") in said, r.stdout


def test_lists_with_nothing_in_them_say_so_and_what_to_do(home) -> None:
    """`snapshot list` and `model list` printed a bare header, `admin client list` an empty frame."""
    ok(cli("ledger", "import", "events.jsonl"))
    assert ok(cli("snapshot", "list")).stdout.strip() == "no snapshots yet; build one with `consentry snapshot build`"
    assert "no models registered yet; record one with `consentry model register" in ok(cli("model", "list")).stdout
    assert "no API clients yet; create one with" in ok(cli("admin", "client", "list")).stdout


def test_evaluate_under_blur_says_how_many_are_usable_only_blurred(home):
    """A README walk-through: the summary of a blur run gave no count of the
    items eligible only with faces blurred (only the Parquet file had it)."""
    ok(cli("ledger", "import", "events.jsonl"))
    (home / "blur.yaml").write_text(preset_text("recommended").replace("tagged_people: require", "tagged_people: blur")
                                    .replace("name: recommended", "name: blur"))
    r = ok(cli("evaluate", "--data", "export", "--at", AT, "--policy", "blur.yaml", "--out", "b.parquet"))
    rows = pq.read_table(home / "b.parquet").to_pylist()
    n = sum(1 for row in rows if row["blur_faces"])
    eligible = sum(1 for row in rows if row["eligible"])
    assert n == 1, rows  # ph1: bob, a minor, is tagged
    assert f"of the {eligible:,} eligible, 1 item is usable only with every face blurred (blur_faces)" in " ".join(r.stdout.split())
    r = ok(cli("evaluate", "--data", "export", "--at", AT, "--out", "d.parquet"))
    assert "blur_faces" not in r.stdout


@pytest.mark.parametrize("args", [("audit", "verify"), ("impact", "u1"), ("snapshot", "list"), ("model", "list"),
                                  ("report", "--at", AT, "--out", "r", "--no-pdf"), ("ledger", "status"),
                                  ("mail", "status"), ("admin", "client", "list")])
def test_a_command_that_reads_the_ledger_refuses_one_that_is_not_there(home, args) -> None:
    """A DPO in the wrong folder (or with a typo in --ledger) got "audit log
    intact: 0 records", "no snapshot holds their rows" and a report of nothing,
    each with exit 0, and a new empty consentry.db. Now: exit 2, the path and
    the fix, and no file made."""
    msg = refused(cli(*args))
    assert f"the default ledger (consentry.db in $CONSENTRY_HOME, else the working folder): there is no ledger at {home / 'consentry.db'}" in msg, msg
    assert "`consentry ledger import FILE` starts a new ledger" in msg
    msg = refused(cli(*args, "--ledger", f"sqlite:///{home / 'typo.db'}"))
    assert f"--ledger: there is no ledger at {home / 'typo.db'}" in msg, msg
    assert not (home / "consentry.db").exists() and not (home / "typo.db").exists()
    ok(cli("ledger", "import", "events.jsonl"))
    ok(cli(*args))
    # `--ledger "$LEDGER"` with the variable unset: refused, never the default ledger just made
    for blank in ("", "  "):
        msg = refused(cli(*args, "--ledger", blank))
        assert "--ledger: the ledger given is blank (was a variable empty?); nothing was read" in msg, msg


def test_documents_with_a_passed_cutoff_warn_that_the_notice_announces_it_as_to_come(home) -> None:
    """DPO trial: `documents --cutoff 2020-01-01` wrote a notice reading "From January 1, 2020, ...",
    a cut-off `notify` refuses, without a word."""
    ok(cli("ledger", "import", "events.jsonl"))
    r = ok(cli("documents", "--out", "docs", "--cutoff", "2020-01-01T00:00:00Z"))
    said = " ".join(r.stderr.split())
    assert "warning: the cut-off 2020-01-01T00:00:00Z has passed: the notice announces it as to come" in said, said
    r = ok(cli("documents", "--out", "docs2"))
    assert "has passed" not in r.stderr


@pytest.mark.parametrize("args", [("mail", "status", "--limit", "99999999999999999999"),
                                  ("generate", "--users", "5", "--out", "g", "--seed", "-1")])
def test_numbers_out_of_range_are_usage_errors_not_tracebacks(home, args) -> None:
    """A fuzz of every option: `mail status --limit 99999999999999999999` ended in SQLite's
    OverflowError, `generate --seed -1` in numpy's "expected non-negative integer"."""
    ok(cli("ledger", "import", "events.jsonl"))
    r = cli(*args)
    text = r.stdout + r.stderr
    assert r.exit_code == 2 and "Traceback" not in text and "Invalid value for" in text, text
