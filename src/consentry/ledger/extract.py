"""The decision engines' read of the ledger, kept as a Parquet extract per
watermark and extended with only the new events.

Deciding reads every event up to a watermark (900k events: 1.4-3 s from
SQLite). Events at or below a watermark never change in an append-only ledger,
so they are kept in `<dir>/events-<ledger>.parquet` with the watermark they
end at. A later read up to watermark S reads the file, and from the database
only the events after the file's watermark, then keeps the longer file. It
never serves an event past the watermark asked for: the rows are cut at
`seq <= S` whatever the file holds.

The file names the audit chain's head as it was after its events were read
(record number and hash): the chain covers every event, in the transaction
that wrote it, and each hash covers all before it. If the ledger no longer
has that record with that hash (another database at the same URL, a test
database made again, a restore from an older backup), the file is dropped and
the events are read again. Tampering with stored events is for `audit
verify` to find, as before.
"""

from __future__ import annotations

import hashlib
import os
import struct
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine, select

from ..timeutil import to_micros
from . import tables as t

if TYPE_CHECKING:  # loaded where rows are read or kept: a re-run that finds its file reads the footer alone
    import pyarrow as pa

__all__ = ["events_through_extract", "extract_file", "extract_path"]


class Ledger(Protocol):
    """What the extract reads of `store.Ledger`, which calls it: named here, not
    imported, so that the store (below) and its extract (above) import in
    one direction only."""

    engine: Engine
    reader: Engine

    def events_arrow(self, upto: datetime | None = None, *, upto_seq: int | None = None,
                     after_seq: int | None = None) -> pa.Table: ...


_WATERMARK = b"consentry.watermark"
_AUDIT_SEQ = b"consentry.audit_seq"
_AUDIT_HASH = b"consentry.audit_hash"

#: Rows in a row group of the extract. Snappy, not zstd: twice as fast both
#: ways. Row groups of DuckDB's own size, not one for the whole file: DuckDB
#: reads a Parquet file one row group to a thread, so one group of 900k events
#: was read by one core while the other idled.
_ROW_GROUP = 122_880


def extract_path(ledger: Ledger, directory: Path) -> Path:
    """One file per ledger, named by its URL (hashed: the URL may hold a password)."""
    key = hashlib.sha256(ledger.engine.url.render_as_string(hide_password=False).encode()).hexdigest()[:16]
    return directory / f"events-{key}.parquet"


def _audit_head(ledger: Ledger) -> tuple[int, str]:
    with ledger.reader.connect() as conn:
        seq, h = conn.execute(select(t.audit_head.c.last_seq, t.audit_head.c.last_hash).where(t.audit_head.c.id == 1)).one()
    return int(seq), h


def _audit_hash_at(ledger: Ledger, seq: int) -> str | None:
    with ledger.reader.connect() as conn:
        return conn.execute(select(t.audit_log.c.hash).where(t.audit_log.c.seq == seq)).scalar_one_or_none()


def _kept(ledger: Ledger, path: Path) -> tuple[pa.Table, int] | None:
    """The extract and its watermark, if there is one that still fits the ledger."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wm = _fitting_watermark(ledger, path)  # checked before the rows are read
    if wm is None:
        return None
    try:
        # ParquetFile, not read_table: read_table's first call imports pyarrow.dataset (0.6 s of a 0.7 s read).
        with pq.ParquetFile(path) as f:
            return f.read().replace_schema_metadata(None), wm
    except (OSError, pa.ArrowException):
        return None


def _tidy(path: Path) -> None:
    """Remove the half-written files of writers that died (a SIGKILL between
    write and rename leaves one per process): they would pile up, unread."""
    for stale in path.parent.glob(f"{path.name}.*.tmp"):
        try:
            os.kill(int(stale.name[len(path.name) + 1 : -len(".tmp")]), 0)
        except ProcessLookupError:
            stale.unlink(missing_ok=True)
        except (ValueError, OSError):
            continue


def _keep(path: Path, table: pa.Table, wm: int, audit: tuple[int, str]) -> None:
    """Write the extract for watermark `wm` atomically (a reader sees the old file or the new one)."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    _tidy(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    meta = {_WATERMARK: str(wm).encode(), _AUDIT_SEQ: str(audit[0]).encode(), _AUDIT_HASH: audit[1].encode()}
    pq.write_table(table.replace_schema_metadata(meta), tmp, compression="snappy", row_group_size=_ROW_GROUP)
    os.replace(tmp, path)


def _int64(v: int) -> pa.Scalar:
    """An int64 Arrow scalar made from its bytes: `pa.scalar(v)` goes through
    pyarrow's pandas shim, whose first use imports pandas (0.4 s of a re-run
    that reads nothing else from Python)."""
    import pyarrow as pa

    return pa.Array.from_buffers(pa.int64(), 1, [None, pa.py_buffer(struct.pack("<q", v))])[0]


def _fitting_watermark(ledger: Ledger, path: Path) -> int | None:
    """The watermark of the extract at `path` if it still fits the ledger (its
    footer and one audit record are read, not its rows); else None. DuckDB
    reads the footer: a re-run whose file fits then never loads pyarrow
    (0.15-0.2 s, against 0.03 s for a DuckDB connection)."""
    import duckdb

    try:
        with duckdb.connect() as con:
            meta = dict(con.execute("SELECT key, value FROM parquet_kv_metadata(?)", [str(path)]).fetchall())
        wm = int(meta[_WATERMARK])
        audit_seq, audit_hash = int(meta[_AUDIT_SEQ]), meta[_AUDIT_HASH].decode()
    except (duckdb.Error, KeyError, ValueError, UnicodeDecodeError):
        return None
    # An empty chain can only go with an empty extract.
    fits = _audit_hash_at(ledger, audit_seq) == audit_hash if audit_seq > 0 else wm == 0
    return wm if fits else None


def _extended(ledger: Ledger, path: Path, upto_seq: int) -> tuple[pa.Table, bool]:
    """Every event up to at least `upto_seq`: the kept rows and those after them,
    kept again; and whether the file at `path` now holds them."""
    import pyarrow as pa

    kept = _kept(ledger, path)
    if kept is not None and kept[1] >= upto_seq:
        return kept[0], True
    base, wm = kept if kept is not None else (None, 0)
    new = ledger.events_arrow(upto_seq=upto_seq, after_seq=wm)
    audit = _audit_head(ledger)  # read after the events: it chains every one of them
    table = new if base is None else pa.concat_tables([base, new.cast(base.schema)])
    try:
        _keep(path, table, upto_seq, audit)
    except OSError:
        return table, False  # a folder it cannot write to costs the next read its speed, not its answer
    return table, True


def extract_file(ledger: Ledger, directory: Path, upto_seq: int) -> Path | None:
    """A Parquet file holding every event up to `upto_seq` (and maybe later
    ones: cut at `seq <= upto_seq` when reading it), for an engine that reads
    Parquet itself; None when none can be kept (a folder it cannot write to)."""
    path = extract_path(ledger, directory)
    wm = _fitting_watermark(ledger, path)
    if wm is not None and wm >= upto_seq:
        return path
    return path if _extended(ledger, path, upto_seq)[1] else None


def events_through_extract(ledger: Ledger, directory: Path, upto: datetime | None, upto_seq: int) -> pa.Table:
    """`ledger.events_arrow(upto, upto_seq=upto_seq)`, read through the extract in `directory`."""
    import pyarrow as pa
    import pyarrow.compute as pc  # here: an engine that reads `extract_file` itself never needs it (0.06 s)

    table, _ = _extended(ledger, extract_path(ledger, directory), upto_seq)
    mask = pc.less_equal(table.column("seq"), _int64(upto_seq))
    if upto is not None:
        mask = pc.and_(mask, pc.less_equal(table.column("event_at").cast(pa.int64()), _int64(to_micros(upto))))
    return table.filter(mask)
