"""What build, purge and verify share: the table's schema, the bucket of a
person, the per-snapshot lock, who must not be in a snapshot now, how a
purge or a verify reads a snapshot back (its policy, its export, its rows),
and which export a purge last checked every row against. Which rows should
not be there is `checks.leaving_sql`, verify's and purge's alike."""

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
from ..policy import Policy
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
def snapshot_lock(folder: Path, *, shared: bool = False) -> Iterator[None]:
    """One build or purge of a snapshot at a time, across processes; with
    `shared`, a reader (verify): any number of them at once, none while a
    build or purge writes, so a reader sees one version whole (a verify that
    read a file list before a purge vacuumed it crashed on a missing file)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def later_failures(con: duckdb.DuckDBPyConnection, policy: Policy, at: datetime, now: datetime, table: str = "later_fail") -> None:
    """People who fail a person rule now (by the ledger and the export as
    loaded): what the ledger said after the cut-off still counts. Over one
    export, rules 6-12 only get stricter with time; an export that corrects a
    birth date, a deletion or a country can change them either way, which is
    why a purge checks every row again when the export's files change
    (`export_checked`)."""
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


#: A removal's cause -> (the event types that cause it, the types that undo them), by person or by item.
_TRIGGERS = {
    "objected": ("user_id", ("objected",), ("objection_withdrawn", "objection_rejected")),
    "account_deleted": ("user_id", ("erasure_requested",), ()),
    "no_consent": ("user_id", ("consent_withdrawn",), ("consent_given",)),
    "third_party_objected": ("item_id", ("third_party_objected",), ("third_party_dismissed",)),
}


def triggers_sql(watermark: int) -> str:
    """(user_id, item_id, reason, seq): per person (or item, for a third party's
    objection) and cause, the ledger event after the snapshot's watermark that
    set the removal off: the first event of the cause's type after the last one
    that undid it (an objection after a withdrawn one; a repeated objection does
    not restart the clock, and a later notice is no cause). What the report times
    and a person's receipt names. One SQL text for DuckDB and Spark."""
    wm = int(watermark)
    parts = []
    for reason, (key, causing, undoing) in _TRIGGERS.items():
        cause_in = ", ".join(f"'{t}'" for t in causing)
        undo_in = ", ".join(f"'{t}'" for t in undoing)
        last_undo = (f"LEFT JOIN (SELECT {key}, max(seq) AS undone FROM ledger_events WHERE type IN ({undo_in}) "
                     f"GROUP BY {key}) u ON u.{key} = e.{key} ") if undoing else ""
        after = " AND e.seq > COALESCE(u.undone, 0)" if undoing else ""
        parts.append(
            f"SELECT {'e.user_id' if key == 'user_id' else 'CAST(NULL AS STRING)'} AS user_id, "
            f"{'e.item_id' if key == 'item_id' else 'CAST(NULL AS STRING)'} AS item_id, '{reason}' AS reason, "
            f"min(e.seq) AS seq FROM ledger_events e {last_undo}"
            f"WHERE e.type IN ({cause_in}) AND e.{key} IS NOT NULL AND e.seq > {wm}{after} GROUP BY e.{key}"
        )
    return "\nUNION ALL\n".join(parts)


#: Beside a snapshot's manifest: the fingerprint (file names, sizes, mtimes) of the export whose every row a
#: purge last checked the snapshot against. No person's data: a hash.
EXPORT_CHECKED = ".export-checked.json"


def export_checked(folder: Path) -> str | None:
    """The fingerprint (`Export.fingerprint`) of the export a purge last
    checked every row of the snapshot in `folder` against, if any. While the
    export's files are those, a purge need look only at the people with new
    ledger events; another export, a file changed, or none checked since the
    build: every row is checked again."""
    import json

    try:
        kept = json.loads((folder / EXPORT_CHECKED).read_text())
    except (OSError, ValueError):
        return None
    return kept.get("fingerprint") if isinstance(kept, dict) else None


def remember_export_checked(folder: Path, fingerprint: str) -> None:
    """Note that every row of the snapshot in `folder` was checked against the
    export with `fingerprint` (taken before it was read: a file changed during
    the check makes the next purge check again)."""
    import json
    import os

    tmp = folder / f"{EXPORT_CHECKED}.tmp"
    tmp.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")
    os.replace(tmp, folder / EXPORT_CHECKED)


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
