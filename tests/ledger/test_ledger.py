"""The ledger on SQLite and on a real PostgreSQL: append-only, ordered, idempotent,
and a person's current state always equal to the fold of their history."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from consentry.engine import decide
from consentry.ledger import EventType, Ledger, NewEvent, PersonState
from consentry.policy import load_policy
from consentry.sources import Export
from consentry.timeutil import parse_instant, to_micros
from exportkit import item, user, write_export


def _write(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_import_is_idempotent_by_event_id(ledger_url, tmp_path):
    led = Ledger(ledger_url)
    f = _write(
        tmp_path / "e.jsonl",
        [
            {"event_id": "a", "user_id": "u1", "type": "notified", "at": "2024-05-01T00:00:00Z", "channel": "email"},
            {"event_id": "b", "user_id": "u1", "type": "objected", "at": "2024-06-01T00:00:00Z"},
            {"user_id": "u2", "type": "consent_given", "at": "2024-06-01T00:00:00Z", "channel": "web"},
        ],
    )
    first = led.import_jsonl(f)
    assert (first.read, first.added, first.already_there) == (3, 3, 0)
    again = led.import_jsonl(f)
    assert (again.added, again.already_there, again.conflicts) == (0, 3, [])
    assert led.count() == 3
    assert led.watermark() == 3
    assert [e.type for e in led.history("u1")] == ["notified", "objected"]
    assert led.history("u1")[0].channel == "email"
    assert led.history("u1")[1].channel == "import"
    led.close()


def test_same_event_id_with_other_content_is_kept_as_stored(ledger):
    ledger.append([NewEvent(event_id="x", user_id="u1", type="objected", at="2024-06-01T00:00:00Z")])
    f_events = [NewEvent(event_id="x", user_id="u1", type="objection_withdrawn", at="2024-06-02T00:00:00Z")]
    from consentry.ledger.store import ImportResult

    with ledger.engine.begin() as conn:
        _, result = ledger._append(conn, f_events, ImportResult())
    assert result.conflicts == ["x"]
    assert [e.type for e in ledger.history("u1")] == ["objected"]


def test_an_event_id_stored_for_another_person_is_refused_and_nothing_is_lost(ledger):
    """Finding (library trial): recording u46's objection with an event_id the
    ledger already held for u45's returned u45's event and raised nothing;
    u46's objection was never recorded. A retry of the same act (another time,
    note or channel) is still stored once."""
    from consentry.errors import EventError

    first = ledger.record(NewEvent(event_id="evt-1", user_id="u45", type="objected", at="2024-06-01T00:00:00Z"))
    again = ledger.record(NewEvent(event_id="evt-1", user_id="u45", type="objected", at="2024-06-01T00:05:00Z",
                                   note="retried"))
    assert again.seq == first.seq and ledger.count() == 1
    for other in (dict(user_id="u46", type="objected"), dict(user_id="u45", type="objection_withdrawn")):
        with pytest.raises(EventError, match=r"event_id 'evt-1' is already in the ledger as event #\d+ .*nothing was recorded"):
            ledger.record(NewEvent(event_id="evt-1", at="2024-06-02T00:00:00Z", **other))
    # In a batch, none of it is written: the new event's neighbours neither.
    with pytest.raises(EventError):
        ledger.append([NewEvent(user_id="u47", type="objected", at="2024-06-02T00:00:00Z"),
                       NewEvent(event_id="evt-1", user_id="u46", type="objected", at="2024-06-02T00:00:00Z")])
    assert ledger.count() == 1 and ledger.state("u47") is None and ledger.state("u46") is None


@pytest.mark.slow
def test_sequence_is_gap_free_under_concurrent_writers(ledger_url):
    led = Ledger(ledger_url)
    errors = []

    def writer(k: int) -> None:
        try:
            for i in range(25):
                led.record(NewEvent(user_id=f"u{k}", type="objected", at=datetime.now(UTC), note=f"{k}-{i}"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with led.engine.connect() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM ledger_events ORDER BY seq"))]
    assert seqs == list(range(1, 101))
    assert led.watermark() == 100
    led.close()


@pytest.mark.slow
def test_record_returns_the_committed_event(ledger_url):
    led = Ledger(ledger_url)
    e = led.record(NewEvent(user_id="u9", type=EventType.objected, at="2024-06-10T10:00:00Z", channel="cli"))
    other = Ledger(ledger_url)  # a second connection sees it at once
    assert other.get(e.event_id).seq == e.seq
    assert other.state("u9").objects
    other.close()
    led.close()


@pytest.mark.slow
def test_reopening_does_not_migrate_twice(ledger_url):
    Ledger(ledger_url).record(NewEvent(user_id="u1", type="notified", at="2024-01-01T00:00:00Z"))
    again = Ledger(ledger_url)
    assert again.count() == 1
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head_revision()
    again.close()


def _head_revision() -> str:
    from importlib import resources

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("consentry.ledger") / "migrations"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_the_newest_revision_is_alembics_head():
    """`Ledger.migrate` recognises a current schema without Alembic, from the
    migration files' names: that must be the head Alembic itself finds."""
    from consentry.ledger.store import head_revision

    assert head_revision() == _head_revision()


@pytest.mark.slow
def test_a_current_ledger_opens_without_loading_alembic(ledger_url):
    """Importing Alembic and reading its scripts cost every command 0.15 s."""
    import subprocess
    import sys

    Ledger(ledger_url).close()  # creates the schema
    code = ("import sys; from consentry.ledger import Ledger; Ledger(sys.argv[1]).close(); "
            "print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, ledger_url], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_a_ledger_from_a_newer_consentry_is_refused_untouched(ledger_url):
    from consentry.errors import LedgerError
    from consentry.ledger.store import head_revision

    led = Ledger(ledger_url)
    led.record(NewEvent(user_id="u1", type="objected", at="2024-01-01T00:00:00Z"))
    newer = f"{int(head_revision()) + 1:04d}"
    with led.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newer})
    led.close()
    with pytest.raises(LedgerError, match=f"is at schema revision {newer}, which this version of consentry does not know"
                                          f" \\(it knows up to {head_revision()}\\)"):
        Ledger(ledger_url)
    led = Ledger(ledger_url, migrate=False)
    with led.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [newer]
    assert led.count() == 1 and led.state("u1").objects
    led.close()


@pytest.mark.slow
def test_migrations_create_exactly_the_declared_tables(ledger_url):
    """The tables the code declares and the ones Alembic builds must not drift apart."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import consentry.access.tables  # noqa: F401 - declares its tables on the shared metadata
    import consentry.notices.tables  # noqa: F401
    import consentry.mail.tables  # noqa: F401
    import consentry.people.tables  # noqa: F401
    import consentry.snapshots.tables  # noqa: F401
    from consentry.ledger.tables import metadata

    led = Ledger(ledger_url)
    with led.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    led.close()
    assert [d for d in diff if d[0] != "remove_table"] == []


def test_sqlite_is_durable_and_concurrent(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    with led.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
    led.close()


def test_events_arrow_respects_time_and_watermark(ledger):
    ledger.append([NewEvent(user_id="u", type="notified", at=f"2024-0{m}-01T00:00:00Z") for m in range(1, 7)])
    assert ledger.events_arrow().num_rows == 6
    assert ledger.events_arrow(upto=parse_instant("2024-03-01T00:00:00Z")).num_rows == 3
    assert ledger.events_arrow(upto_seq=2).num_rows == 2
    assert ledger.events_arrow().column_names == ["seq", "user_id", "item_id", "type", "event_at"]


_types = st.sampled_from([t.value for t in EventType])
_instants = st.integers(0, 5).map(lambda d: datetime(2024, 6, 1, tzinfo=UTC) + timedelta(days=d))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.tuples(st.sampled_from(["a", "b"]), _types, _instants), max_size=6), max_size=4))
def test_person_state_is_the_fold_of_history(tmp_path_factory, batches):
    """However events arrive (batches, out of time order), the state table equals
    a fold of the full history sorted by (at, seq)."""
    led = Ledger(f"sqlite:///{tmp_path_factory.mktemp('fold') / 'l.db'}")
    _assert_state_is_the_fold(led, batches, "")
    led.close()


_examples = itertools.count()


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.tuples(st.sampled_from(["a", "b"]), _types, _instants), max_size=6), max_size=4))
def test_person_state_is_the_fold_of_history_on_postgres(pg_url, batches):
    """The same on PostgreSQL, where a live append names its people in an
    array (`store.refresh_state`); each example has people of its own."""
    led = Ledger(pg_url)
    _assert_state_is_the_fold(led, batches, f"x{next(_examples)}-")
    led.close()


@pytest.mark.slow
def test_a_live_append_finds_its_people_by_index_on_postgres(pg_url):
    """The finding: on a ledger PostgreSQL had not analysed since it grew,
    `seq > :after` was planned as a scan of both tables, and each group
    commit's state refresh cost more as the ledger grew (4 ms a batch at 3,000
    events, 12 ms at 12,000). The statements a live append runs now name their
    people, and find them through the indexes even in a plan made without
    knowing how many there are."""
    from consentry.ledger import store

    led = Ledger(pg_url)
    for i in range(0, 20_000, 5_000):  # enough that a scan costs the planner more than ten index lookups
        led.append([NewEvent(user_id=f"p{j}", type="notified", at="2024-01-01T00:00:00Z") for j in range(i, i + 5_000)])
    with led.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")  # no estimate from the parameter
        for name, prepared in (("d", store._DELETE_PEOPLE), ("i", store._INSERT_PEOPLE)):
            sql = str(prepared.statement).replace(":people", "$1")
            conn.exec_driver_sql(f"PREPARE {name}(text[]) AS {sql}")
            plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN EXECUTE {name}(ARRAY['p1', 'p2'])"))
            assert "Seq Scan" not in plan, plan
            assert "Index" in plan, plan
        conn.rollback()
    led.close()


@pytest.mark.slow
def test_ledger_sessions_plan_each_statement_for_its_parameters(pg_url):
    """A generic plan kept from when the ledger was small scanned whole tables
    as it grew (see `store._pg_session`)."""
    led = Ledger(pg_url)
    with led.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "force_custom_plan"
    led.close()


def _assert_state_is_the_fold(led: Ledger, batches, prefix: str) -> None:
    for batch in batches:
        led.append(
            [NewEvent(**({"item_id": f"photo-{prefix}{u}"} if t.startswith("third_party") else {"user_id": prefix + u}),
                      type=t, at=at,
                      note="grounds" if t in ("objection_rejected", "third_party_dismissed") else None,
                      event_id=f"{prefix}{u}{t}{at.isoformat()}{i}{id(batch)}")
             for i, (u, t, at) in enumerate(batch)]
        )
    for uid in (prefix + "a", prefix + "b"):
        hist = led.history(uid)
        expected = PersonState(uid)
        for e in sorted(hist, key=lambda e: (e.at, e.seq)):
            expected = expected.apply(e.type.value, to_micros(e.at), e.seq)
        got = led.state(uid)
        if not hist:
            assert got is None
        else:
            assert got == expected


@pytest.mark.slow
def test_decisions_are_the_same_on_sqlite_and_postgres(tmp_path, pg_url):
    users = [user("u1"), user("u2", country="US"), user("u3")]
    write_export(tmp_path / "x", users, [item("i1", "u1"), item("i2", "u2"), item("i3", "u3")])
    events = [
        NewEvent(user_id=u, type="notified", at="2024-05-01T00:00:00Z") for u in ("u1", "u2", "u3")
    ] + [NewEvent(user_id="u2", type="objected", at="2024-06-01T00:00:00Z")]
    at = parse_instant("2024-06-26T00:00:00Z")
    results = []
    for url in (f"sqlite:///{tmp_path / 'l.db'}", pg_url):
        led = Ledger(url)
        led.append(events)
        results.append(sorted(decide(Export(tmp_path / "x"), led, load_policy("recommended"), at).fetchall()))
        led.close()
    assert results[0] == results[1]
    assert ("i2", "u2", False, "objected") in results[0]


def test_unreachable_ledger_is_a_clear_error_without_the_password():
    from consentry.errors import LedgerError

    with pytest.raises(LedgerError) as info:
        Ledger("postgresql+psycopg://someone:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(info.value)
    assert "cannot reach the ledger" in str(info.value)


@pytest.mark.slow
def test_arrow_fast_path_equals_the_portable_path(pg_url, monkeypatch):
    led = Ledger(pg_url)
    led.append([NewEvent(user_id=f"u{i % 7}", type="notified", at=f"2024-05-{1 + i % 28:02d}T10:00:00Z",
                         event_id=f"e{i}") for i in range(300)])
    at = parse_instant("2024-05-15T00:00:00Z")
    fast = led.events_arrow(upto=at, upto_seq=250)
    fast_after = led.events_arrow(upto_seq=250, after_seq=100)  # what a ledger extract reads on a re-run
    assert led._events_adbc(at, 250) is not None  # the driver is really used
    monkeypatch.setattr(Ledger, "_events_adbc", lambda self, *args: None)
    slow = led.events_arrow(upto=at, upto_seq=250)
    assert fast.sort_by("seq").equals(slow.sort_by("seq"))
    assert 0 < fast.num_rows < 250
    slow_after = led.events_arrow(upto_seq=250, after_seq=100)
    assert fast_after.sort_by("seq").equals(slow_after.sort_by("seq"))
    assert sorted(fast_after.column("seq").to_pylist()) == list(range(101, 251))
    led.close()


# Ids as a ledger may hold them (events imported before ids were checked are read as stored):
# quotes, backslashes, line breaks, control characters, non-ASCII; no NUL or lone surrogate.
_tricky = st.sampled_from([" ", "\t", "\n", "\r", '"', "'", "\\", ",", "{", "}", "é", "😀", "\u2028", "\x01", "\x7f"])
_stored_ids = st.one_of(st.none(), st.text(
    st.one_of(_tricky, st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")), min_size=1, max_size=12))


def _insert_raw(led: Ledger, rows: list[tuple]) -> None:
    with led.engine.begin() as conn:
        for seq, (uid, item, typ, at_us) in enumerate(rows, start=1):
            conn.execute(text("INSERT INTO ledger_events (seq, event_id, user_id, item_id, type, at_us, channel, "
                              "recorded_us) VALUES (:seq, :eid, :uid, :item, :typ, :at, 'import', 0)"),
                         {"seq": seq, "eid": f"e{seq}", "uid": uid, "item": item, "typ": typ, "at": at_us})


def _through_cursor(monkeypatch, led: Ledger) -> None:
    """Make a SQLite ledger read events through the portable cursor, as before the JSON read."""
    monkeypatch.setattr(led, "is_sqlite", False)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_stored_ids, _stored_ids, _types, st.integers(-(2**62), 2**62)), max_size=12),
       part=st.integers(1, 5), cut=st.integers(0, 14), after=st.integers(0, 6))
def test_sqlite_json_read_equals_the_cursor_read(tmp_path_factory, monkeypatch, rows, part, cut, after):
    """SQLite hands events over as JSON lines, read in parts on two connections:
    every id, null and instant comes back as the cursor reads it, with each
    event once, whatever the parts' size and the range asked for."""
    import consentry.ledger.store as store

    led = Ledger(f"sqlite:///{tmp_path_factory.mktemp('json') / 'l.db'}")
    _insert_raw(led, rows)
    at = datetime(2024, 6, 1, tzinfo=UTC)
    asks = [{}, {"upto_seq": cut}, {"upto_seq": cut, "after_seq": after}, {"upto": at, "upto_seq": cut},
            {"users": [r[0] for r in rows[:2] if r[0] is not None]}, {"touched_after": after}]
    with monkeypatch.context() as m:
        m.setattr(store, "_JSON_PART", part)
        fast = [led.events_arrow(**ask) for ask in asks]
    with monkeypatch.context() as m:
        _through_cursor(m, led)
        slow = [led.events_arrow(**ask) for ask in asks]
    for ask, f, s in zip(asks, fast, slow):
        assert f.schema == s.schema, ask
        assert f.sort_by("seq").equals(s.sort_by("seq")), ask
        assert len(set(f.column("seq").to_pylist())) == f.num_rows, ask  # each event once
    assert fast[0].num_rows == len(rows)
    led.close()


def test_sqlite_read_in_parts_covers_every_event(tmp_path, monkeypatch):
    """1,000 events in parts of 64 seqs, on two connections: all of them, each
    once, with the ids and instants written."""
    import consentry.ledger.store as store

    monkeypatch.setattr(store, "_JSON_PART", 64)
    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    led.append([NewEvent(user_id=f"u'\"{i % 9}é", type="notified", at=f"2024-05-{1 + i % 28:02d}T10:00:00Z",
                         event_id=f"e{i}") for i in range(1000)])
    got = led.events_arrow(upto_seq=900, after_seq=37)
    assert sorted(got.column("seq").to_pylist()) == list(range(38, 901))
    row = got.filter(pa.compute.equal(got.column("seq"), 100)).to_pylist()[0]
    assert row["user_id"] == "u'\"0é"  # event e99
    assert row["event_at"] == datetime(2024, 5, 16, 10, 0)
    led.close()


def test_sqlite_read_in_parts_reads_each_event_once(tmp_path, monkeypatch):
    """Each part ranges over its own seqs only. When the query also bounded seq
    by the watermark, SQLite ranged from the part's start to the watermark and
    read to the end of the ledger for every part: a 100M-item ledger took 4.5 s
    instead of 3. Counted in SQLite's own VM steps, parts cost about what one
    read does."""
    import consentry.ledger.store as store
    from sqlalchemy import event

    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    led.append([NewEvent(user_id=f"u{i % 50}", type="notified", at="2024-05-01T10:00:00Z", event_id=f"e{i}")
                for i in range(3000)])
    steps = []
    led.engine.dispose()
    event.listen(led.engine, "connect", lambda dbapi, _: dbapi.set_progress_handler(lambda: steps.append(1), 100))

    def cost(part: int) -> int:
        steps.clear()
        monkeypatch.setattr(store, "_JSON_PART", part)
        assert led.events_arrow(upto=parse_instant("2024-06-01T00:00:00Z"), upto_seq=3000).num_rows == 3000
        return len(steps)

    whole, parts = cost(3000), cost(100)
    assert parts < 1.5 * whole, (whole, parts)
    led.close()


def test_sqlite_read_of_an_empty_or_in_memory_ledger(monkeypatch):
    """An in-memory ledger is read on its one connection (another would open an
    empty database), part after part, and an empty ledger gives an empty table
    of the right shape."""
    import consentry.ledger.store as store

    monkeypatch.setattr(store, "_JSON_PART", 2)
    led = Ledger("sqlite://")
    assert led.events_arrow().num_rows == 0
    assert led.events_arrow().schema.names == ["seq", "user_id", "item_id", "type", "event_at"]
    led.append([NewEvent(user_id=f"u{i}", type="objected", at="2024-05-01T00:00:00Z") for i in range(5)]
               + [NewEvent(item_id="i1", type="third_party_objected", at="2024-05-02T00:00:00Z")])
    got = led.events_arrow()
    assert got.num_rows == 6
    assert got.column("item_id").to_pylist()[-1] == "i1" and got.column("user_id").to_pylist()[-1] is None
    led.close()


def test_reading_events_never_loses_later_writes(tmp_path):
    """A second copy of SQLite in the process (the ADBC driver's) once deleted
    the WAL on close; commits after that vanished. Read, write, reopen: all there."""
    url = f"sqlite:///{tmp_path / 'l.db'}"
    led = Ledger(url)
    led.append([NewEvent(user_id="u1", type="notified", at="2024-05-01T00:00:00Z")])
    led.events_arrow()
    led.record(NewEvent(user_id="u1", type="objected", at="2024-06-01T00:00:00Z"))
    assert (tmp_path / "l.db-wal").exists()
    other = Ledger(url)
    assert [e.type for e in other.history("u1")] == ["notified", "objected"]
    other.close()
    led.close()


@pytest.mark.slow
def test_links_made_before_rule_15_become_events_when_the_ledger_migrates(ledger_url):
    """Revision 0006: an administrator's link becomes a third_party_objected event
    at the moment it was linked; a request confirmed but not yet reviewed
    protects the items it named from its confirmation; the audit chain still
    verifies, and the engine then applies rule 15."""
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    from consentry.audit.log import verify

    led = Ledger(ledger_url, migrate=False)
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("consentry.ledger") / "migrations"))
    with led.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    led.close()
    led = Ledger(ledger_url, migrate=False)
    with led.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO third_party_objections (id, email, handles, items, note, received_us, status, language) VALUES "
            "('r1', 'a@example.net', NULL, 'p1', NULL, 1000, 'linked', 'en'), "
            "('r2', 'b@example.net', '@ann', 'p2, https://pix.example/p/p3', 'left', 2000, 'open', 'en'), "
            "('r3', 'c@example.net', NULL, 'p4', NULL, 3000, 'unverified', 'en')"))
        conn.execute(text("INSERT INTO third_party_links (ref, item_id, linked_us, actor) VALUES ('r1', 'p1', 1500, 'admin:dpo')"))
    led.close()

    led = Ledger(ledger_url)  # migrates to head
    with led.engine.connect() as conn:
        got = conn.execute(text(
            "SELECT item_id, user_id, type, at_us, actor FROM ledger_events WHERE item_id IS NOT NULL ORDER BY seq")).all()
        statuses = dict(conn.execute(text("SELECT id, status FROM third_party_objections")).all())
        tables = set(led.engine.dialect.get_table_names(conn))
    assert [tuple(r) for r in got] == [
        ("p1", None, "third_party_objected", 1500, "admin:dpo"),
        ("p2", None, "third_party_objected", 2000, "requester:r2"),
        ("p3", None, "third_party_objected", 2000, "requester:r2"),
    ]
    assert statuses == {"r1": "reviewed", "r2": "open", "r3": "unverified"}  # r3 was never confirmed: nothing
    assert "third_party_links" not in tables
    assert verify(led).ok and led.watermark() == 3
    led.record(NewEvent(item_id="p1", type="third_party_dismissed", at="2024-01-01T00:00:00Z", note="not in it at all"))
    assert verify(led).ok
    led.close()


@pytest.mark.parametrize("url", ["mysql://x@localhost/db", "mssql+pyodbc://u:s3cret@h/db"])
def test_a_database_the_ledger_does_not_run_on_is_named_as_such(url) -> None:
    """It said "No module named 'MySQLdb'", as if a driver were all that was missing."""
    from consentry.errors import LedgerError

    with pytest.raises(LedgerError) as e:
        Ledger(url)
    assert "the ledger runs on SQLite or PostgreSQL" in str(e.value) and "s3cret" not in str(e.value)


def test_a_postgres_url_and_a_relative_sqlite_path_say_what_to_write(tmp_path, monkeypatch) -> None:
    """A README walk-through: postgres:// said "the ledger runs on SQLite or
    PostgreSQL, not postgres", and sqlite:///tmp/x.db (three slashes: relative)
    said only "unable to open database file"."""
    from consentry.errors import LedgerError

    with pytest.raises(LedgerError) as e:
        Ledger("postgres://u:s3cret@localhost/db")
    said = str(e.value)
    assert "starts with postgresql+psycopg://, not postgres://" in said and "s3cret" not in said, said
    assert "write postgresql+psycopg://u:***@localhost/db" in said, said
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LedgerError) as e:
        Ledger("sqlite:///var/nowhere/x.db")
    said = str(e.value)
    assert f"the folder {tmp_path / 'var' / 'nowhere'} does not exist" in said, said
    assert "an absolute path takes four slashes: sqlite:////" in said


def test_exclusive_is_refused_while_another_holder_has_it_and_freed_after(ledger_url: str) -> None:
    """`Ledger.exclusive`: one holder of a name at a time, across connections
    (two Ledger objects stand for two processes), refused at once, freed when
    the holder leaves; other names are independent."""
    from consentry.errors import LedgerError

    a, b = Ledger(ledger_url), Ledger(ledger_url)
    try:
        with a.exclusive("campaign:c1", busy="c1 is busy"):
            with pytest.raises(LedgerError, match="c1 is busy"):
                with b.exclusive("campaign:c1", busy="c1 is busy"):
                    pass
            with b.exclusive("campaign:c2", busy="c2 is busy"):
                pass
        with b.exclusive("campaign:c1", busy="c1 is busy"):
            pass
    finally:
        a.close()
        b.close()


def test_an_event_dated_in_the_future_is_refused_and_one_already_stored_blocks_nothing(ledger, tmp_path):
    """A data engineer's trial: an imported objection dated 2099 was accepted;
    `consentry object` then said the person "already objects ... since 2099"
    and recorded nothing, while decisions at now did not count it either: the
    person's objection was lost. A new event dated later than now is refused
    (on import with its line and column), and one stored before this rule is
    not taken as in force before its time."""
    from consentry.errors import InputError
    from consentry.ledger import Channel

    path = tmp_path / "future.jsonl"
    path.write_text('{"user_id": "u1", "type": "notified", "at": "2024-01-01T00:00:00Z", "channel": "email"}\n'
                    '{"user_id": "u1", "type": "objected", "at": "2099-01-01T00:00:00Z", "channel": "web"}\n')
    before = ledger.count()
    with pytest.raises(InputError) as refused:
        ledger.import_jsonl(path)
    msg = str(refused.value)
    assert "line 2" in msg and "'at'" in msg and "2099-01-01T00:00:00Z is in the future" in msg, msg
    assert ledger.count() == before  # nothing half-imported
    with pytest.raises(InputError, match="in the future"):
        NewEvent(user_id="u1", type=EventType.objected, at=datetime.now(UTC) + timedelta(seconds=5), channel=Channel.api)

    # A ledger written before the rule may hold one: it must not turn away an objection made now.
    ahead = NewEvent.model_construct(user_id="u1", item_id=None, type=EventType.objected, event_id="ahead",
                                     at=parse_instant("2099-01-01T00:00:00Z"), channel=Channel.web, note=None,
                                     actor=None, imported_from=None)
    ledger.append([ahead])
    assert ledger.state("u1").objects
    assert ledger.in_force("u1", EventType.objected) is None
    now = ledger.record(NewEvent(user_id="u1", type=EventType.objected, at=datetime.now(UTC), channel=Channel.cli))
    assert ledger.in_force("u1", EventType.objected) == now
