"""The DuckDB backend: the export as views, the ledger as an Arrow table."""

from __future__ import annotations

import tempfile
from datetime import datetime

import duckdb

from .. import config
from ..ledger import Ledger
from ..sources import Export
from ..sqltext import quote
from ..timeutil import to_micros
from .rules import ORDER

#: The reasons as a DuckDB ENUM, in rule order (see `Compiler.reason_type`).
REASON_TYPE = "consentry_reason"


def connect(memory_limit: str | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A connection tuned for streaming large scans within a bounded memory."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET memory_limit = '{config.memory_limit(memory_limit)}'")
    con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/consentry-duckdb'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def reason_type(con: duckdb.DuckDBPyConnection) -> str:
    """`REASON_TYPE`, created in `con` if it is not there yet."""
    values = ", ".join(quote(r) for r in ORDER)
    con.execute(f"CREATE TYPE IF NOT EXISTS {REASON_TYPE} AS ENUM ({values})")
    return REASON_TYPE


def load_inputs(
    con: duckdb.DuckDBPyConnection,
    export: Export,
    ledger: Ledger,
    at: datetime,
    watermark: int | None = None,
    users: list[str] | None = None,
    touched_after: int | None = None,
) -> int:
    """Register users/content/tags and the ledger events visible at `at`, up to a
    watermark read first, so the decision is pinned to a known ledger state.
    `users` limits the events read to those people (a person's own page)."""
    export.register(con)
    wm = ledger.pinned(watermark)
    kept = ledger.events_parquet(wm) if users is None and touched_after is None else None
    if kept is not None:  # DuckDB reads the kept extract itself, on every core, cut at the watermark and at `at`
        con.execute(f"""CREATE OR REPLACE TEMP TABLE ledger_events AS
            SELECT seq, user_id, item_id, type, event_at FROM read_parquet({quote(str(kept))})
            WHERE seq <= {int(wm)} AND epoch_us(event_at) <= {to_micros(at)}""")
        return wm
    events = ledger.events_arrow(upto=at, upto_seq=wm, users=users, touched_after=touched_after)
    con.register("ledger_events_arrow", events)
    con.execute("CREATE OR REPLACE TEMP TABLE ledger_events AS SELECT * FROM ledger_events_arrow")
    con.unregister("ledger_events_arrow")
    return wm


def counted(con: duckdb.DuckDBPyConnection, files: list[str], *, blur: bool = False) -> tuple[dict[str, int], int | None]:
    """The decisions written to `files` (Parquet) counted by reason, and under
    `blur` how many are to be blurred: read back from what was written, so the
    counts recorded are those of the file, one column read."""
    if not files:  # nothing written: nothing decided
        return {}, (0 if blur else None)
    flag = "count(*) FILTER (WHERE blur_faces)" if blur else "0"
    rows = con.execute(f"SELECT reason, count(*), {flag} FROM read_parquet(?) GROUP BY reason", [files]).fetchall()
    return {str(r): int(n) for r, n, _ in rows}, (sum(int(b) for _, _, b in rows) if blur else None)
