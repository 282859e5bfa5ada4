"""Whether a snapshot is on disk where, and as, consentry recorded it.

The registry (in the ledger's database) names each snapshot's table by its
path. A folder moved or deleted by hand, or a Delta table written to by
another tool, no longer matches what the manifest, the audit log and the
models trained on it say. Every command that reads a snapshot asks here
first, so it can say so by name and path instead of failing in deltalake or
answering from a table that is not the one recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path

from ..errors import SnapshotError
from ..words import count
from .registry import SnapshotRecord

#: How a folder is found again: put back, or the registry told where it went (`snapshot move`).
MOVE_BACK = "or, if it was moved on purpose, tell consentry where it is now: `consentry snapshot move NAME FOLDER`"


def folder_of(rec: SnapshotRecord) -> Path:
    return Path(rec.uri).parent


def unreadable(rec: SnapshotRecord) -> str | None:
    """Why the snapshot's table cannot be read where the registry says it is, in
    words ("its folder is missing at ..."); None when it can."""
    folder, table = folder_of(rec), Path(rec.uri)
    if not folder.is_dir():
        return f"its folder is missing at {folder} (moved or deleted)"
    if not (table / "_delta_log").is_dir():
        return f"its folder {folder} holds no Delta table at {table}"
    from deltalake import DeltaTable

    try:
        dt = DeltaTable(rec.uri)
    except Exception as exc:  # noqa: BLE001 - deltalake's errors name no class of their own to catch
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"its Delta table at {table} cannot be read: {first}"
    # The log can be whole while a data file it names is gone (deleted by hand, a partial copy): every
    # reader of the rows would then fail on it, verify and purge with a traceback.
    gone = [u for u in dt.file_uris() if u.startswith(("file://", "/")) and not os.path.exists(u.removeprefix("file://"))]
    if gone:
        first = os.path.relpath(gone[0].removeprefix("file://"), table)
        return (f"its Delta table at {table} names {len(gone):,} data file{'s' if len(gone) != 1 else ''} that "
                f"{'are' if len(gone) != 1 else 'is'} not on disk (such as {first}): deleted or never copied")
    return None


def unreadable_error(rec: SnapshotRecord, why: str) -> SnapshotError:
    folder = folder_of(rec)
    if not folder.is_dir():
        fix = f"move the snapshot's folder back to {folder}, {MOVE_BACK.replace('NAME', rec.name)}"
    else:
        fix = (f"put the snapshot's folder back as it was built (table/, media/ and manifest.json in {folder}), "
               f"from where it was moved or from a backup, {MOVE_BACK.replace('NAME', rec.name)}")
    return SnapshotError(f"snapshot '{rec.name}': {why}\n  fix: {fix}")  # `why` names the path


def require_readable(rec: SnapshotRecord) -> None:
    """Refuse, by name, path and fix, a snapshot whose table is not where it was recorded."""
    if (why := unreadable(rec)) is not None:
        raise unreadable_error(rec, why)


@dataclass(frozen=True)
class Drift:
    """A table whose Delta version is not the one consentry recorded for it."""

    version: int  # now
    recorded: int  # in the manifest
    rows: int  # now, by the Delta log
    recorded_rows: int
    foreign: list[str] = field(default_factory=list)  # commits consentry did not make, described
    pending: bool = False  # a purge's commit that its record does not name yet (running, or interrupted)

    @property
    def outside(self) -> bool:
        """Changed outside consentry: the manifest no longer says what the table holds."""
        return bool(self.foreign)

    def what(self, rows: int | None = None) -> str:
        """`rows`: as counted by reading the table (default: by its Delta log)."""
        return (f"its table was changed outside consentry: it is at Delta version {self.version} with "
                f"{count(self.rows if rows is None else rows, 'row', 'rows')}, but consentry recorded version "
                f"{self.recorded} with {count(self.recorded_rows, 'row', 'rows')} ({'; '.join(self.foreign)})")

    def describe(self, rec: SnapshotRecord) -> str:
        return f"snapshot '{rec.name}' ({folder_of(rec)}): {self.what()}"

    def fix(self, rec: SnapshotRecord) -> str:
        return changed_fix(rec)

    def error(self, rec: SnapshotRecord) -> SnapshotError:
        return SnapshotError(f"{self.describe(rec)}\n  fix: {self.fix(rec)}")


def changed_fix(rec: SnapshotRecord) -> str:
    return (f"find out who wrote to {rec.uri} (deltalake: DeltaTable(path).history()); its manifest, audit log and "
            "lineage no longer describe it and purges cannot vouch for it, so do not train on it: build a new "
            "snapshot with `consentry snapshot build` and train on that")


def _ours(entry: dict) -> str | None:
    """'purge' or 'build' for a commit consentry made, 'vacuum' for one that only
    deleted unreferenced files (a purge's, or a discarded purge's clean-up); None otherwise."""
    for key in ("purge", "build"):
        if f"consentry.{key}" in entry or f"consentry.{key}" in str(entry.get("userMetadata") or ""):
            return key
    if str(entry.get("operation", "")).upper() in ("VACUUM START", "VACUUM END"):
        return "vacuum"
    return None


def drift(rec: SnapshotRecord, dt=None) -> Drift | None:  # noqa: ANN001 - a DeltaTable the caller opened already
    """None when the table is at the version consentry recorded, or ahead of it
    only by vacuums (they change no row); else what changed. The table must be
    readable (`require_readable`)."""
    from deltalake import DeltaTable

    dt = dt if dt is not None else DeltaTable(rec.uri)
    version, recorded = dt.version(), rec.manifest.table_version
    if version == recorded:
        return None
    foreign: list[str] = []
    pending = False
    if version < recorded:
        foreign.append(f"its version went back from {recorded} to {version}: the table was replaced")
    else:
        for entry in sorted(dt.history(version - recorded), key=lambda e: int(e.get("version", 0))):
            kind = _ours(entry)
            if kind == "purge":
                pending = True
            elif kind is None:
                what = str(entry.get("operation") or "a commit")
                params = entry.get("operationParameters") or {}
                mode = params.get("mode") if isinstance(params, dict) else None
                foreign.append(f"version {entry.get('version')}: {what}{f' ({mode})' if mode else ''}, by "
                               f"{entry.get('clientVersion') or entry.get('engineInfo') or 'an unknown writer'}")
            elif kind == "build":
                foreign.append(f"version {entry.get('version')}: a second build commit")
    if not foreign and not pending:
        return None
    rows = sum(int(n or 0) for n in dt.get_add_actions(flatten=True).column("num_records").to_pylist())
    return Drift(version, recorded, rows, rec.manifest.rows, foreign, pending)


def refuse_unless_ours(rec: SnapshotRecord) -> None:
    """For a purge: the table must be there and hold only consentry's commits. A
    purge's own commit not yet recorded is fine (the purge finishes it first);
    another tool's is not: the purge would record its rows as consentry's."""
    require_readable(rec)
    d = drift(rec)
    if d is not None and d.outside:
        raise d.error(rec)


def require_as_recorded(rec: SnapshotRecord, *, doing: str) -> None:
    """Refuse a snapshot that is missing or not at the version consentry recorded."""
    require_readable(rec)
    d = drift(rec)
    if d is None:
        return
    if d.outside:
        raise d.error(rec)
    raise SnapshotError(
        f"snapshot '{rec.name}' ({folder_of(rec)}): a purge committed Delta version {d.version} but has not recorded "
        f"it yet (consentry recorded version {d.recorded}), so {doing} would name a version that is not on disk\n"
        f"  fix: wait for the running purge to finish, or run `consentry snapshot purge {rec.name}` to finish one a "
        "crash interrupted, then try again")


def on_disk(rec: SnapshotRecord) -> tuple[str, str | None]:
    """Whether a snapshot is on disk as consentry recorded it: (a short state for
    a list: ok, MISSING, UNREADABLE, CHANGED OUTSIDE CONSENTRY or "purge not
    recorded yet"; the problem with its fix, or None)."""
    if (why := unreadable(rec)) is not None:
        return "MISSING" if not folder_of(rec).is_dir() else "UNREADABLE", str(unreadable_error(rec, why))
    d = drift(rec)
    if d is not None and d.outside:
        return "CHANGED OUTSIDE CONSENTRY", f"{d.describe(rec)}\n  fix: {d.fix(rec)}"
    return ("purge not recorded yet" if d is not None else "ok"), None
