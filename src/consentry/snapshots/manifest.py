"""What a snapshot holds and how it came to be: written into the Delta table's
commit metadata and beside it as manifest.json."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from .. import __version__


class Purge(BaseModel):
    at: datetime
    from_watermark: int
    to_watermark: int
    people: int
    rows_removed: int
    files_removed: int
    table_version: int
    counts: dict[str, int] = Field(default_factory=dict)
    #: The purge's intent (recovery.py): how a repeated completion knows it is recorded. A purge may move no
    #: watermark (rows that left because the export deleted them, not because of an event).
    intent: str | None = None


class Manifest(BaseModel):
    """What a snapshot is and how it was made: policy, cut-off, ledger watermark, counts,
    transforms and every purge since; written beside the table and kept in the ledger."""

    name: str
    policy: str
    policy_hash: str
    transforms_enabled: dict[str, bool]
    policy_document: dict = Field(default_factory=dict, description="the whole policy, so purges apply the same rules")
    cutoff: datetime
    watermark: int = Field(description="the last ledger seq read: every event <= it was applied")
    built_at: datetime
    export: str
    code_version: str = __version__
    buckets: int
    rows: int
    rows_built: int
    digest: str
    decisions: dict[str, int] = Field(description="items per reason at the cut-off")
    excluded_at_build: dict[str, int] = Field(
        default_factory=dict,
        description="decided eligible but left out: objections etc. received after the cut-off and before the build, "
        "objections by people without an account, images that could not be copied safely",
    )
    transforms: dict[str, int] = Field(default_factory=dict, description="rows or images each transform changed")
    purges: list[Purge] = Field(default_factory=list)
    table_version: int = 0
    build_id: str | None = Field(default=None, description="names the staging folder it was built in (crash recovery)")

    def dumps(self) -> str:
        return self.model_dump_json(indent=2)


def write_json(folder: Path, manifest: Manifest) -> None:
    tmp = folder / ".manifest.json.tmp"
    tmp.write_text(manifest.dumps() + "\n")
    os.replace(tmp, folder / "manifest.json")


def content_digest(folder: Path) -> str:
    """SHA-256 over every data file and image now in the snapshot (by relative
    path and content), so two snapshots with equal digests hold the same bytes."""
    from deltalake import DeltaTable

    table = folder / "table"
    files = sorted(Path(u.removeprefix("file://")) for u in DeltaTable(str(table)).file_uris())
    media = sorted((folder / "media").rglob("*")) if (folder / "media").is_dir() else []
    outer = hashlib.sha256()
    for path in [*files, *(m for m in media if m.is_file())]:
        inner = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                inner.update(chunk)
        outer.update(f"{path.relative_to(folder)}\0{inner.hexdigest()}\n".encode())
    return "sha256:" + outer.hexdigest()


def loads(text: str) -> Manifest:
    return Manifest.model_validate(json.loads(text))
