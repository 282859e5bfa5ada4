"""What build, purge and verify share: the table's schema, the bucket of a
person, the per-snapshot lock, who must not be in a snapshot now, and how a
purge or a verify reads a snapshot back (its policy, its export, its rows)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from .. import config
from ..engine.compile import Compiler
from ..policy import Policy, TaggedPeople
from ..sources import Export, ValidationMemo, open_export
from ..sources.store import location
from .manifest import Manifest
from .registry import SnapshotError, SnapshotRecord

SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("user_id", pa.string()),
        ("kind", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("parent_id", pa.string()),
        ("text", pa.string()),
        ("media", pa.string()),  # relative to the snapshot folder
        ("faces_blurred", pa.int32()),
        ("tagged", pa.list_(pa.string())),
        ("bucket", pa.int32()),
    ]
)


def bucket_sql(user: str, buckets: int) -> str:
    """Stable across engines and versions (DuckDB's own hash() is not)."""
    return f"CAST(CAST(('0x' || left(md5({user}), 8)) AS UBIGINT) % {int(buckets)} AS INTEGER)"


def bucket_of(user_id: str, buckets: int) -> int:
    import hashlib

    return int(hashlib.md5(user_id.encode()).hexdigest()[:8], 16) % buckets


@contextmanager
def snapshot_lock(folder: Path) -> Iterator[None]:
    """One build or purge of a snapshot at a time, across processes."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def later_failures(con: duckdb.DuckDBPyConnection, policy: Policy, at: datetime, now: datetime, table: str = "later_fail") -> None:
    """People who fail a person rule now (by the ledger as loaded): what the
    ledger said after the cut-off still counts. Rules 6-12 only get stricter
    with time, so this is everyone who must not be in a snapshot today."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {Compiler(policy, max(at, now)).failing_sql()}")


def third_party_now(con: duckdb.DuckDBPyConnection, policy: Policy, at: datetime, now: datetime) -> None:
    """`tp_items`: the items a third-party objection covers now (rule 15 at
    max(T, now), by the ledger as loaded), like `later_failures` for people.
    Empty when the policy does not honour them."""
    comp = Compiler(policy, max(at, now))
    if comp.honours_third_parties:
        con.execute(f"CREATE OR REPLACE TEMP TABLE tp_items AS WITH {comp.third_party_cte()} SELECT item_id FROM third_party")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE tp_items (item_id VARCHAR)")


def hits_sql(policy: Policy, now: datetime, explode: str = "unnest") -> str:
    """The rows of `snap` that must leave, with who and why: authors and (unless
    the policy ignores them) tagged people who fail now, items deleted in the
    export, items a person without an account objected to. One text for both
    engines; only the list-exploding function is named (`explode` on Spark)."""
    tagged = (f"""UNION ALL
        SELECT t.item_id, t.bucket, t.media, t.u AS person, 'tagged:' || lf.reason AS cause
        FROM (SELECT item_id, bucket, media, {explode}(tagged) AS u FROM snap) t
        JOIN later_fail lf ON lf.user_id = t.u""" if policy.tagged_people is not TaggedPeople.ignore else "")
    blur = "WHERE NOT (s.media IS NOT NULL AND s.faces_blurred > 0)" if policy.tagged_people is TaggedPeople.blur else ""
    return f"""
        SELECT s.item_id, s.bucket, s.media, s.user_id AS person, lf.reason AS cause
        FROM snap s JOIN later_fail lf ON lf.user_id = s.user_id
        UNION ALL
        SELECT s.item_id, s.bucket, s.media, s.user_id, 'content_deleted'
        FROM snap s JOIN (SELECT item_id FROM content WHERE deleted_at <= {Compiler(policy, now).T}) c
          ON c.item_id = s.item_id
        UNION ALL
        SELECT s.item_id, s.bucket, s.media, CAST(NULL AS STRING), 'third_party_objected'
        FROM snap s JOIN tp_items tp ON tp.item_id = s.item_id {blur}
        {tagged}"""


def triggers_sql(watermark: int) -> str:
    """Per person, the last event after the snapshot's watermark: what set the purge off."""
    return f"SELECT user_id, max(seq) AS seq FROM ledger_events WHERE seq > {int(watermark)} GROUP BY user_id"


def stored_policy(m: Manifest) -> Policy:
    """The policy a snapshot was built under, as its manifest stores it."""
    policy = Policy.model_validate(m.policy_document)
    if policy.hash != m.policy_hash:  # pragma: no cover - the document is written by build
        raise SnapshotError(f"the policy stored in snapshot '{m.name}' does not match its hash {m.policy_hash}")
    return policy


def current_export(m: Manifest, data: str | Path | None, *, at: Path | None = None, command: str = "purge") -> Export:
    """The export to purge or verify against: `data`, or the one the snapshot was built from
    (a folder, or an object-store URI). `at`: the snapshot's folder, named in the error;
    `command`: the `consentry snapshot` command the fix names."""
    folder = location(data or m.export)
    if not folder.is_dir():
        where = f"snapshot '{m.name}'" + (f" ({at})" if at is not None else "")
        if data:
            raise SnapshotError(f"{where}: the export given with --data ({folder}) is not a folder\n"
                                "  fix: pass the folder (or s3:// URI) of the platform's current export")
        raise SnapshotError(
            f"{where}: the export it was built from ({folder}) is gone\n"
            f"  fix: pass the current export: `consentry snapshot {command} {m.name} --data FOLDER` (so accounts and "
            f"items deleted since are {'purged' if command == 'purge' else 'checked'} too), or put the export back at that path"
        )
    # Validation is remembered by the export's fingerprint, as for every command.
    return open_export(folder, memo=ValidationMemo(config.validation_memo_path()))[0]


def snapshot_view(con: duckdb.DuckDBPyConnection, rec: SnapshotRecord, columns: str = "*") -> list[str]:
    """Temp view `snap` over the snapshot's current files (typed, also when it has none); the files."""
    from deltalake import DeltaTable

    files = DeltaTable(rec.uri).file_uris()
    if files:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW snap AS SELECT {columns} FROM read_parquet({files!r}, hive_partitioning = true, "
            "hive_types = {'bucket': INTEGER})"
        )
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW snap AS SELECT NULL::VARCHAR AS item_id, NULL::VARCHAR AS user_id, "
                    "NULL::VARCHAR[] AS tagged, NULL::INTEGER AS bucket, NULL::VARCHAR AS media, "
                    "NULL::INTEGER AS faces_blurred, NULL::VARCHAR AS text WHERE false")
    return files
