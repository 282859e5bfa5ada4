"""The snapshots and models a ledger knows about, in the ledger's database."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, update

from ..errors import SnapshotError
from ..ledger import Ledger, chain
from ..timeutil import from_micros, to_micros
from .manifest import Manifest, Purge, loads
from .tables import models, purged_people, snapshot_purges, snapshots

#: A model's name: anything printable (registries name models "team/llm:v2"), as long as the models table holds.
MODEL_NAME_RE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?")


def people_digest(people: Iterable[Mapping]) -> str:
    """What a purge's `snapshot_purged` record holds of the people it removed
    (its `purged_people` rows): the SHA-256 of one canonical line per person
    (user_id, cause, rows, trigger_seq, purged_us), sorted, so `audit verify`
    can tell a person swapped, or a cause, count, triggering event or time
    edited in the table."""
    lines = sorted(
        json.dumps([str(p["user_id"]), str(p["cause"]), int(p["rows"]),
                    None if p.get("trigger_seq") is None else int(p["trigger_seq"]), int(p["purged_us"])],
                   ensure_ascii=False, separators=(",", ":"))
        for p in people)
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class SnapshotRecord:
    name: str
    uri: str
    manifest: Manifest

    @property
    def watermark(self) -> int:
        return self.manifest.watermark


@dataclass(frozen=True)
class ModelRecord:
    name: str
    snapshot: str
    table_version: int
    digest: str
    rows: int
    registered_at: datetime
    mlflow_run: str | None
    rows_purged_since: int  # rows its snapshot lost after the version it was trained on
    #: rows rewritten since for someone's sake (an @mention hidden, an erased id out of `tagged`): the model
    #: saw that person's data in them
    rows_rewritten_since: int = 0

    @property
    def flagged(self) -> bool:
        return self.rows_purged_since > 0 or self.rows_rewritten_since > 0


def rewritten(counts: Mapping[str, int]) -> int:
    """Rows a purge kept but rewrote for someone's sake (its `counts`)."""
    return int(counts.get("mentions_redacted", 0)) + int(counts.get("tagged_ids_removed", 0))


def changes_since(conn, at_us: int | None = None, snapshot: str | None = None) -> dict[str, tuple[int, int]]:  # noqa: ANN001
    """Per model: the rows its snapshot lost, and the rows rewritten for someone's
    sake, in purges after the table version it was trained on (finished by
    `at_us`, if given; of one `snapshot`'s models, if given: a person's page
    asks per snapshot). By version, not by time: a model registered after a
    purge but trained on a version before it saw the rows the purge removed.
    The one home of what flags a model (`ModelRecord.flagged`, the report)."""
    q = select(snapshot_purges.c.snapshot, snapshot_purges.c.table_version, snapshot_purges.c.rows_removed,
               snapshot_purges.c.counts)
    mq = select(models.c.name, models.c.snapshot, models.c.table_version)
    if at_us is not None:
        q = q.where(snapshot_purges.c.finished_us <= at_us)
    if snapshot is not None:
        q, mq = q.where(snapshot_purges.c.snapshot == snapshot), mq.where(models.c.snapshot == snapshot)
    purges: dict[str, list[tuple[int, int, int]]] = {}
    for snap, version, removed, counts in conn.execute(q):
        purges.setdefault(snap, []).append((int(version), int(removed), rewritten(json.loads(counts or "{}"))))
    out = {}
    for name, snap, version in conn.execute(mq):
        later = [(r, w) for v, r, w in purges.get(snap, []) if v > version]
        out[name] = (sum(r for r, _ in later), sum(w for _, w in later))
    return out


@dataclass(frozen=True)
class Backlog:
    """What a snapshot's purges have not applied yet: the ledger events after
    its watermark. An objection among them still has rows in it."""

    snapshot: str
    events: int
    oldest_recorded_at: datetime | None  # when the first of them reached the ledger

    def waiting(self, now: datetime) -> float:
        """Seconds the oldest of them has waited (0 when none)."""
        return 0.0 if self.oldest_recorded_at is None else max(0.0, (now - self.oldest_recorded_at).total_seconds())


def purge_backlog(engine) -> list[Backlog]:  # noqa: ANN001 - a SQLAlchemy engine (a reader)
    """Per snapshot, the events its purges have not applied yet: the lag an
    operator alerts on, since pages promise removal by `--purge-within`."""
    from ..ledger.tables import events, head

    out = []
    with engine.connect() as conn:
        last = int(conn.execute(select(head.c.last_seq).where(head.c.id == 1)).scalar_one())
        for name, wm in conn.execute(select(snapshots.c.name, snapshots.c.watermark).order_by(snapshots.c.name)).all():
            # Sequence numbers run without gaps (the head numbers each stored event), so the count is a
            # subtraction: a scrape stays cheap however far a purge has fallen behind.
            first = conn.execute(select(events.c.recorded_us).where(events.c.seq == wm + 1)).scalar() if last > wm else None
            out.append(Backlog(name, max(0, last - wm), from_micros(first) if first is not None else None))
    return out


class Registry:
    """The snapshots and models the ledger knows: where each table is, its manifest, and
    which models were trained on it (lineage)."""

    def __init__(self, ledger: Ledger) -> None:
        self.engine = ledger.engine
        self.reader = ledger.reader  # reads must not take SQLite's write lock

    def get(self, name: str) -> SnapshotRecord | None:
        with self.reader.connect() as conn:
            row = conn.execute(select(snapshots.c.name, snapshots.c.uri, snapshots.c.manifest).where(snapshots.c.name == name)).first()
        return SnapshotRecord(row[0], row[1], loads(row[2])) if row else None

    def require(self, name: str) -> SnapshotRecord:
        found = self.get(name)
        if found is None:
            known = self.all()
            names = ", ".join(r.name for r in known) or "none yet"
            if Path(name).is_dir():  # a folder given where a name is asked for
                named = next((r.name for r in known if Path(r.uri).parent.resolve() == Path(name).resolve()), None)
                raise SnapshotError(f"'{name}' is a folder; snapshot commands take a snapshot's name" + (
                    f": this folder holds snapshot '{named}'" if named else f" (have: {names})"))
            raise SnapshotError(f"no snapshot named '{name}' in this ledger (have: {names}); build one with `consentry snapshot build`")
        return found

    def all(self) -> list[SnapshotRecord]:
        with self.reader.connect() as conn:
            rows = conn.execute(select(snapshots.c.name, snapshots.c.uri, snapshots.c.manifest).order_by(snapshots.c.built_us)).all()
        return [SnapshotRecord(r[0], r[1], loads(r[2])) for r in rows]

    @staticmethod
    def _values(m: Manifest) -> dict:
        return {
            "policy_name": m.policy, "policy_hash": m.policy_hash, "cutoff_us": to_micros(m.cutoff),
            "watermark": m.watermark, "built_us": to_micros(m.built_at), "rows": m.rows, "rows_built": m.rows_built,
            "digest": m.digest, "table_version": m.table_version, "manifest": m.dumps(),
        }

    def add(self, conn, uri: str, m: Manifest) -> None:  # noqa: ANN001 - a Connection in an open transaction
        conn.execute(insert(snapshots).values(name=m.name, uri=uri, **self._values(m)))
        chain.append(conn, [chain.Record("snapshot_built", {
            "name": m.name, "uri": uri, "policy": m.policy, "policy_hash": m.policy_hash, "cutoff": m.cutoff.isoformat(),
            "watermark": m.watermark, "rows": m.rows, "digest": m.digest, "decisions": m.decisions,
            "excluded_at_build": m.excluded_at_build, "transforms": m.transforms}, subject=m.name)])

    def record_purge(self, m: Manifest, purge: Purge, people: list[dict], started: datetime) -> int:
        """The new state, the purge and who left, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(update(snapshots).where(snapshots.c.name == m.name).values(**self._values(m)))
            pid = conn.execute(
                insert(snapshot_purges).values(
                    snapshot=m.name, started_us=to_micros(started), finished_us=to_micros(purge.at),
                    from_watermark=purge.from_watermark, to_watermark=purge.to_watermark, people=purge.people,
                    rows_removed=purge.rows_removed, files_removed=purge.files_removed,
                    table_version=purge.table_version, counts=json.dumps(purge.counts, sort_keys=True),
                )
            ).inserted_primary_key[0]
            rows = [{**p, "snapshot": m.name, "purge_id": pid, "purged_us": to_micros(purge.at)} for p in people]
            if rows:
                conn.execute(insert(purged_people), rows)
            chain.append(conn, [chain.Record("snapshot_purged", {
                "name": m.name, "purge_id": int(pid), "from_watermark": purge.from_watermark, "to_watermark": purge.to_watermark,
                "people": purge.people, "rows_removed": purge.rows_removed, "files_removed": purge.files_removed,
                "counts": purge.counts, "digest": m.digest, "people_digest": people_digest(rows)}, subject=m.name)])
        return int(pid)

    def remove(self, name: str, *, why: str) -> None:
        """Undo a registration whose folder never came into place (and say why in the audit log)."""
        with self.engine.begin() as conn:
            conn.execute(snapshots.delete().where(snapshots.c.name == name))
            chain.append(conn, [chain.Record("snapshot_unregistered", {"name": name, "why": why}, subject=name)])

    def relocate(self, name: str, uri: str, was: str) -> None:
        """The snapshot's table is now at `uri` (its folder moved: `relocate.move`), recorded in the audit log."""
        with self.engine.begin() as conn:
            conn.execute(update(snapshots).where(snapshots.c.name == name).values(uri=uri))
            chain.append(conn, [chain.Record("snapshot_moved", {"name": name, "from": was, "to": uri}, subject=name)])

    def advance(self, m: Manifest) -> None:
        """A purge that found nothing to remove still moves the watermark."""
        with self.engine.begin() as conn:
            conn.execute(update(snapshots).where(snapshots.c.name == m.name).values(**self._values(m)))
            chain.append(conn, [chain.Record("snapshot_checked", {"name": m.name, "watermark": m.watermark, "rows_removed": 0}, subject=m.name)])

    # -- models ---------------------------------------------------------------------

    def register_model(self, name: str, snap: SnapshotRecord, *, mlflow_run: str | None, actor: str | None,
                       version: int | None = None) -> ModelRecord:
        """`version`: the table version the training read, when the snapshot
        changed since (a purge while it trained); its rows are the build's less
        what the purges up to it removed, its digest is known only for the
        version now."""
        if not MODEL_NAME_RE.fullmatch(name):  # an empty name was registered, and listed as a blank
            raise SnapshotError(f"model name {name!r} is not allowed: give 1 to 128 printable characters, "
                                "with no space at either end (e.g. llm-v1 or team/llm:2024-06)")
        m = snap.manifest
        table_version, digest, rows = m.table_version, m.digest, m.rows
        if version is not None and version != m.table_version:
            if not 0 <= version < m.table_version:
                raise SnapshotError(f"snapshot '{snap.name}' has no version {version}: its table is at version "
                                    f"{m.table_version} now (pass the version the training read, 0 to {m.table_version})")
            table_version, digest = version, f"unknown (version {version}; now {m.table_version}, {m.digest[:23]})"
            rows = m.rows_built - sum(p.rows_removed for p in m.purges if p.table_version <= version)
        with self.engine.begin() as conn:
            if conn.execute(select(models.c.name).where(models.c.name == name)).first():
                raise SnapshotError(f"a model named '{name}' is already registered; models are recorded once, pick a new name")
            conn.execute(
                insert(models).values(
                    name=name, snapshot=snap.name, table_version=table_version, digest=digest[:80], rows=rows,
                    registered_us=to_micros(datetime.now(UTC)), mlflow_run=mlflow_run, actor=actor,
                )
            )
            chain.append(conn, [chain.Record("model_registered", {
                "name": name, "snapshot": snap.name, "table_version": table_version, "digest": digest[:80], "rows": rows,
                "mlflow_run": mlflow_run}, actor, name)])
        return self.model(name)  # type: ignore[return-value]

    def _model_rows(self, where=None, snapshot: str | None = None) -> list[ModelRecord]:  # noqa: ANN001
        q = select(models).order_by(models.c.registered_us)
        if where is not None:
            q = q.where(where)
        with self.reader.connect() as conn:
            rows = conn.execute(q).mappings().all()
            since = changes_since(conn, snapshot=snapshot)
        return [
            ModelRecord(r["name"], r["snapshot"], r["table_version"], r["digest"], r["rows"], from_micros(r["registered_us"]),
                        r["mlflow_run"], *since.get(r["name"], (0, 0)))
            for r in rows
        ]

    def model(self, name: str) -> ModelRecord | None:
        found = self._model_rows(models.c.name == name)
        return found[0] if found else None

    def models(self, snapshot: str | None = None) -> list[ModelRecord]:
        return self._model_rows(models.c.snapshot == snapshot if snapshot else None, snapshot=snapshot)

    def purged_for(self, user_id: str) -> list[dict]:
        """The person's `purged_people` rows, each with `purged_at` and the
        `table_version` its purge left (a model trained on an earlier one saw them)."""
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(purged_people, snapshot_purges.c.table_version)
                .join(snapshot_purges, snapshot_purges.c.id == purged_people.c.purge_id, isouter=True)
                .where(purged_people.c.user_id == user_id).order_by(purged_people.c.purged_us)
            ).mappings().all()
        return [dict(r, purged_at=from_micros(r["purged_us"])) for r in rows]
