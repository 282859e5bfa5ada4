"""Training snapshots on Delta Lake: build, purge, verify, lineage."""

from . import tables  # noqa: F401  (registers the tables on the shared metadata)
from .build import build, default_location
from .lineage import Impact, UncheckedSnapshot, impact, register_model
from .manifest import Manifest
from .ondisk import on_disk
from .purge import PurgeResult, purge
from .receipts import issue as issue_receipts
from .receipts import verify_receipt
from .redact import find_pii, redact_texts
from .relocate import move
from .registry import Backlog, ModelRecord, Registry, SnapshotError, SnapshotRecord, changes_since, purge_backlog
from .repair import recover
from .verify import verify

__all__ = [
    "Backlog",
    "Impact",
    "Manifest",
    "ModelRecord",
    "PurgeResult",
    "Registry",
    "SnapshotError",
    "SnapshotRecord",
    "UncheckedSnapshot",
    "build",
    "changes_since",
    "default_location",
    "find_pii",
    "impact",
    "issue_receipts",
    "move",
    "on_disk",
    "purge",
    "purge_backlog",
    "recover",
    "redact_texts",
    "register_model",
    "verify",
    "verify_receipt",
]
