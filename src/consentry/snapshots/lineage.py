"""Which models were trained on which snapshot, and where a person's data is
or was: so a team knows when retraining or unlearning is due."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime

from .. import config
from ..ledger import Ledger
from .registry import ModelRecord, Registry, SnapshotError, SnapshotRecord
from .shared import bucket_of


@dataclass(frozen=True)
class SnapshotImpact:
    snapshot: str
    built_at: datetime
    rows_now: int  # the person's rows still in it
    purged: list[dict] = field(default_factory=list)  # purged_people rows for this snapshot
    models: list[ModelRecord] = field(default_factory=list)  # trained on it while the person's rows were there

    @property
    def held(self) -> bool:
        return self.rows_now > 0 or bool(self.purged)


def rows_of(rec: SnapshotRecord, user_id: str) -> int:
    """The person's rows in a snapshot now: only their bucket's files are read."""
    import duckdb
    from deltalake import DeltaTable

    bucket = bucket_of(user_id, rec.manifest.buckets)
    files = DeltaTable(rec.uri).file_uris(file_pruning_predicate=[("bucket", "=", str(bucket))])
    if not files:
        return 0
    con = duckdb.connect()
    try:
        return int(con.execute(f"SELECT count(*) FROM read_parquet({files!r}) WHERE user_id = ?", [user_id]).fetchall()[0][0])
    finally:
        con.close()


def impact(ledger: Ledger, user_id: str) -> list[SnapshotImpact]:
    registry = Registry(ledger)
    purged = registry.purged_for(user_id)
    out = []
    for rec in registry.all():
        mine = [p for p in purged if p["snapshot"] == rec.name]
        rows = rows_of(rec, user_id) if os.path.isdir(rec.uri) else 0
        if not rows and not mine:
            continue
        last_purge = max((p["purged_at"] for p in mine), default=None)
        models = [
            mod for mod in registry.models(rec.name)
            if rows or (last_purge is not None and mod.registered_at < last_purge)
        ]
        out.append(SnapshotImpact(rec.name, rec.manifest.built_at, rows, mine, models))
    return out


def register_model(
    ledger: Ledger, name: str, snapshot: str, *, mlflow_run: str | None = None, actor: str | None = None
) -> ModelRecord:
    registry = Registry(ledger)
    rec = registry.require(snapshot)
    if mlflow_run:
        log_to_mlflow(rec, mlflow_run)
    return registry.register_model(name, rec, mlflow_run=mlflow_run, actor=actor)


def log_to_mlflow(rec: SnapshotRecord, run_id: str) -> None:
    """Record the snapshot as the run's dataset input, with its digest. MLflow
    is an optional extra (pip install 'consentry[mlflow]')."""
    try:
        import mlflow
        from mlflow.data.meta_dataset import MetaDataset
    except ImportError:
        raise SnapshotError("--mlflow-run needs MLflow: pip install 'consentry[mlflow]'") from None
    uri = mlflow.get_tracking_uri()
    if uri.startswith("file:") and not config.mlflow_file_store_allowed():
        raise SnapshotError(
            f"MLflow's tracking URI is a file store ({uri}); set MLFLOW_TRACKING_URI to a database "
            "(e.g. sqlite:///mlflow.db) or a server, or set CONSENTRY_ALLOW_MLFLOW_FILE_STORE=1"
        )
    m = rec.manifest
    dataset = MetaDataset(source=mlflow.data.dataset_source_registry.resolve(rec.uri), name=m.name, digest=m.digest[:36])
    client = mlflow.MlflowClient()
    from mlflow.entities import DatasetInput, InputTag

    client.log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(), [InputTag("consentry.table_version", str(m.table_version))])])
