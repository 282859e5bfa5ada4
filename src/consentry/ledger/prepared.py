"""The write path's statements, compiled once per dialect and run on the driver's cursor.

Appending one event runs about ten statements (the heads, the events, the
chain, the person's state). Building each as a SQLAlchemy Core statement,
computing its cache key and binding it cost about 2.5 ms of the 3 ms an
append took on SQLite, and every live objection and every group commit of a
notice campaign pays that. The SQL is still written once, as Core or
`text()`; only its compilation is kept. The cursor is the transaction's own
connection, so the statements run in the caller's transaction.

On PostgreSQL with psycopg, `pipeline()` sends a transaction's statements
without waiting for each answer: a group commit's dozen statements took a
dozen round trips, each one a wait for the network and then for the GIL,
which the web worker's event loop holds while it serves requests (a batch of
8 events: 4 ms alone, 81 ms beside a busy thread). Rows are read only where
they are needed (`rows()`, which waits for everything sent before it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ClauseElement


def run(conn: Connection, sql: str, args: Any, *, many: bool = False, fetch: bool = True) -> list[tuple]:  # noqa: ANN401
    """`sql` (in the driver's own parameter style) on the cursor of `conn`'s
    transaction; the rows it returns (`fetch`; none for a write). A driver
    error is raised as SQLAlchemy would raise it (`OperationalError`,
    `IntegrityError`, ... with `.orig`). In a `pipeline()`, a write is only
    queued (its error comes when the pipeline syncs) and a read waits for
    everything queued before it."""
    raw = conn.connection.dbapi_connection
    cur = raw.cursor()
    try:
        with _as_sqlalchemy(conn, sql, args):
            if many:
                cur.executemany(sql, args)
                return []
            cur.execute(sql, args)
            # In a pipeline the answer has not come yet, so there is no description to ask.
            return cur.fetchall() if fetch and (cur.description is not None or _in_pipeline(raw)) else []
    finally:
        cur.close()


@contextmanager
def _as_sqlalchemy(conn: Connection, sql: str, args: Any) -> Iterator[None]:  # noqa: ANN401
    """A driver error inside, raised as SQLAlchemy would raise it (with `.orig`)."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, args, exc, dbapi.Error, dialect=conn.dialect) from exc


class Sent:
    """A read that `send` has sent (in a pipeline: queued behind what came
    before it); `rows()` waits for its answer. Several reads sent before the
    first `rows()` share one round trip."""

    def __init__(self, conn: Connection, sql: str, args: Any) -> None:  # noqa: ANN401
        self._conn, self._sql, self._args = conn, sql, args
        self._cur = conn.connection.dbapi_connection.cursor()
        try:
            with _as_sqlalchemy(conn, sql, args):
                self._cur.execute(sql, args)
        except BaseException:
            self._cur.close()
            raise

    def rows(self) -> list[tuple]:
        try:
            with _as_sqlalchemy(self._conn, self._sql, self._args):
                return self._cur.fetchall()
        finally:
            self._cur.close()


def _in_pipeline(raw: Any) -> bool:  # noqa: ANN401 - a DB-API connection
    pgconn = getattr(raw, "pgconn", None)
    return pgconn is not None and bool(pgconn.pipeline_status)


@contextmanager
def pipeline(conn: Connection, enabled: bool = True) -> Iterator[None]:
    """Inside, `run` sends without waiting (psycopg's pipeline mode); on
    leaving, everything sent is answered, and the first error is raised as
    `run` raises it. Elsewhere (SQLite, another driver, `enabled` false:
    COPY cannot run in a pipeline) statements simply run one by one. Only
    `run` and `Prepared` may be used inside: SQLAlchemy's own `execute`
    would read a result that has not come yet."""
    raw = conn.connection.dbapi_connection
    if not enabled or conn.dialect.driver != "psycopg" or not hasattr(raw, "pipeline"):
        yield
        return
    with _as_sqlalchemy(conn, "(pipeline)", None), raw.pipeline():
        yield


class Prepared:
    """One statement, compiled on first use per dialect."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str, str], tuple[str, Any]] = {}

    def _for(self, conn: Connection) -> tuple[str, Any]:
        d = conn.dialect  # the driver too: pg8000 wants %s where psycopg takes %(name)s
        key = (d.name, d.driver, d.paramstyle)
        got = self._compiled.get(key)
        if got is None:
            compiled = self.statement.compile(dialect=d)
            got = self._compiled[key] = (str(compiled), compiled)
        return got

    def _args(self, compiled: Any, params: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:  # noqa: ANN401
        values = compiled.construct_params(params)
        return tuple(values[k] for k in compiled.positiontup) if compiled.positional else values

    def rows(self, conn: Connection, **params: Any) -> list[tuple]:  # noqa: ANN401
        """Run it with `params`; the rows it returns."""
        sql, compiled = self._for(conn)
        return run(conn, sql, self._args(compiled, params))

    def send(self, conn: Connection, **params: Any) -> Sent:  # noqa: ANN401
        """Send it with `params` now; its rows are read by `Sent.rows()`."""
        sql, compiled = self._for(conn)
        return Sent(conn, sql, self._args(compiled, params))

    def write(self, conn: Connection, **params: Any) -> None:  # noqa: ANN401
        """Run it with `params`, reading nothing back (in a pipeline: queued)."""
        sql, compiled = self._for(conn)
        run(conn, sql, self._args(compiled, params), fetch=False)

    def many(self, conn: Connection, params: list[dict[str, Any]]) -> None:
        """Run it once per dict of `params`, as one executemany."""
        if params:
            sql, compiled = self._for(conn)
            run(conn, sql, [self._args(compiled, p) for p in params], many=True)
