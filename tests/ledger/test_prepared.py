"""The ledger's compiled statements behave as SQLAlchemy's own would."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import bindparam, create_engine, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from consentry.ledger import Ledger, Prepared
from consentry.ledger.prepared import _in_pipeline, pipeline
from consentry.ledger import tables as t


def test_a_driver_error_is_raised_as_sqlalchemys_and_the_transaction_is_rolled_back(tmp_path: Path) -> None:
    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        add = Prepared(insert(t.head).values(id=bindparam("id"), last_seq=0))
        with pytest.raises(IntegrityError) as caught, led.transaction() as conn:
            add.rows(conn, id=1)  # the head row exists: a primary key violation, from sqlite3
        assert "UNIQUE" in str(caught.value.orig)
        with led.engine.connect() as conn:
            assert conn.execute(select(t.head.c.last_seq)).all() == [(0,)]
    finally:
        led.close()


def test_it_is_compiled_per_dialect_and_driver() -> None:
    q = Prepared(text("SELECT user_id FROM person_state WHERE last_seq > :after"))
    for dialect, marker in ((sqlite.dialect(), "?"), (postgresql.psycopg.dialect(), "%(after)s"),
                            (postgresql.pg8000.dialect(), "%s")):
        class Conn:  # what Prepared reads of a connection
            pass

        conn = Conn()
        conn.dialect = dialect  # type: ignore[attr-defined]
        sql, _ = q._for(conn)  # type: ignore[arg-type]
        assert sql.endswith(f"last_seq > {marker}"), (dialect.driver, sql)


def test_rows_and_many_run_in_the_callers_transaction(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)")
    put = Prepared(text("INSERT INTO kv (k, v) VALUES (:k, :v)"))
    get = Prepared(text("SELECT k, v FROM kv WHERE v >= :least ORDER BY k"))
    with pytest.raises(RuntimeError), engine.begin() as conn:
        put.many(conn, [{"k": "a", "v": 1}, {"k": "b", "v": 2}])
        assert get.rows(conn, least=0) == [("a", 1), ("b", 2)]
        raise RuntimeError("roll back")
    with engine.begin() as conn:
        assert get.rows(conn, least=0) == []
        put.many(conn, [{"k": "c", "v": 3}])
    with engine.connect() as conn:
        assert get.rows(conn, least=1) == [("c", 3)]


def test_a_pipeline_queues_writes_and_a_read_waits_for_them(ledger_url: str) -> None:
    """On PostgreSQL (psycopg) the statements are really pipelined; on SQLite
    `pipeline()` changes nothing. Either way a read sees the writes sent before
    it, and an error anywhere rolls the whole transaction back."""
    led = Ledger(ledger_url)
    try:
        with led.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS kv")
            conn.exec_driver_sql("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)")
        put = Prepared(text("INSERT INTO kv (k, v) VALUES (:k, :v)"))
        get = Prepared(text("SELECT k, v FROM kv WHERE v >= :least ORDER BY k"))
        with led.engine.begin() as conn, pipeline(conn):
            raw = conn.connection.dbapi_connection
            assert _in_pipeline(raw) == ledger_url.startswith("postgresql+psycopg")
            put.write(conn, k="a", v=1)
            put.write(conn, k="b", v=2)
            first, second = get.send(conn, least=0), get.send(conn, least=2)
            assert first.rows() == [("a", 1), ("b", 2)]
            assert second.rows() == [("b", 2)]
        with pytest.raises(IntegrityError), led.engine.begin() as conn, pipeline(conn):
            put.write(conn, k="c", v=3)
            put.write(conn, k="a", v=9)  # a primary key violation, answered only when the pipeline syncs
            put.write(conn, k="d", v=4)
        with led.engine.connect() as conn:
            assert get.rows(conn, least=0) == [("a", 1), ("b", 2)]
    finally:
        with led.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS kv")
        led.close()


def test_group_commits_through_the_pipeline_store_what_one_by_one_appends_store(ledger_url: str) -> None:
    """A group commit (its reads and writes pipelined on PostgreSQL) numbers,
    stores and chains its events exactly as appending them one by one does,
    and an event already stored is not stored twice."""
    from concurrent.futures import wait

    from consentry.audit.log import verify
    from consentry.ledger import GroupCommitter, NewEvent

    led = Ledger(ledger_url)
    try:
        led.append([NewEvent(event_id="e0", user_id="u0", type="objected", at="2024-06-01T00:00:00Z")])
        events = [NewEvent(event_id=f"e{i}", user_id=f"u{i}", type="objected", at="2024-06-01T00:00:00Z")
                  for i in range(40)]
        committer = GroupCommitter(led, max_batch=7)
        futures = [committer.submit(e) for e in events]
        wait(futures, timeout=60)
        stored = {f.result().event_id: f.result().seq for f in futures}
        assert sorted(stored.values()) == list(range(1, 41))
        assert stored["e0"] == 1  # stored before, found, not added again
        assert led.count() == 40 and led.watermark() == 40
        assert [e.event_id for e in led.iter_events()] == [f"e{i}" for i in range(40)]
        result = verify(led)
        assert result.ok, result
    finally:
        led.close()


def test_a_refusal_inside_the_pipeline_leaves_the_connection_usable(ledger_url: str) -> None:
    """A head edited by hand refuses the append from inside the pipeline (its
    reads were sent, not yet answered, when the refusal is raised); the pooled
    connection must come back clean: once the head is right, the next append
    on it works and the chain still verifies."""
    from sqlalchemy import update

    from consentry.audit.log import verify
    from consentry.errors import LedgerError
    from consentry.ledger import NewEvent

    led = Ledger(ledger_url)
    try:
        led.append([NewEvent(event_id="a", user_id="u", type="objected", at="2024-06-01T00:00:00Z")])
        with led.engine.begin() as conn:
            conn.execute(update(t.head).values(last_seq=7))
        with pytest.raises(LedgerError, match="ahead of"):
            led.append([NewEvent(event_id="b", user_id="u", type="objection_withdrawn", at="2024-06-02T00:00:00Z")])
        with led.engine.begin() as conn:
            conn.execute(update(t.head).values(last_seq=1))
        (stored,) = led.append([NewEvent(event_id="b", user_id="u", type="objection_withdrawn", at="2024-06-02T00:00:00Z")])
        assert stored.seq == 2 and led.count() == 2
        assert verify(led).ok
    finally:
        led.close()
