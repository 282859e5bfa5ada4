"""Crash recovery: the registry and the folders agree after any crash.

A purge is a recoverable protocol. Before its Delta commit it writes an
intent (`.purge-intent.json` in the snapshot folder, fsynced) naming what it
removes: the people, the image files, the watermark it reaches. The commit
carries the intent's id in its metadata. Whoever next touches the snapshot
(a purge, a build, `verify`, `snapshot list`) finds an intent left behind and
either completes it, when its commit is in the table's history (images
deleted, vacuum, record, model flags), or discards it, when the commit never
happened (nothing changed; the next purge does the work again).

A build registers its snapshot in the database first, then renames its
finished staging folder into place. A crash between the two leaves a
registered snapshot whose folder is still staged: it is renamed into place.
A staging folder whose builder died (its lock is free) and that no registered
snapshot claims is deleted: it may hold re-encoded photos of people.

`failpoint()` lets the tests SIGKILL a real process between any two writes.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from .. import config

INTENT = ".purge-intent.json"
BUILD_ID = ".consentry-build-id"


def failpoint(name: str) -> None:
    """Kill this process here when the environment names this point: how the
    crash tests prove that every step between two writes recovers. `NAME:int`
    sends SIGINT instead (Ctrl-C at that point)."""
    point = config.failpoint()
    if point == name:
        os.kill(os.getpid(), signal.SIGKILL)
    elif point == f"{name}:int":
        os.kill(os.getpid(), signal.SIGINT)


# -- durable little files -----------------------------------------------------------------


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, text: str) -> None:
    """Write, fsync, rename into place, fsync the folder: on disk before this returns."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_durably(path: Path) -> None:
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


# -- purge intents ------------------------------------------------------------------------


def new_intent(**facts: object) -> dict:
    return {"id": secrets.token_hex(8), "written_at": datetime.now(UTC).isoformat(), **facts}


def write_intent(folder: Path, intent: dict) -> None:
    write_durably(folder / INTENT, json.dumps(intent, sort_keys=True))


def read_intent(folder: Path) -> dict | None:
    try:
        return json.loads((folder / INTENT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def clear_intent(folder: Path) -> None:
    remove_durably(folder / INTENT)


def committed_at(table_uri: str, intent_id: str, after_version: int) -> tuple[int, datetime] | None:
    """(version, time) of the Delta commit that carries this intent, if any."""
    from deltalake import DeltaTable

    dt = DeltaTable(table_uri)
    if dt.version() <= after_version:
        return None
    for entry in dt.history(dt.version() - after_version):
        meta = entry.get("consentry.purge") or (entry.get("userMetadata") or "")
        if isinstance(meta, str) and intent_id in meta:
            version = int(entry.get("version", dt.version()))
            ts = entry.get("timestamp")
            at = datetime.fromtimestamp(ts / 1000, UTC) if isinstance(ts, (int, float)) else datetime.now(UTC)
            return version, at
    return None


# -- staging folders ------------------------------------------------------------------------


def stage_name(final: Path, build_id: str) -> str:
    return f".{final.name}.building-{os.getpid()}-{build_id}"


def stages_of(final: Path) -> list[Path]:
    if not final.parent.is_dir():
        return []
    return sorted(final.parent.glob(f".{final.name}.building-*"))


@contextmanager
def lock_if_free(lock_path: Path) -> Iterator[bool]:
    """Take an flock without waiting: True when no live process holds it."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def lock_path(final: Path) -> Path:
    return final.parent / f".{final.name}.lock"


def _index() -> Path:
    """Where builds note their staging folders (one file each, named by the build
    id), so a stage under any --out root is found after a crash."""
    return config.home() / "snapshots" / ".staging"


def note_stage(stage: Path, build_id: str) -> None:
    _index().mkdir(parents=True, exist_ok=True)
    write_durably(_index() / build_id, str(stage.absolute()))


def forget_stage(build_id: str) -> None:
    (_index() / build_id).unlink(missing_ok=True)


def noted_stages() -> dict[str, Path]:
    """build id -> staging folder, for every build that has not said it is done."""
    if not _index().is_dir():
        return {}
    out = {}
    for f in _index().iterdir():
        if not f.name.startswith("."):
            try:
                out[f.name] = Path(f.read_text(encoding="utf-8").strip())
            except OSError:
                continue
    return out


def roots(extra: list[Path]) -> list[Path]:
    """The folders that hold snapshots: the default root, every registered
    snapshot's, and every root a build noted a staging folder in."""
    found = {config.home() / "snapshots", *extra, *(p.parent for p in noted_stages().values())}
    return sorted(p for p in found if p.is_dir())


def mark_stage(stage: Path, build_id: str, ledger_id: str) -> None:
    """Which build and which ledger a staging folder belongs to."""
    write_durably(stage / BUILD_ID, f"{build_id}\n{ledger_id}\n")


def _marker(stage: Path) -> tuple[str | None, str | None]:
    try:
        lines = (stage / BUILD_ID).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None, None
    return (lines[0] if lines else None), (lines[1] if len(lines) > 1 else None)


def ledger_identity(url: str) -> str:
    """Which ledger a staging folder belongs to (its URL, never a password)."""
    from ..ledger import redact_url

    return redact_url(url)


def claimed_builds(records: list) -> dict[str, str]:  # noqa: ANN001 - SnapshotRecords
    """Snapshot folder -> the build id its registration names."""
    return {str(Path(r.uri).parent): r.manifest.build_id for r in records if r.manifest.build_id}


def sweep_staging(root: Path, claimed: dict[str, str], ledger_id: str) -> list[str]:
    """Staging folders in `root` whose builder is gone: renamed into place when a
    registered snapshot claims them (its build id), deleted otherwise. A stage
    whose snapshot's lock is held belongs to a running build and is left alone,
    and so is one another ledger's build made (it is that ledger's to finish)."""
    done = []
    for stage in sorted(root.glob(".*.building-*")):
        if not stage.is_dir():
            continue
        name = stage.name[1:].split(".building-", 1)[0]
        final = root / name
        with lock_if_free(lock_path(final)) as free:
            if not free:
                continue
            build_id, owner = _marker(stage)
            if owner is not None and owner != ledger_id:
                continue
            if build_id is not None and claimed.get(str(final)) == build_id and not final.exists():
                os.rename(stage, final)
                fsync_dir(root)
                done.append(f"finished the build of {final}")
            else:
                shutil.rmtree(stage, ignore_errors=True)
                done.append(f"removed {stage}, left by a build that did not finish")
    return done
