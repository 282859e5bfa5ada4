"""Which models were trained on which snapshot, and where a person's data is
or was: so a team knows when retraining or unlearning is due."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime

from .. import config
from ..ledger import Ledger
from .registry import ModelRecord, Registry, SnapshotError, SnapshotRecord


@dataclass(frozen=True)
class SnapshotImpact:
    snapshot: str
    built_at: datetime
    rows_now: int  # the person's own rows still in it
    purged: list[dict] = field(default_factory=list)  # purged_people rows for this snapshot
    models: list[ModelRecord] = field(default_factory=list)  # trained on it while the person's rows were there
    tagged_now: int = 0  # rows of others that tag the person (photos that show them) still in it

    @property
    def held(self) -> bool:
        return self.rows_now > 0 or self.tagged_now > 0 or bool(self.purged)


def rows_of(rec: SnapshotRecord, user_id: str) -> tuple[int, int]:
    """The person's own rows in a snapshot now, and the rows of others that tag
    them (a photo that shows them is their data too: counting only their own
    rows, `impact` said "in no snapshot" of someone shown in two photos of one).
    Tags live in any bucket, so every file is read, but only its two columns."""
    import duckdb
    from deltalake import DeltaTable

    files = DeltaTable(rec.uri).file_uris()
    if not files:
        return 0, 0
    con = duckdb.connect()
    try:
        own, tagged = con.execute(
            f"SELECT count(*) FILTER (WHERE user_id = $u), count(*) FILTER (WHERE user_id <> $u AND list_contains(tagged, $u)) "
            f"FROM read_parquet({files!r})", {"u": user_id}).fetchall()[0]
        return int(own), int(tagged)
    finally:
        con.close()


def impact(ledger: Ledger, user_id: str) -> list[SnapshotImpact]:
    registry = Registry(ledger)
    purged = registry.purged_for(user_id)
    out = []
    for rec in registry.all():
        mine = [p for p in purged if p["snapshot"] == rec.name]
        rows, tagged = rows_of(rec, user_id) if os.path.isdir(rec.uri) else (0, 0)
        if not rows and not tagged and not mine:
            continue
        last_purge = max((p["purged_at"] for p in mine), default=None)
        models = [
            mod for mod in registry.models(rec.name)
            if rows or tagged or (last_purge is not None and mod.registered_at < last_purge)
        ]
        out.append(SnapshotImpact(rec.name, rec.manifest.built_at, rows, mine, models, tagged))
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
