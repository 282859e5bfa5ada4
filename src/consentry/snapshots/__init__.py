"""Training snapshots on Delta Lake: build, purge, verify, lineage."""

from . import tables  # noqa: F401  (registers the tables on the shared metadata)
from .build import build, default_location
from .manifest import Manifest
from .registry import ModelRecord, Registry, SnapshotError, SnapshotRecord

__all__ = ["Manifest", "ModelRecord", "Registry", "SnapshotError", "SnapshotRecord", "build", "default_location"]
