"""The decision engines' read of the ledger through an extract kept per
watermark (#15 point 1): the same events as a read from the database, never
one past the watermark asked for, and dropped when the database is another."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.ledger import Ledger, NewEvent
from consentry.ledger.extract import extract_path

TYPES = ["notified", "objected", "objection_withdrawn", "consent_given", "erasure_requested"]


def ev(i: int, typ: str = "notified", day: int = 1) -> NewEvent:
    return NewEvent(event_id=f"e{i}", user_id=f"u{i % 7}", type=typ, at=f"2024-01-{day:02d}T00:00:00Z", channel="web")


def direct(url: str, upto, upto_seq):
    with Ledger(url) as led:
        return led.events_arrow(upto=upto, upto_seq=upto_seq).sort_by("seq")


def test_a_rerun_reads_only_the_new_events_and_gives_the_same_table(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    led = Ledger(url, extract_dir=tmp_path / "x")
    led.append([ev(i) for i in range(10)])
    assert led.events_arrow(upto_seq=10).sort_by("seq").equals(direct(url, None, 10))
    assert extract_path(led, tmp_path / "x").is_file()
    led.append([ev(i, "objected") for i in range(10, 13)])
    reads = []
    real = Ledger.events_arrow

    def spy(self, *a, **k):
        if k.get("after_seq") is not None:
            reads.append((k["after_seq"], k.get("upto_seq")))
        return real(self, *a, **k)

    monkeypatch.setattr(Ledger, "events_arrow", spy)
    got = led.events_arrow(upto_seq=13).sort_by("seq")
    assert reads == [(10, 13)] and got.equals(direct(url, None, 13))
    assert got.column("type").to_pylist()[-3:] == ["objected"] * 3
    led.close()


def test_it_never_serves_an_event_past_the_watermark_or_the_instant(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    led = Ledger(url, extract_dir=tmp_path / "x")
    led.append([ev(i, day=1 + i) for i in range(10)])
    led.events_arrow(upto_seq=10)
    got = led.events_arrow(upto_seq=4)
    assert sorted(got.column("seq").to_pylist()) == [1, 2, 3, 4]
    at = datetime(2024, 1, 3, tzinfo=UTC)
    assert led.events_arrow(upto=at, upto_seq=10).sort_by("seq").equals(direct(url, at, 10))
    assert sorted(led.events_arrow(upto=at, upto_seq=10).column("seq").to_pylist()) == [1, 2, 3]
    led.close()


def test_another_database_at_the_same_url_is_read_afresh(tmp_path: Path) -> None:
    """The same event ids at the same numbers, but this time an objection:
    the extract of the first database must not hide it."""
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger(url, extract_dir=tmp_path / "x") as led:
        led.append([ev(i) for i in range(5)])
        assert led.events_arrow(upto_seq=5).column("type").to_pylist() == ["notified"] * 5
    for f in tmp_path.glob("l.db*"):
        f.unlink()
    with Ledger(url, extract_dir=tmp_path / "x") as led:
        led.append([ev(0, "objected")] + [ev(i) for i in range(1, 5)])
        got = led.events_arrow(upto_seq=5).sort_by("seq")
    assert got.column("type").to_pylist()[0] == "objected" and got.equals(direct(url, None, 5))


def test_an_unreadable_extract_is_read_afresh(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger(url, extract_dir=tmp_path / "x") as led:
        led.append([ev(i) for i in range(5)])
        led.events_arrow(upto_seq=5)
        extract_path(led, tmp_path / "x").write_bytes(b"not parquet")
        assert led.events_arrow(upto_seq=5).sort_by("seq").equals(direct(url, None, 5))


_KILLED_BETWEEN_WRITE_AND_RENAME = """
import os, signal, sys
from consentry.ledger import Ledger
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # dies after the write, before the rename
Ledger(sys.argv[1], extract_dir=sys.argv[2]).events_arrow(upto_seq=5)
"""


def test_a_writer_killed_between_write_and_rename_leaves_nothing_behind_after_the_next_read(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger(url) as led:
        led.append([ev(i) for i in range(5)])
    proc = subprocess.run([sys.executable, "-c", _KILLED_BETWEEN_WRITE_AND_RENAME, url, str(tmp_path / "x")], check=False)
    assert proc.returncode == -signal.SIGKILL
    left = list((tmp_path / "x").glob("*.tmp"))
    assert len(left) == 1 and not list((tmp_path / "x").glob("*.parquet")), "the kill should land between the two"
    with Ledger(url, extract_dir=tmp_path / "x") as led:
        assert led.events_arrow(upto_seq=5).sort_by("seq").equals(direct(url, None, 5))
        assert extract_path(led, tmp_path / "x").is_file()
    assert not list((tmp_path / "x").glob("*.tmp"))


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.lists(st.sampled_from(TYPES), max_size=6), st.integers(0, 40), st.integers(1, 28)),
                min_size=1, max_size=6))
def test_through_the_extract_is_the_same_as_from_the_database(steps) -> None:
    """Appends and reads in any order, at any watermark and instant."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/l.db"
        n = 0
        with Ledger(url, extract_dir=Path(d) / "x") as led:
            for types, back, day in steps:
                led.append([ev(n + k, typ, 1 + (n + k) % 28) for k, typ in enumerate(types)])
                n += len(types)
                wm = max(0, led.watermark() - back)
                at = datetime(2024, 1, day, tzinfo=UTC)
                assert led.events_arrow(upto=at, upto_seq=wm).sort_by("seq").equals(direct(url, at, wm))


def test_a_rerun_through_the_extract_does_not_import_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas (0.4 s) the first time it turns a Python value into
    an Arrow scalar; a re-run that only reads its extract cuts it without one."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger(url, extract_dir=tmp_path / "x") as led:
        led.append([ev(i, day=1 + i) for i in range(10)])
        led.events_arrow(upto_seq=10)
    code = f"""
import sys
from datetime import UTC, datetime
from pathlib import Path
from consentry.ledger import Ledger
with Ledger({url!r}, extract_dir=Path({str(tmp_path / 'x')!r})) as led:
    got = led.events_arrow(upto=datetime(2024, 1, 3, tzinfo=UTC), upto_seq=9)
print(sorted(got.column("seq").to_pylist()), "pandas" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[1, 2, 3] False"


def _duck_events(led: Ledger, export_folder: Path, at: datetime, wm: int):
    """The events `evaluate` decides on, as DuckDB loads them (`engine.duck.load_inputs`)."""
    import duckdb

    from consentry.engine.duck import load_inputs
    from consentry.sources import Export

    con = duckdb.connect()
    assert load_inputs(con, Export(export_folder), led, at, watermark=wm) == wm
    return sorted(con.execute("SELECT seq, user_id, item_id, type, event_at FROM ledger_events").fetchall())


def test_duckdb_reads_the_kept_extract_itself_cut_at_the_watermark_and_the_instant(tmp_path: Path, monkeypatch) -> None:
    """With an extract, the engine's DuckDB reads the kept file itself (no Arrow
    table through Python), and gets exactly what a read from the database gives:
    never an event past the watermark asked for, nor after the cut-off."""
    from exportkit import base_content, base_tags, base_users, write_export

    folder = write_export(tmp_path / "exp", base_users(), base_content(), base_tags())
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger(url) as plain, Ledger(url, extract_dir=tmp_path / "x") as led:
        led.append([ev(i, TYPES[i % len(TYPES)], day=1 + i) for i in range(12)])
        at = datetime(2024, 1, 9, tzinfo=UTC)
        want = _duck_events(plain, folder, at, 10)
        assert [r[0] for r in want] == list(range(1, 10))  # Jan 1-9: the cut-off is inclusive
        calls = []
        real = Ledger.events_arrow
        monkeypatch.setattr(Ledger, "events_arrow",
                            lambda self, *a, **k: (self is led and calls.append(k)) or real(self, *a, **k))
        assert _duck_events(led, folder, at, 10) == want  # writes the extract (reading the events once)
        assert [c.get("after_seq") for c in calls] == [0]
        calls.clear()
        assert _duck_events(led, folder, at, 10) == want and calls == []  # a re-run reads the file alone
        assert _duck_events(led, folder, datetime(2025, 1, 1, tzinfo=UTC), 4) == _duck_events(
            plain, folder, datetime(2025, 1, 1, tzinfo=UTC), 4)
        assert calls == []  # a lower watermark is cut from the same file
        led.append([ev(12, "objected", day=2)])
        assert _duck_events(led, folder, at, 13) == _duck_events(plain, folder, at, 13)
        assert [c.get("after_seq") for c in calls] == [10]  # only the events after the file's watermark


def test_the_extract_is_kept_in_row_groups_that_every_core_can_read(tmp_path: Path, monkeypatch) -> None:
    """DuckDB reads one row group to a thread: an extract written as one group
    was read by one core while the other idled. In groups, and the same events."""
    import pyarrow.parquet as pq

    from consentry.ledger import extract

    monkeypatch.setattr(extract, "_ROW_GROUP", 4)
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger(url, extract_dir=tmp_path / "x") as led:
        led.append([ev(i, TYPES[i % len(TYPES)]) for i in range(10)])
        path = led.events_parquet(10)
        assert path is not None and pq.ParquetFile(path).metadata.num_row_groups == 3
        assert led.events_arrow(upto_seq=10).sort_by("seq").equals(direct(url, None, 10))


def test_a_decision_whose_extract_fits_never_loads_pyarrow(tmp_path: Path) -> None:
    """pyarrow and numpy take 0.15-0.2 s to load. A re-run whose extract fits
    reads its footer with DuckDB and lets DuckDB read the rows, so a whole
    `evaluate` runs without them, and decides as the first run did."""
    import subprocess
    import sys

    from exportkit import base_content, base_tags, base_users, write_export

    folder = write_export(tmp_path / "exp", base_users(), base_content(), base_tags())
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger(url) as led:
        led.append([ev(i, TYPES[i % len(TYPES)], day=1 + i) for i in range(12)])
    code = f"""
import sys
from pathlib import Path
from consentry.engine import evaluate
from consentry.ledger import Ledger
from consentry.policy import load_policy
from consentry.sources import Export
from consentry.timeutil import parse_instant
with Ledger({url!r}, extract_dir=Path({str(tmp_path / 'x')!r})) as led:
    r = evaluate(Export(Path({str(folder)!r})), led, load_policy("recommended"),
                 parse_instant("2024-06-26T00:00:00Z"), Path({str(tmp_path / 'd.parquet')!r}))
print(sorted(r.counts.items()), "pyarrow" in sys.modules, "numpy" in sys.modules)
"""
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
            for _ in range(2)]
    first, again = (r.rsplit(" ", 2) for r in runs)
    assert first[1:] == ["True", "True"]  # the first run reads the ledger into Arrow, and keeps it
    assert again == [first[0], "False", "False"], runs
