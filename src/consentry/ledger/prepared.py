"""The write path's statements, compiled once per dialect and run on the driver's cursor.

Appending one event runs about ten statements (the heads, the events, the
chain, the person's state). Building each as a SQLAlchemy Core statement,
computing its cache key and binding it cost about 2.5 ms of the 3 ms an
append took on SQLite, and every live objection and every group commit of a
notice campaign pays that. The SQL is still written once, as Core or
`text()`; only its compilation is kept. The cursor is the transaction's own
connection, so the statements run in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ClauseElement


def run(conn: Connection, sql: str, args: Any, *, many: bool = False) -> list[tuple]:  # noqa: ANN401
    """`sql` (in the driver's own parameter style) on the cursor of `conn`'s
    transaction; the rows it returns. A driver error is raised as SQLAlchemy
    would raise it (`OperationalError`, `IntegrityError`, ... with `.orig`)."""
    dbapi = conn.dialect.loaded_dbapi
    cur = conn.connection.dbapi_connection.cursor()
    try:
        if many:
            cur.executemany(sql, args)
            return []
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, args, exc, dbapi.Error, dialect=conn.dialect) from exc
    finally:
        cur.close()


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
        """Run it with `params`; the rows it returns (none for a write)."""
        sql, compiled = self._for(conn)
        return run(conn, sql, self._args(compiled, params))

    def many(self, conn: Connection, params: list[dict[str, Any]]) -> None:
        """Run it once per dict of `params`, as one executemany."""
        if params:
            sql, compiled = self._for(conn)
            run(conn, sql, [self._args(compiled, p) for p in params], many=True)
