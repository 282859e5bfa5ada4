"""`evaluate` checks the ledger's numbering beside its query, not before it
(the check counts every event), and still publishes nothing from a ledger
whose events were deleted outside consentry."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from exportkit import item, user, write_export
from sqlalchemy import create_engine, text

from consentry.engine import evaluate
from consentry.errors import LedgerError
from consentry.ledger import Ledger, NewEvent
from consentry.policy import load_policy
from consentry.sources import Export
from consentry.timeutil import parse_instant

AT = parse_instant("2024-06-26T00:00:00Z")


def _setup(tmp_path: Path, url: str | None = None) -> tuple[Export, Ledger]:
    folder = write_export(tmp_path / "export", [user("u1"), user("u2")], [item("i1", "u1"), item("i2", "u2")])
    led = Ledger(url or f"sqlite:///{tmp_path / 'l.db'}")
    led.append([NewEvent(user_id=u, type="notified", at="2024-05-01T00:00:00Z") for u in ("u1", "u2")])
    led.append([NewEvent(user_id="u1", type="objected", at="2024-05-02T00:00:00Z")])
    return Export(folder), led


def _spy_threads(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = Ledger.numbering_problem

    def spy(self):
        seen.append(threading.current_thread().name)
        return real(self)

    monkeypatch.setattr(Ledger, "numbering_problem", spy)
    return seen


def test_a_file_or_server_ledger_is_checked_beside_the_query_and_decides_as_before(
        tmp_path: Path, ledger_url: str, monkeypatch) -> None:
    export, led = _setup(tmp_path, ledger_url)
    seen = _spy_threads(monkeypatch)
    with led:
        r = evaluate(export, led, load_policy("recommended"), AT, tmp_path / "d.parquet")
    assert len(seen) == 1 and seen[0].startswith("consentry-numbering"), seen
    assert r.counts == {"objected": 1, "eligible": 1}


def _tamper(url: str, sql: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def test_an_event_deleted_outside_consentry_still_publishes_nothing(tmp_path: Path, ledger_url: str, monkeypatch) -> None:
    export, led = _setup(tmp_path, ledger_url)
    _tamper(ledger_url, "DELETE FROM ledger_events WHERE seq = 3")  # the objection goes,
    _tamper(ledger_url, "UPDATE ledger_head SET last_seq = 2")  # and the head is lowered to match
    seen = _spy_threads(monkeypatch)
    with led, pytest.raises(LedgerError) as e:
        evaluate(export, led, load_policy("recommended"), AT, tmp_path / "d.parquet")
    assert "ledger event #3, but the ledger's events and its head end at #2" in str(e.value), e.value
    assert "No decisions were made" in str(e.value)
    assert seen and seen[0].startswith("consentry-numbering")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("d.", ".d."))]  # no file, no .tmp
    with Ledger(ledger_url) as again, again.reader.connect() as conn:  # and no evaluation in the audit log
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE kind = 'evaluation'")).scalar_one() == 0


def test_an_in_memory_ledger_is_checked_first_on_its_own_connection(tmp_path: Path, monkeypatch) -> None:
    """A second connection to an in-memory SQLite ledger would open another, empty database."""
    export, led = _setup(tmp_path, "sqlite://")
    seen = _spy_threads(monkeypatch)
    with led:
        r = evaluate(export, led, load_policy("recommended"), AT, tmp_path / "d.parquet")
    assert seen == [threading.main_thread().name]
    assert r.counts == {"objected": 1, "eligible": 1}
