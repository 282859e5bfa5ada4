"""Where consentry is asked to write: checked before any work is done.

A read-only mount, a folder of another user or a pseudo file system (/proc)
used to end a run after minutes of work in DuckDB's IOException or a lock
file's traceback; a probe file is the only test that is true for all of them
(permissions alone say nothing for root, or for read-only mounts)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError

__all__ = ["check_writable"]


FIX = "choose a folder this user can write to"


def check_writable(folder: Path, *, where: str, create: bool = False) -> None:
    """Refuse, naming `where`, unless a file can be created (and removed) in
    `folder`. A missing folder is refused, or with `create` made first."""
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create {folder} ({_why(exc)})", where=where, fix=FIX) from None
    elif not folder.is_dir():
        raise InputError("its folder does not exist", where=where, fix="create the folder first")
    probe = folder / f".consentry-probe-{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write in {folder} ({_why(exc)})", where=where, fix=FIX) from None


def _why(exc: OSError) -> str:
    return (exc.strerror or "refused").lower()
