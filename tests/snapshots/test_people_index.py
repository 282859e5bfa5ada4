"""A person's counts in a snapshot come from an index per table version
(`snapshots/people_index.py`): the same answer as reading the table, for
everyone; never an answer about another version or other bytes; and gone
with the rows when a purge takes someone out."""

from __future__ import annotations

import dataclasses

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from consentry.generate import generate
from consentry.ledger import Ledger, NewEvent
from consentry.policy import load_policy
from consentry.snapshots import Registry, build
from consentry.snapshots.lineage import impact
from consentry.snapshots.people_index import INDEX_DIR, counts, rows_of
from consentry.snapshots.purge import purge
from consentry.sources import Export

pytestmark = pytest.mark.slow  # a generated export and a snapshot of it: see the markers in pyproject.toml

T = datetime(2024, 6, 26, tzinfo=UTC)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory):
    """A generated export (400 people, tags and all), its ledger and a snapshot of it."""
    tmp = tmp_path_factory.mktemp("people-index")
    generate(tmp / "export", 400, seed=5, media=0)
    led = Ledger(f"sqlite:///{tmp / 'l.db'}")
    led.import_jsonl(tmp / "export" / "events.jsonl")
    build(Export(tmp / "export"), led, load_policy("recommended"), T, "s", out=tmp / "s")
    yield tmp, led
    led.close()


def _everyone(tmp: Path) -> list[str]:
    return [r[0] for r in duckdb.sql(f"SELECT user_id FROM read_parquet('{tmp}/export/users.parquet') ORDER BY 1").fetchall()]


def test_the_index_answers_as_the_table_does_for_everyone(made) -> None:
    tmp, led = made
    rec = Registry(led).require("s")
    people = [*_everyone(tmp), "nobody", "", "o'brien"]
    from_table = {u: rows_of(rec, u) for u in people}
    assert sum(own for own, _ in from_table.values()) > 100 and sum(t for _, t in from_table.values()) > 10
    assert {u: counts(rec, u) for u in people} == from_table
    assert len(list((tmp / "s" / INDEX_DIR).glob("*.parquet"))) == 1  # written once, read since
    assert not list((tmp / "s" / "table").rglob(f"*{INDEX_DIR}*"))  # beside the table, never in it


def test_a_table_changed_in_any_way_is_read_again(made, tmp_path: Path) -> None:
    """A data file rewritten in place (another tool, a restore): its size and time name another index."""
    import shutil

    tmp, led = made
    copy = tmp_path / "copy"
    shutil.copytree(tmp / "s", copy)
    rec = Registry(led).require("s")
    rec = dataclasses.replace(rec, uri=str(copy / "table"))
    dt = DeltaTable(str(copy / "table"))
    who = duckdb.sql(f"SELECT user_id FROM read_parquet({dt.file_uris()!r}) LIMIT 1").fetchall()[0][0]
    before = counts(rec, who)
    assert before[0] >= 1
    victim = next(u for u in dt.file_uris() if who in str(pq.read_table(u.removeprefix("file://"), columns=["user_id"])
                                                              .column(0).to_pylist()))
    path = victim.removeprefix("file://")
    table = pq.read_table(path)
    keep = [u != who for u in table.column("user_id").to_pylist()]
    pq.write_table(table.filter(keep), path)
    assert counts(rec, who) == rows_of(rec, who) == (0, before[1])


def test_a_folder_that_cannot_hold_the_index_is_read_as_before(made, tmp_path: Path) -> None:
    import shutil

    tmp, led = made
    copy = tmp_path / "copy"
    shutil.copytree(tmp / "s", copy, ignore=shutil.ignore_patterns(INDEX_DIR))
    (copy / INDEX_DIR).write_text("not a folder")  # as a read-only mount would refuse it
    rec = Registry(led).require("s")
    rec = dataclasses.replace(rec, uri=str(copy / "table"))
    for u in _everyone(tmp)[:40]:
        assert counts(rec, u) == rows_of(rec, u)


def test_a_purge_deletes_the_index_that_names_the_people_it_removed(made) -> None:
    tmp, led = made
    rec = Registry(led).require("s")
    files = DeltaTable(rec.uri).file_uris()
    objector = duckdb.sql(
        f"SELECT t FROM (SELECT unnest(tagged) AS t, user_id FROM read_parquet({files!r})) WHERE t <> user_id "
        f"AND t IN (SELECT user_id FROM read_parquet({files!r})) LIMIT 1").fetchall()[0][0]
    own, tagged = counts(rec, objector)
    assert own >= 1 and tagged >= 1
    index = tmp / "s" / INDEX_DIR
    (old,) = index.glob("*.parquet")
    assert objector in pq.read_table(old, columns=["user_id"]).column(0).to_pylist()
    led.record(NewEvent(user_id=objector, type="objected", at=datetime.now(UTC), channel="web"))
    purge(led, "s", data=tmp / "export")
    assert list(index.glob("*")) == []  # the old version's index went with its rows, before anyone asked
    found = [(i.snapshot, i.rows_now, i.tagged_now) for i in impact(led, objector)]
    assert found == [("s", 0, 0)], found  # held before (a purge is recorded), nothing now
    (written,) = index.glob("*.parquet")
    ids = pq.read_table(written, columns=["user_id"]).column(0).to_pylist()
    assert objector not in ids and ids == sorted(ids)
