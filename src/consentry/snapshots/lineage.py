"""Which models were trained on which snapshot, and where a person's data is
or was: so a team knows when retraining or unlearning is due."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .. import config
from ..ledger import Ledger
from .ondisk import changed_fix, drift, folder_of, require_as_recorded, unreadable
from .people_index import counts as people_counts
from .people_index import rows_of  # noqa: F401 - where benchmarks/impact.py and users' code found it
from .recovery import read_intent
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


@dataclass(frozen=True)
class UncheckedSnapshot:
    """A snapshot whose table could not be read (moved, deleted): whether it holds
    the person's rows is unknown, and must be said, not left out."""

    snapshot: str
    built_at: datetime
    path: str  # the snapshot's folder, where the registry says it is
    why: str  # "its folder is missing at PATH", ...
    purged: list[dict] = field(default_factory=list)  # purged_people rows for this snapshot (known from the ledger)
    models: list[ModelRecord] = field(default_factory=list)  # every model trained on it: any may have seen their rows
    fix: str = ""  # what to do about it, in words


class Impact(list[SnapshotImpact]):
    """The snapshots that hold or held the person's data (a list, as before), and beside it:

    - `unchecked`: the snapshots that could not be read, so that none is left out silently;
    - `user_known`: whether the id is a user of an export the snapshots were built from,
      or has events in the ledger (None when not asked, `check_user`, or no export could be read)."""

    def __init__(self, found: Iterable[SnapshotImpact] = (), unchecked: Iterable[UncheckedSnapshot] = (),
                 user_known: bool | None = None, exports: Iterable[str] = ()) -> None:
        super().__init__(found)
        self.unchecked = list(unchecked)
        self.user_known = user_known
        self.exports = list(exports)  # the exports read to tell


def impact(ledger: Ledger, user_id: str, *, check_user: bool = False) -> Impact:
    """Where the person's data is or was. A snapshot whose table cannot be read is
    in `.unchecked`, never left out. `check_user`: when nothing is found, read the
    users of the exports the snapshots were built from (and the ledger) to tell an
    id that is nobody's from a person with nothing in any snapshot (`.user_known`)."""
    registry = Registry(ledger)
    purged = registry.purged_for(user_id)
    out, unchecked = [], []
    for rec in registry.all():
        mine = [p for p in purged if p["snapshot"] == rec.name]
        if read_intent(folder_of(rec)) is not None:
            # A purge under way, or killed after its commit and before its record: the table's latest
            # version lacks the rows, but older versions and the photos still hold them, no purge is
            # recorded and no model flagged yet. "No snapshot holds their rows" would be false.
            unchecked.append(UncheckedSnapshot(
                rec.name, rec.manifest.built_at, str(folder_of(rec)),
                "a purge of it is under way or was interrupted: rows it removes may still be on disk, and it is "
                "not recorded yet", mine, registry.models(rec.name),
                f"wait for the purge, or finish it: `consentry snapshot purge {rec.name}` (or `consentry snapshot list`)"))
            continue
        # Read once: only a table that fails to read is asked why (every /me view comes here, per snapshot).
        try:
            from deltalake import DeltaTable

            dt = DeltaTable(rec.uri)  # one read of its log for the rows and the drift (every /me view comes here)
            rows, tagged = people_counts(rec, user_id, dt)
        except Exception:
            if (why := unreadable(rec)) is None:
                raise
            unchecked.append(UncheckedSnapshot(rec.name, rec.manifest.built_at, str(folder_of(rec)), why, mine,
                                               registry.models(rec.name), f"put its folder back at {folder_of(rec)}"))
            continue
        if (d := drift(rec, dt)) is not None and d.outside:
            # Rows another tool wrote are no answer: what the table holds is not what consentry built and purged.
            unchecked.append(UncheckedSnapshot(rec.name, rec.manifest.built_at, str(folder_of(rec)), d.what(), mine,
                                               registry.models(rec.name), changed_fix(rec)))
            continue
        if not rows and not tagged and not mine:
            continue
        # A model saw the person's rows if they are there now, or a purge of them came after the version it read.
        models = [
            mod for mod in registry.models(rec.name)
            if rows or tagged or any(p["table_version"] is None or p["table_version"] > mod.table_version for p in mine)
        ]
        out.append(SnapshotImpact(rec.name, rec.manifest.built_at, rows, mine, models, tagged))
    if out or purged:
        known, exports = True, []
    else:
        known, exports = _known(ledger, registry, user_id) if check_user else (None, [])
    return Impact(out, unchecked, known, exports)


def _known(ledger: Ledger, registry: Registry, user_id: str) -> tuple[bool | None, list[str]]:
    """Whether `user_id` is anyone consentry knows: a user in an export a snapshot was
    built from, or someone with events in the ledger. None when no export could be read."""
    if ledger.state(user_id) is not None:
        return True, []
    from ..engine.duck import connect
    from ..sources import Export

    exports = sorted({rec.manifest.export for rec in registry.all()})
    read = []
    for where in exports:
        con = connect()
        try:
            Export(where).register(con)  # a folder that is gone raises, and tells nothing
            if con.execute("SELECT count(*) FROM users WHERE user_id = ?", [user_id]).fetchall()[0][0]:
                return True, [where]
            read.append(where)
        except Exception:  # noqa: BLE001, S112 - an export that cannot be read here tells nothing either way
            continue
        finally:
            con.close()
    return (False, read) if read else (None, [])


def register_model(
    ledger: Ledger, name: str, snapshot: str, *, mlflow_run: str | None = None, actor: str | None = None,
    version: int | None = None,
) -> ModelRecord:
    """Record that model `name` was trained on `snapshot` as consentry recorded it,
    or as it was at table `version` (what the training read: `DeltaTable(uri).version()`
    when it started), when a purge changed it since. A model is flagged by the
    purges after the version it saw, so one registered after a purge but trained
    before it is flagged. A snapshot that is missing, or whose table is not at the
    Delta version the manifest records (changed outside consentry, or a purge not
    recorded yet), is refused: the record would name rows and a version the model
    never saw."""
    registry = Registry(ledger)
    rec = registry.require(snapshot)
    require_as_recorded(rec, doing=f"registering model '{name}'")
    if mlflow_run:
        log_to_mlflow(rec, mlflow_run)
    return registry.register_model(name, rec, mlflow_run=mlflow_run, actor=actor, version=version)


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
