"""`recover`: put right whatever a crashed build or purge left, before any
command that touches snapshots goes on (see recovery.py for the protocol)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..ledger import Ledger
from .purge import finish_pending
from .recovery import (
    claimed_builds, forget_stage, ledger_identity, lock_if_free, lock_path, noted_stages, read_intent, roots,
    sweep_staging,
)
from .registry import Registry


def recover(ledger: Ledger, *, extra_roots: list[Path] | None = None, say: Callable[[str], None] = lambda _: None) -> list[str]:
    """Finish or undo interrupted builds and purges of this ledger's snapshots.
    Returns what was done, in words. Snapshots another process is working on
    (their lock is held) are left to it."""
    registry = Registry(ledger)
    records = registry.all()
    claimed = claimed_builds(records)
    done: list[str] = []
    for root in roots([*(extra_roots or []), *(Path(r.uri).parent.parent for r in records)]):
        done += sweep_staging(root, claimed, ledger_identity(ledger.url))
    for build_id, stage in noted_stages().items():
        if not stage.exists():
            forget_stage(build_id)
    for rec in records:
        folder = Path(rec.uri).parent
        if read_intent(folder) is None:
            continue
        with lock_if_free(lock_path(folder)) as free:
            if free:
                what = finish_pending(registry, rec)
                if what:
                    done.append(f"{rec.name}: {what} a purge that a crash interrupted")
    for line in done:
        say(line)
    return done
