"""The ledger's compiled statements behave as SQLAlchemy's own would."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import bindparam, create_engine, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from consentry.ledger import Ledger, Prepared
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
