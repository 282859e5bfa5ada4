"""`consentry ledger import`: every malformed file is refused with the file, line,
field and fix, and writes nothing; a repeated event_id is never dropped silently;
on PostgreSQL the import is bulk (COPY) and a killed import releases the ledger
at once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from consentry.audit.log import verify
from consentry.cli import app
from consentry.errors import InputError, LedgerError
from consentry.ledger import Ledger, NewEvent
from consentry.ledger.tables import audit_log, events

OK = {"user_id": "u1", "type": "notified", "at": "2024-01-01T00:00:00Z", "channel": "email"}


def ev(**kw) -> str:
    return json.dumps({**OK, **kw})


def third_party(**kw) -> str:
    return json.dumps({"item_id": "i1", "type": "third_party_objected", "at": "2024-01-01T00:00:00Z", **kw})


#: name -> (the bad line as bytes or str, the field named, words in the message)
MALFORMED: dict[str, tuple[str | bytes, str | None, str]] = {
    "truncated JSON": ('{"user_id": "u1", "type": ', None, "not valid JSON"),
    "not an object": ("[1, 2]", None, "must be a JSON object"),
    "Latin-1 bytes": ('{"user_id": "Ren\xe9e", "type": "notified", "at": "2024-01-01T00:00:00Z"}'.encode("latin-1"),
                      "user_id", "the file is not UTF-8; save it as UTF-8"),
    "NUL in user_id": (ev(user_id="u\x001"), "user_id", "NUL"),
    "NUL in event_id": (ev(event_id="e\x001"), "event_id", "NUL"),
    "NUL in note": (ev(note="hello\x00there"), "note", "NUL"),
    "NUL in actor": (ev(actor="admin\x00"), "actor", "NUL"),
    "NUL in item_id": (third_party(item_id="i\x001"), "item_id", "NUL"),
    "lone surrogate in user_id": ('{"user_id": "u\\ud800", "type": "notified", "at": "2024-01-01T00:00:00Z"}',
                                  "user_id", "not valid Unicode"),
    # A README walk-through: these were imported, and could never protect anyone (the export refuses such ids).
    "space before user_id": (ev(user_id=" u1"), "user_id", "begins or ends with white space"),
    "no-break space after user_id": (ev(user_id="u1\u00a0"), "user_id", "begins or ends with white space"),
    "zero-width space after item_id": (third_party(item_id="i1\u200b"), "item_id", "begins or ends with white space"),
    "tab inside user_id": (ev(user_id="u\t1"), "user_id", "control character"),
    "unknown type": (ev(type="subscribed"), "type", "'subscribed'"),
    "unknown channel": (ev(channel="fax"), "channel", "'fax'"),
    "bad at": (ev(at="2024-13-01T00:00:00Z"), "at", "ISO 8601"),
    # DPO trial: cut to the microsecond, a consent given 900 ns after the cut-off counted at it.
    "at finer than a microsecond": (ev(at="2024-06-26T00:00:00.000000900Z"), "at", "finer than a microsecond"),
    "missing at": (json.dumps({"user_id": "u1", "type": "objected"}), "at", "required"),
    "numeric user_id": (ev(user_id=123), "user_id", "string"),
    "empty user_id": (ev(user_id=""), "user_id", "at least 1 character"),
    "user_id too long": (ev(user_id="u" * 257), "user_id", "at most 256 characters"),
    "imported_from given": (ev(imported_from="/etc/x"), "imported_from", "set by consentry"),
    "third party with user_id": (third_party(user_id="u1"), "user_id", "leave user_id out"),
    "rejection without grounds": (ev(type="objection_rejected"), "note", "compelling grounds"),
    "repeated key": ('{"user_id": "u1", "user_id": "u2", "type": "notified", "at": "2024-01-01T00:00:00Z"}',
                     "user_id", "appears twice"),
    "repeated event_id, other content": (ev(event_id="dup", type="objected"), "event_id", "line 2"),
    "event_id stored with other content": (ev(event_id="pre", type="objected"), "event_id", "event #1"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_ledger_file_is_refused_with_where_and_fix_and_writes_nothing(tmp_path, ledger_url, case):
    bad, field, words = MALFORMED[case]
    led = Ledger(ledger_url)
    led.record(NewEvent(event_id="pre", user_id="u0", type="notified", at="2023-01-01T00:00:00Z", channel="email"))
    good = [ev(user_id=f"g{i}") for i in range(5)]
    good[1] = ev(event_id="dup")  # line 2: the first occurrence of "dup"
    lines = [x.encode() for x in good[:3]] + [bad if isinstance(bad, bytes) else bad.encode()] + [x.encode() for x in good[3:]]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    before = _counts(led)
    with pytest.raises(InputError) as info:
        led.import_jsonl(path, batch_size=2)  # the bad line is in the second batch
    msg = str(info.value)
    assert f"{path}, line 4" in msg, msg
    if field:
        assert f"column '{field}'" in msg, msg
    assert words in msg, msg
    assert "nothing was imported" in msg and "\n  fix: " in msg, msg
    assert _counts(led) == before
    assert led.watermark() == 1 and led.state("g0") is None
    assert verify(led).ok
    led.close()


def test_every_bad_line_of_a_file_is_reported_in_one_run(tmp_path, ledger_url):
    """An import stopped at the first bad line: a file with twenty went back
    and forth twenty times. Every bad line is now named in one refusal (the
    first 20 listed, all of them counted), and still nothing is imported."""
    from consentry.errors import InputProblems

    local = 2 * [bad for name, (bad, _, _) in MALFORMED.items() if "repeated" not in name and "stored" not in name]
    assert len(local) > InputProblems.SHOWN
    led = Ledger(ledger_url)
    lines = [ev(user_id="g0").encode()] + [b if isinstance(b, bytes) else b.encode() for b in local] + [ev(user_id="g1").encode()]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(InputProblems) as info:
        led.import_jsonl(path, batch_size=2)
    msg = str(info.value)
    assert msg.startswith(f"{path}: {len(local)} problems, the first 20 listed; nothing was imported\n"), msg
    assert [int(n) for n in re.findall(rf"^{re.escape(str(path))}, line (\d+)", msg, re.M)] == list(range(2, 22))
    assert msg.count("nothing was imported") == 1
    assert led.watermark() == 0 and led.state("g0") is None
    two = tmp_path / "two.jsonl"
    two.write_text(ev(user_id="g0") + "\n" + ev(type="subscribed") + "\n" + ev(at="yesterday") + "\n")
    r = CliRunner().invoke(app, ["ledger", "import", str(two), "--ledger", ledger_url])
    assert r.exit_code == 2 and "2 problems; nothing was imported" in r.stderr and "line 2" in r.stderr and "line 3" in r.stderr
    led.close()


def _counts(led: Ledger) -> tuple[int, int]:
    with led.engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(events)).scalar_one(),
                conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


@pytest.mark.slow
def test_a_repeated_event_id_with_the_same_content_is_imported_once_and_said_so(tmp_path, ledger_url):
    led = Ledger(ledger_url)
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join([ev(event_id="a"), ev(event_id="b", type="objected"), ev(event_id="b", type="objected")]) + "\n")
    r = led.import_jsonl(path)
    assert (r.read, r.added, r.repeated, r.already_there) == (3, 2, 1, 0)
    assert led.state("u1").objects
    again = led.import_jsonl(path)
    assert (again.added, again.already_there, again.repeated) == (0, 2, 1)
    result = CliRunner().invoke(app, ["ledger", "import", str(path), "--ledger", ledger_url])
    assert result.exit_code == 0, result.output
    assert "2 already in the ledger" in result.output and "1 repeated in the file" in result.output
    led.close()


def test_a_later_objection_under_a_repeated_id_is_never_dropped(tmp_path, ledger):
    """Issue 11 §4: the objection on line 2 used to vanish and the person became eligible."""
    path = tmp_path / "e.jsonl"
    path.write_text(ev(event_id="x", type="consent_given") + "\n" + ev(event_id="x", type="objected") + "\n")
    with pytest.raises(InputError) as info:
        ledger.import_jsonl(path)
    msg = str(info.value)
    assert "line 2" in msg and "line 1" in msg and "column 'event_id'" in msg and "type" in msg
    assert ledger.count() == 0 and ledger.state("u1") is None


@pytest.mark.slow
def test_an_event_id_stored_with_other_content_refuses_the_file(tmp_path, ledger_url):
    led = Ledger(ledger_url)
    led.import_jsonl(_lines(tmp_path / "a.jsonl", [ev(event_id="x", type="objected", at="2024-06-01T00:00:00Z")]))
    path = _lines(tmp_path / "b.jsonl", [ev(event_id="y"), ev(event_id="x", type="objection_withdrawn")])
    result = CliRunner().invoke(app, ["ledger", "import", str(path), "--ledger", led.url])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "line 2" in result.output and "event #1" in result.output and "nothing was imported" in result.output
    assert led.count() == 1 and led.get("y") is None and led.state("u1").objects
    led.close()


def _lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(x + "\n" for x in lines))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("case", ["Latin-1 bytes", "NUL in user_id"])
def test_cli_refuses_without_a_traceback(tmp_path, ledger_url, case):
    bad, field, words = MALFORMED[case]
    path = tmp_path / "events.jsonl"
    path.write_bytes(ev().encode() + b"\n" + (bad if isinstance(bad, bytes) else bad.encode()) + b"\n")
    result = CliRunner().invoke(app, ["ledger", "import", str(path), "--ledger", ledger_url])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"line 2, column '{field}'" in result.output and words in result.output
    with Ledger(ledger_url) as led:
        assert led.count() == 0


def test_nul_is_refused_in_ids_given_in_code_too():
    with pytest.raises(ValueError, match="NUL"):
        NewEvent(user_id="u\x00", type="objected", at="2024-01-01T00:00:00Z")
    # a note from a web form is free text: control characters are dropped, as before
    assert NewEvent(user_id="u", type="objected", at="2024-01-01T00:00:00Z", note="a\x00b").note == "ab"


def test_an_id_that_can_match_no_export_is_refused_for_new_events_only():
    from consentry.ledger import StoredEvent

    with pytest.raises(ValueError, match="begins or ends with white space"):
        NewEvent(user_id=" u1", type="objected", at="2024-01-01T00:00:00Z")
    # An event already stored that way (imported before this check) is still read, as it is.
    old = StoredEvent(user_id=" u1", type="objected", at="2024-01-01T00:00:00Z", seq=1,
                      recorded_at="2024-01-01T00:00:00Z", event_id="e1")
    assert old.user_id == " u1"


def test_a_utf8_bom_is_accepted(tmp_path, ledger):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + ev().encode() + b"\n")
    assert ledger.import_jsonl(path).added == 1


# -- PostgreSQL: bulk import, a waiting writer, a killed import -------------------------------------


@pytest.mark.slow
def test_bulk_import_on_postgres_equals_sqlite(tmp_path, pg_url):
    lines = [ev(user_id=f"u{i % 50}", type=t, at=f"2024-01-{1 + i % 28:02d}T00:00:00Z", note=("n" if i % 7 == 0 else None))
             for i, t in enumerate(["notified", "objected", "consent_given", "objection_withdrawn", "erasure_requested"] * 60)]
    lines.append(third_party(note=None))
    path = _lines(tmp_path / "e.jsonl", lines)
    states = []
    for url in (f"sqlite:///{tmp_path / 'l.db'}", pg_url):
        with Ledger(url) as led:
            r = led.import_jsonl(path, batch_size=64)
            assert verify(led).ok
            states.append((r.added, r.repeated, [led.state(f"u{i}") for i in range(50)],
                           [e.as_json() | {"recorded_at": None} for e in led.iter_events()]))
    assert states[0] == states[1]


def _fill(path: Path, n: int) -> Path:
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"user_id": f"k{i % 20000}", "type": "notified", "at": "2024-01-01T00:00:00Z",
                                "channel": "email", "note": f"n{i}"}) + "\n")
    return path


@pytest.mark.slow
def test_a_writer_waiting_for_the_ledger_gets_a_clear_error(pg_url):
    holder = Ledger(pg_url)
    waiter = Ledger(pg_url)
    waiter.lock_timeout_s = 1
    with holder.transaction() as conn:
        holder.append_in(conn, [NewEvent(user_id="a", type="objected", at="2024-01-01T00:00:00Z")])
        t0 = time.monotonic()
        with pytest.raises(LedgerError, match="busy"):
            waiter.record(NewEvent(user_id="b", type="objected", at="2024-01-01T00:00:00Z"))
        assert time.monotonic() - t0 < 5
    assert waiter.record(NewEvent(user_id="b", type="objected", at="2024-01-01T00:00:00Z")).seq == 2
    holder.close()
    waiter.close()


def _import_backend(engine, db: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT state FROM pg_stat_activity WHERE datname = :db AND application_name = 'consentry' "
            "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"), {"db": db}).scalar()


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["mid-import", "long statement"])
def test_a_killed_import_releases_the_ledger_at_once(tmp_path, pg_url, phase):
    led = Ledger(pg_url)
    led.record(NewEvent(user_id="before", type="notified", at="2024-01-01T00:00:00Z", channel="email"))
    path = _fill(tmp_path / "big.jsonl", 200_000)
    env = {**os.environ, "CONSENTRY_LEDGER": pg_url}
    if phase == "mid-import":
        cmd = [sys.executable, "-m", "consentry.cli", "ledger", "import", str(path)]
    else:  # a statement the server is still running when the client dies
        cmd = [sys.executable, "-c", (
               "import sys, time; from sqlalchemy import text; from consentry.ledger import Ledger\n"
               "led = Ledger(sys.argv[1])\n"
               "with led.transaction() as conn:\n"
               "    led._lock_head(conn)\n"
               "    conn.execute(text('INSERT INTO person_state (user_id, last_seq) VALUES (:u, 0)'), {'u': 'zz'})\n"
               "    conn.execute(text('SELECT pg_sleep(600)'))\n"), pg_url]
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = led.engine.url.database
    try:
        deadline = time.monotonic() + 60
        while _import_backend(led.engine, db) is None:
            assert child.poll() is None, "the import ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        if phase == "mid-import":
            time.sleep(1.0)
            assert child.poll() is None and _import_backend(led.engine, db) is not None
        else:
            while _import_backend(led.engine, db) != "active":
                assert child.poll() is None, "the import ended before it could be killed"  # else: spin forever
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(0.5)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        t0 = time.monotonic()
        e = led.record(NewEvent(user_id="after", type="objected", at="2024-01-01T00:00:00Z"))
        assert time.monotonic() - t0 < 5
    finally:
        if child.poll() is None:
            child.kill()
    assert e.seq == 2 and led.count() == 2 and led.state("k1") is None and led.state("zz") is None
    with led.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ledger_events WHERE imported_from IS NOT NULL")).scalar() == 0
    assert verify(led).ok
    led.close()


@pytest.mark.parametrize("conflict_first", [True, False])
def test_an_event_id_conflict_in_the_file_is_reported_with_its_other_bad_lines(tmp_path, ledger, conflict_first):
    """A conflict between two lines was found only once every other bad line
    was fixed (or stopped the reading before them): a file went back twice.
    Both kinds of problem are now named in one refusal, in either order."""
    from consentry.errors import InputProblems

    conflict = [ev(event_id="x", type="consent_given"), ev(event_id="x", type="objected")]
    other = [ev(type="subscribed"), ev(at="yesterday")]
    lines = conflict + other if conflict_first else other + conflict
    path = _lines(tmp_path / "e.jsonl", lines)
    with pytest.raises(InputProblems) as info:
        ledger.import_jsonl(path, batch_size=1)
    msg = str(info.value)
    assert msg.startswith(f"{path}: 3 problems; nothing was imported\n"), msg
    named = [int(n) for n in re.findall(rf"^{re.escape(str(path))}, line (\d+)", msg, re.M)]
    assert named == ([2, 3, 4] if conflict_first else [1, 2, 4]), msg
    assert "is on line" in msg and "one event_id is one event" in msg
    assert ledger.count() == 0 and ledger.state("u1") is None


def test_a_time_finer_than_a_microsecond_is_refused_wherever_a_time_is_given() -> None:
    """The export refuses such times; the ledger cut them (900 ns after the cut-off became the
    cut-off, so a later consent counted), and so did a cut-off given to the CLI or the library."""
    from consentry.errors import EventError
    from consentry.timeutil import parse_instant

    with pytest.raises(EventError, match="finer than a microsecond"):
        NewEvent(user_id="u1", type="consent_given", at="2024-06-26T00:00:00.000000900Z", channel="web")
    with pytest.raises(InputError, match="finer than a microsecond"):
        parse_instant("2024-06-26T00:00:00.0000001Z")
    # zeros past the sixth digit are the same instant: kept
    assert parse_instant("2024-06-26T00:00:00.000001000Z") == parse_instant("2024-06-26T00:00:00.000001Z")
