"""Verify: re-check every row of a snapshot against the current ledger and
export, independently of how it was built or purged (a purge removes what
these checks find: `checks.leaving_sql`). It holds the snapshot's lock,
shared, so it reads one version whole and never one a purge is vacuuming."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..engine.compile import Compiler
from ..engine.duck import connect, load_inputs
from ..ledger import Ledger
from ..policy import Policy
from ..sources import Export
from ..words import count
from .checks import checks_sql, text_checks, unmentionable_sql
from .images import metadata_left
from .manifest import Manifest, content_digest
from .mentions import handles_sql
from .ondisk import changed_fix, drift, require_readable
from .recovery import read_intent
from .redact import install_sql
from .registry import Registry, SnapshotRecord
from .repair import recover
from .shared import (
    current_export,
    later_failures,
    snapshot_lock,
    snapshot_view,
    stored_policy,
    third_party_now,
)


@dataclass(frozen=True)
class Problem:
    """A row that should not be there (`item_id`), or, with `item_id` None, the
    table as a whole (changed outside consentry), with what to do about it."""

    item_id: str | None
    user_id: str | None
    why: str
    fix: str | None = None


def verify(ledger: Ledger, name: str, *, data: str | Path | None = None, now: datetime | None = None,
           spark=None) -> tuple[int, list[Problem]]:  # noqa: ANN001 - a SparkSession: Spark decides and reads the rows
    """(rows checked, rows that should not be there). Checks: eligible at the
    cut-off; author and tagged people pass the person rules now; item not
    deleted; no objection by someone without an account; no @mention of
    someone who may not be used; no personal data the build redacts; image
    present and without metadata."""
    recover(ledger)  # a purge a crash interrupted is finished first: verify checks what is really there
    registry = Registry(ledger)
    rec = registry.require(name)
    require_readable(rec)  # moved or deleted: say so by name and path (deltalake said "Local path ... does not exist")
    folder = Path(rec.uri).parent
    export = current_export(rec.manifest, data, at=folder, command="verify")
    # Shared with other verifies, never while a build or purge of it writes: a verify that listed the
    # table's files and then read them while a purge vacuumed them crashed ("Cannot open file").
    with snapshot_lock(folder, shared=True):
        rec = registry.require(name)  # re-read under the lock: a purge may have finished while we waited
        require_readable(rec)
        m = rec.manifest
        policy = stored_policy(m)
        watermark = ledger.watermark()
        now = now or datetime.now(UTC)
        if spark is not None:
            from .spark_verify import verify_rows_spark

            total, rows, media = verify_rows_spark(spark, export, ledger, rec, policy, now, watermark)
        else:
            total, rows, media = _verify_rows(export, ledger, rec, policy, now, watermark)
        problems = [Problem(*row) for row in rows]
        for item_id, user_id, rel in media:
            path = folder / rel
            if not path.is_file():
                problems.append(Problem(item_id, user_id, f"its image {rel} is missing"))
            elif m.transforms_enabled.get("strip_exif", True) and (left := metadata_left(path)):
                problems.append(Problem(item_id, user_id, f"its image {rel} still has metadata: {', '.join(left)}"))
        table = _table_problems(rec, int(total)) + _manifest_problems(rec)
    return int(total), table + sorted(problems, key=lambda p: (p.item_id, p.why))


def _table_problems(rec: SnapshotRecord, total: int) -> list[Problem]:
    """The table as a whole: at the Delta version and row count consentry recorded?
    A commit by another tool (an appended row) is a failure of its own, whatever its rows hold."""
    m = rec.manifest
    d = drift(rec)
    if d is not None and d.outside:
        return [Problem(None, None, d.what(total), changed_fix(rec))]
    if d is None and total != m.rows:  # the version recorded, other rows: files replaced under the log
        return [Problem(None, None, f"its table holds {count(total, 'row', 'rows')}, but consentry recorded "
                                    f"{count(m.rows, 'row', 'rows')} and no commit since explains it: its files were "
                                    "changed outside consentry", changed_fix(rec))]
    if d is None and (now_digest := content_digest(Path(rec.uri).parent)) != m.digest:
        # Bytes rewritten in place (a Parquet file or an image replaced under the same name) change no
        # version and no count: only the digest the build or the last purge recorded tells.
        return [Problem(None, None, f"its files are not the ones consentry recorded: their digest is {now_digest}, "
                                    f"but consentry recorded {m.digest} (a data file or an image was rewritten "
                                    "outside consentry)", changed_fix(rec))]
    return []


#: What a purge changes in the manifest: while its intent is on disk, the registry may already hold the new
#: values and manifest.json not yet (`purge._complete` records the purge, then writes the file).
_PURGE_LAGS = ("watermark", "rows", "digest", "table_version", "purges")


def _manifest_problems(rec: SnapshotRecord) -> list[Problem]:
    """manifest.json beside the table is consentry's record of the snapshot (the registry's copy, which
    build and purge write it from): each field that differs is named. An auditor reads the file."""
    folder = Path(rec.uri).parent
    path = folder / "manifest.json"
    fix = (f"find out who changed {path}; `consentry snapshot show {rec.name}` shows consentry's record, and "
           f"`consentry snapshot purge {rec.name}` writes the file again from it")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        on_disk = Manifest.model_validate(raw).model_dump(mode="json")
    except FileNotFoundError:
        return [Problem(None, None, f"its manifest.json is missing from {folder}", fix)]
    except (OSError, ValueError) as exc:  # unreadable, not JSON, or not a manifest (pydantic's errors are ValueErrors)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return [Problem(None, None, f"its manifest.json ({path}) is not a consentry manifest: {first}", fix)]
    ours = rec.manifest.model_dump(mode="json")
    if isinstance(raw, dict):  # a field the model does not know is dropped by it, but is in the file for readers
        on_disk.update({k: v for k, v in raw.items() if k not in ours})
    lagging = _PURGE_LAGS if read_intent(folder) is not None else ()
    diffs = [d for k in sorted(on_disk.keys() | ours.keys()) if k not in lagging
             for d in _differences(on_disk.get(k, _ABSENT), ours.get(k, _ABSENT), k)]
    if not diffs:
        return []
    shown = "; ".join(diffs[:10]) + (f"; and {len(diffs) - 10:,} more" if len(diffs) > 10 else "")
    # A purge that found nothing records its new watermark, then rewrites the file: killed in between, the
    # file says an older one (no intent marks that step). Said as either, not as an edit for certain.
    behind = (len(diffs) == 1 and isinstance(on_disk.get("watermark"), int)
              and on_disk["watermark"] < ours["watermark"] and diffs[0].startswith("watermark "))
    why = ("a purge that was interrupted before it rewrote the file left it behind, or it was edited" if behind
           else "the file was changed outside consentry, and whoever reads it is misled")
    return [Problem(None, None, f"its manifest.json ({path}) is not consentry's record of this snapshot: {shown}: "
                                f"{why}", fix)]


_ABSENT = object()


def _differences(disk: object, ours: object, path: str) -> list[str]:
    """Each field where the file and consentry's record differ, by its dotted path."""
    if isinstance(disk, dict) and isinstance(ours, dict):
        return [d for k in sorted(disk.keys() | ours.keys(), key=str)
                for d in _differences(disk.get(k, _ABSENT), ours.get(k, _ABSENT), f"{path}.{k}")]
    if isinstance(disk, list) and isinstance(ours, list):
        if len(disk) != len(ours):
            return [f"{path} has {len(disk):,} entries in the file, {len(ours):,} in consentry's record"]
        return [d for i, (a, b) in enumerate(zip(disk, ours)) for d in _differences(a, b, f"{path}[{i}]")]
    if disk == ours and type(disk) is type(ours):
        return []

    def shown(v: object) -> str:
        return "absent" if v is _ABSENT else repr(v)

    return [f"{path} is {shown(disk)} in the file, {shown(ours)} in consentry's record"]


def _verify_rows(export: Export, ledger: Ledger, rec: SnapshotRecord, policy: Policy, now: datetime,
                 watermark: int) -> tuple[int, list[tuple], list[tuple]]:
    """(rows, problems as (item_id, user_id, why), images as (item_id, user_id, media)), in DuckDB."""
    m = rec.manifest
    con = connect()
    try:
        install_sql(con)
        load_inputs(con, export, ledger, max(now, m.cutoff), watermark=watermark)
        later_failures(con, policy, m.cutoff, now)
        third_party_now(con, policy, m.cutoff, now)
        snapshot_view(con, rec, "item_id, user_id, tagged, bucket, media, faces_blurred, text")
        con.execute(f"""CREATE TEMP TABLE unmentionable AS SELECT DISTINCT lower(nfc_normalize(u.handle)) AS h
            FROM users u WHERE u.handle IS NOT NULL AND u.user_id IN ({unmentionable_sql(policy, m)})""")
        con.execute(f"CREATE TEMP TABLE all_handles AS {handles_sql('users')}")
        con.execute(f"CREATE TEMP TABLE decided AS {Compiler(policy, m.cutoff).decisions_sql()}")
        texts = "(SELECT s.item_id, s.user_id, s.text, u.country FROM snap s LEFT JOIN users u ON u.user_id = s.user_id)"
        checks = checks_sql(policy, m, now) + text_checks(con, texts, m)
        rows = [row for q in checks for row in con.execute(q).fetchall()]
        total = con.execute("SELECT count(*) FROM snap").fetchall()[0][0]
        media = con.execute("SELECT item_id, user_id, media FROM snap WHERE media IS NOT NULL").fetchall()
    finally:
        con.close()
    return int(total), rows, media
