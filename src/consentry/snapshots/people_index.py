"""Who is in a snapshot: a person's own rows and the rows of others that tag
them, per table version.

A person's page (`impact`, the privacy center's /me) must count both, and
tags sit in any bucket, so the answer needs two columns of every file: some
40 ms a person on a 400k-row snapshot, and growing with it. The first question
about a table version writes every person's two counts, sorted by user id,
into one small Parquet file in the snapshot's folder (`.people/`, beside the
table, never inside it); every later question reads the row group that holds
that id. The file is named by the version and by the size and time of each of
its data files, so a table changed in any way is read afresh, never answered
from an old count.

It holds user ids, so it goes where the rows go: a purge deletes every index
of the snapshot after its commit (`forget`, each time it finishes), and an
index written while a purge committed is deleted by its writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from .ondisk import folder_of
from .registry import SnapshotRecord

__all__ = ["counts", "forget", "rows_of", "INDEX_DIR"]

#: In the snapshot's folder, beside `table/` (outside the Delta table, so no reader of it sees these files).
INDEX_DIR = ".people"
#: Ids per row group: a lookup reads one group (its min and max skip the others).
ROW_GROUP = 8192


def rows_of(rec: SnapshotRecord, user_id: str, dt=None) -> tuple[int, int]:  # noqa: ANN001 - an open DeltaTable
    """The person's own rows in a snapshot now, and the rows of others that tag
    them (a photo that shows them is their data too), read from the table itself:
    two columns of every file."""
    import duckdb
    from deltalake import DeltaTable

    files = (dt if dt is not None else DeltaTable(rec.uri)).file_uris()
    if not files:
        return 0, 0
    con = duckdb.connect()
    try:
        own, tagged = con.execute(
            f"SELECT count(*) FILTER (WHERE user_id = $u), count(*) FILTER (WHERE user_id <> $u AND list_contains(tagged, $u)) "
            f"FROM read_parquet({files!r})", {"u": user_id}).fetchall()[0]
        return int(own), int(tagged)
    finally:
        con.close()


def _name(dt) -> tuple[str, list[str]]:  # noqa: ANN001 - an open DeltaTable
    """The index file's name for the table as it is now, and its data files."""
    files = dt.file_uris()
    h = hashlib.sha256(f"{dt.version()}".encode())
    for uri in sorted(files):
        st = os.stat(uri.removeprefix("file://"))
        h.update(f"\0{uri}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return f"v{dt.version()}-{h.hexdigest()[:20]}.parquet", files


def counts(rec: SnapshotRecord, user_id: str, dt=None) -> tuple[int, int]:  # noqa: ANN001 - an open DeltaTable
    """`rows_of`, answered from the index of the table's current version (written
    now if there is none). Where the snapshot's folder cannot be written (a
    read-only mount), the table is read as `rows_of` reads it."""
    from deltalake import DeltaTable

    dt = dt if dt is not None else DeltaTable(rec.uri)
    try:
        name, files = _name(dt)
    except OSError:  # a file of the version is gone (a purge vacuumed it) or not local: the table answers
        return rows_of(rec, user_id, dt)
    if not files:
        return 0, 0
    path = folder_of(rec) / INDEX_DIR / name
    if not path.is_file() and not _write(rec, dt, files, path):
        return rows_of(rec, user_id, dt)
    # pyarrow, not DuckDB: a new DuckDB database costs some 12 ms, the read of one row group under 1 ms.
    import pyarrow.parquet as pq

    got = pq.read_table(path, columns=["own", "tagged"], filters=[("user_id", "=", user_id)])
    return (int(got.column(0)[0].as_py()), int(got.column(1)[0].as_py())) if got.num_rows else (0, 0)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _write(rec: SnapshotRecord, dt, files: list[str], path: Path) -> bool:  # noqa: ANN001 - an open DeltaTable
    """Write the index of `dt`'s version at `path`, and drop the others. False
    when it cannot be written here (the caller reads the table instead)."""
    import duckdb
    from deltalake import DeltaTable

    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        path.parent.mkdir(exist_ok=True)
        con = duckdb.connect()
        try:
            con.execute(f"""COPY (
                SELECT user_id, sum(own)::BIGINT AS own, sum(tagged)::BIGINT AS tagged FROM (
                  SELECT user_id, 1 AS own, 0 AS tagged FROM read_parquet({files!r})
                  UNION ALL
                  SELECT u, 0, 1 FROM (SELECT user_id AS a, unnest(list_distinct(tagged)) AS u FROM read_parquet({files!r}))
                  WHERE u <> a)
                GROUP BY user_id ORDER BY user_id
            ) TO '{_sql_path(tmp)}' (FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP}, COMPRESSION zstd)""")
        finally:
            con.close()
        os.replace(tmp, path)
    except (OSError, duckdb.IOException, duckdb.PermissionException):
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return False
    # A purge that committed while this was read deletes every index after its commit, maybe before this
    # one was in place: then this one holds ids the table no longer has, and goes.
    try:
        same = _name(DeltaTable(rec.uri))[0] == path.name
    except OSError:
        same = False
    if not same:
        path.unlink(missing_ok=True)
        return False
    for other in path.parent.glob("*.parquet"):
        if other.name != path.name:
            other.unlink(missing_ok=True)
    return True


def forget(folder: Path) -> None:
    """Delete every index of the snapshot in `folder` (a purge, after its commit)."""
    index = folder / INDEX_DIR
    if index.is_dir():
        for f in index.iterdir():
            f.unlink(missing_ok=True)
