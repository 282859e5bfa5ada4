"""`move`: a snapshot's folder to a new place, or the registry told where it
went. Every command finds a snapshot by the path recorded at its build; a
folder moved by hand (new storage, a renamed volume) left each of them saying
"put its folder back". The move is recorded in the audit log like a build."""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from pathlib import Path

from ..errors import SnapshotError
from ..ledger import Ledger
from .manifest import content_digest, loads
from .ondisk import folder_of
from .registry import Registry, SnapshotRecord
from .shared import snapshot_lock


def move(ledger: Ledger, name: str, to: str | Path) -> tuple[Path, Path, bool]:
    """Move snapshot `name`'s folder to `to`, or, when it was already moved
    there by hand, take it where it is: it must be this very snapshot (its
    manifest names it and its build, and its files' digest is the recorded
    one). Returns (from, to, moved: whether this call moved the files)."""
    registry = Registry(ledger)
    rec = registry.require(name)
    old = folder_of(rec)
    if "://" in rec.uri:
        raise _refused(f"snapshot '{name}' is in an object store ({rec.uri}); `move` moves a local folder",
                       "copy it with the store's own tools, then build or register it there")
    new = Path(to).expanduser().resolve()
    if new == old.resolve():
        raise _refused(f"snapshot '{name}' is already at {old}", "give the folder it should move to")
    with (snapshot_lock(old) if old.parent.is_dir() else nullcontext()), snapshot_lock(new):  # no build or purge meanwhile
        moved = False
        if old.is_dir():
            if new.exists():
                raise _refused(f"{new} already exists; snapshot '{name}' is still at {old}, so nothing was moved",
                               "give a folder that does not exist yet (it is created)")
            new.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(old), str(new))  # a rename on one filesystem; a copy, then a delete, across two
            moved = True
        else:
            _same_snapshot(rec, new)
        registry.relocate(name, str(new / "table"), str(rec.uri))
    return old, new, moved


def _same_snapshot(rec: SnapshotRecord, folder: Path) -> None:
    """Refuse a folder that is not this snapshot as recorded."""
    where = f"snapshot '{rec.name}' is not at {folder_of(rec)} any more, and {folder}"
    if not (folder / "manifest.json").is_file() or not (folder / "table" / "_delta_log").is_dir():
        raise _refused(f"{where} holds no snapshot (no manifest.json and table/)",
                       "give the folder the snapshot was moved to (the one with manifest.json, table/ and media/)")
    found = loads((folder / "manifest.json").read_text(encoding="utf-8"))
    m = rec.manifest
    if (found.name, found.build_id) != (m.name, m.build_id):
        raise _refused(f"{where} holds snapshot '{found.name}' of another build, not this one",
                       "give the folder this snapshot was moved to")
    if (digest := content_digest(folder)) != m.digest:
        raise _refused(f"{where} holds its files changed: their digest is {digest}, but consentry recorded {m.digest}",
                       "put back the snapshot's files as they were (from a backup), then move it")


def _refused(what: str, fix: str) -> SnapshotError:
    return SnapshotError(f"{what}\n  fix: {fix}")  # as `ondisk` words its refusals
