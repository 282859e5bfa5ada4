"""Build a training snapshot: the eligible items, transformed, as a Delta table.

The decisions are the engine's, at the cut-off T. On top, whatever the ledger
says *now* (up to the watermark read first) is applied too: someone who
objected after T but before the build is not in it. An objection is not
"from then on".

Layout of a snapshot folder:

    NAME/table/        the Delta table, partitioned by bucket = md5(user_id) % B
    NAME/media/BBB/    images, re-encoded (no EXIF), faces blurred where needed
    NAME/manifest.json

It is built in a hidden sibling folder and renamed into place in the same
database transaction that registers it: a crash leaves no visible half.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .. import config
from ..engine.compile import Compiler
from ..engine.duck import connect, load_inputs
from ..ledger import Ledger
from ..policy import Policy, TaggedPeople
from ..sources import Export
from .images import ImageJob, process_all
from .manifest import Manifest, content_digest, write_json
from .redact import MACROS, MENTION, text_steps
from .registry import Registry, SnapshotError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
VISUAL = ("photo", "story", "video", "reel")

SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("user_id", pa.string()),
        ("kind", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("parent_id", pa.string()),
        ("text", pa.string()),
        ("media", pa.string()),  # relative to the snapshot folder
        ("faces_blurred", pa.int32()),
        ("tagged", pa.list_(pa.string())),
        ("bucket", pa.int32()),
    ]
)


def bucket_sql(user: str, buckets: int) -> str:
    """Stable across engines and versions (DuckDB's own hash() is not)."""
    return f"CAST(CAST(('0x' || left(md5({user}), 8)) AS UBIGINT) % {int(buckets)} AS INTEGER)"


def bucket_of(user_id: str, buckets: int) -> int:
    import hashlib

    return int(hashlib.md5(user_id.encode()).hexdigest()[:8], 16) % buckets


def default_location(name: str) -> Path:
    return config.home() / "snapshots" / name


@contextmanager
def snapshot_lock(folder: Path) -> Iterator[None]:
    """One build or purge of a snapshot at a time, across processes."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def later_failures(con: duckdb.DuckDBPyConnection, policy: Policy, at: datetime, now: datetime, table: str = "later_fail") -> None:
    """People who fail a person rule now (by the ledger as loaded): what the
    ledger said after the cut-off still counts. Rules 6-12 only get stricter
    with time, so this is everyone who must not be in a snapshot today."""
    comp = Compiler(policy, max(at, now))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS WITH {comp.people_ctes()}
        SELECT user_id, COALESCE(reason_a, reason_b) AS reason FROM people
        WHERE reason_a IS NOT NULL OR reason_b IS NOT NULL"""
    )


def third_party_now(con: duckdb.DuckDBPyConnection, policy: Policy, at: datetime, now: datetime) -> None:
    """`tp_items`: the items a third-party objection covers now (rule 15 at
    max(T, now), by the ledger as loaded), like `later_failures` for people.
    Empty when the policy does not honour them."""
    comp = Compiler(policy, max(at, now))
    if comp.honours_third_parties:
        con.execute(f"CREATE OR REPLACE TEMP TABLE tp_items AS WITH {comp.third_party_cte()} SELECT item_id FROM third_party")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE tp_items (item_id VARCHAR)")


@dataclass
class _Tally:
    names: list[str]
    counts: dict[str, int]

    def batches(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        for batch in reader:
            for n in self.names:
                self.counts[n] += int(pc.sum(batch.column(f"changed_{n}")).as_py() or 0)
            yield pa.RecordBatch.from_arrays([batch.column(f.name).cast(f.type) for f in SCHEMA], schema=SCHEMA)


def build(
    export: Export,
    ledger: Ledger,
    policy: Policy,
    at: datetime,
    name: str,
    *,
    out: Path | None = None,
    buckets: int = 64,
    workers: int | None = None,
    now: datetime | None = None,
    say: Callable[[str], None] = lambda _: None,
    _before_publish: Callable[[], None] | None = None,
) -> Manifest:
    if not NAME_RE.match(name):
        raise SnapshotError(f"snapshot name '{name}' is not allowed: use letters, digits, '.', '_' or '-' (at most 128)")
    if not 1 <= buckets <= 4096:
        raise SnapshotError(f"--buckets {buckets} is out of range: use 1 to 4096 (default 64)")
    registry = Registry(ledger)
    final = (out or default_location(name)).absolute()
    if registry.get(name) is not None:
        raise SnapshotError(f"a snapshot named '{name}' exists already; snapshots are never overwritten, pick another name")
    if final.exists():
        raise SnapshotError(f"{final} exists already; pass --out with a new folder or remove it")
    with snapshot_lock(final):
        stage = final.parent / f".{final.name}.building-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            # The watermark first, then the clock: every event read (seq <= watermark)
            # was received before `now`, so the watermark says exactly what applies.
            watermark = ledger.watermark()
            manifest = _build_into(
                stage, export, ledger, policy, at, name, buckets, workers, now or datetime.now(UTC), watermark, say
            )
            if _before_publish:
                _before_publish()
            with ledger.engine.begin() as conn:
                registry.add(conn, str(final / "table"), manifest)
                os.rename(stage, final)  # if the commit then fails, the folder is moved back below
                try:
                    write_json(final, manifest)
                except BaseException:
                    os.rename(final, stage)
                    raise
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)
    return manifest


def _build_into(
    stage: Path, export: Export, ledger: Ledger, policy: Policy, at: datetime, name: str,
    buckets: int, workers: int | None, now: datetime, watermark: int, say: Callable[[str], None],
) -> Manifest:
    from deltalake import CommitProperties, DeltaTable, write_deltalake

    stage.mkdir(parents=True)
    con = connect()
    try:
        con.execute(MACROS)
        load_inputs(con, export, ledger, max(at, now), watermark=watermark)
        say(f"ledger read up to event {watermark}")
        third_party_now(con, policy, at, now)
        later_failures(con, policy, at, now)
        comp = Compiler(policy, at)
        blur_policy = policy.tagged_people is TaggedPeople.blur
        con.execute(f"CREATE TEMP TABLE decided AS {comp.decisions_sql()}")
        decisions = dict(con.execute("SELECT reason, count(*) FROM decided GROUP BY reason ORDER BY reason").fetchall())
        say(f"decided {sum(decisions.values()):,} items at the cut-off, {decisions.get('eligible', 0):,} eligible")

        # Who may not be mentioned: fails at T, or fails now.
        con.execute(
            f"""CREATE TEMP TABLE bad_handles AS
            WITH {comp.people_ctes()}
            SELECT DISTINCT lower(u.handle) AS h FROM users u
            WHERE u.handle IS NOT NULL AND u.user_id IN (
              SELECT user_id FROM people WHERE reason_a IS NOT NULL OR reason_b IS NOT NULL
              UNION SELECT user_id FROM later_fail)"""
        )
        blur_t = "d.blur_faces" if blur_policy else "false"
        checks_tags = policy.tagged_people is not TaggedPeople.ignore
        con.execute(
            f"""CREATE TEMP TABLE cand AS
            SELECT d.item_id, d.user_id, c.kind, c.created_at, c.parent_id, c.text, c.media_path,
              tg.tagged, {bucket_sql('d.user_id', buckets)} AS bucket,
              CASE
                WHEN lf.reason IS NOT NULL THEN 'since_cutoff:' || lf.reason
                WHEN c.deleted_at <= {Compiler(policy, max(at, now)).T} THEN 'since_cutoff:content_deleted'
                WHEN {'lt.item_id IS NOT NULL' if checks_tags and not blur_policy else 'false'} THEN 'since_cutoff:tagged_person'
                WHEN tp.item_id IS NOT NULL AND NOT {'true' if blur_policy else 'false'}
                  THEN 'since_cutoff:third_party_objected'
              END AS excluded,
              COALESCE({blur_t}, false)
                OR {'lt.item_id IS NOT NULL' if blur_policy else 'false'}
                OR tp.item_id IS NOT NULL AS need_blur
            FROM decided d
            JOIN content c ON c.item_id = d.item_id
            LEFT JOIN (SELECT item_id, list(tagged_user_id ORDER BY tagged_user_id) AS tagged FROM tags GROUP BY item_id) tg
              ON tg.item_id = d.item_id
            LEFT JOIN later_fail lf ON lf.user_id = d.user_id
            LEFT JOIN (SELECT DISTINCT t.item_id FROM tags t JOIN later_fail l ON l.user_id = t.tagged_user_id) lt
              ON lt.item_id = d.item_id
            LEFT JOIN tp_items tp ON tp.item_id = d.item_id
            WHERE d.eligible"""
        )
        excluded = dict(con.execute("SELECT excluded, count(*) FROM cand WHERE excluded IS NOT NULL GROUP BY 1").fetchall())

        # Images first (Python, in threads), so the table is written in one streamed pass.
        jobs_tbl = con.sql(
            """SELECT item_id, media_path, bucket, need_blur, md5(item_id) AS file FROM cand
               WHERE excluded IS NULL AND media_path IS NOT NULL"""
        ).to_arrow_table()
        root = export.folder.resolve()
        jobs, targets = [], {}
        for item_id, media_path, bucket, need_blur, file in zip(*(jobs_tbl.column(i).to_pylist() for i in range(5))):
            ext = ".png" if media_path.lower().endswith(".png") else ".jpg"
            rel = f"media/{bucket:03d}/{file}{ext}"
            source = (root / media_path).resolve()
            if not source.is_relative_to(root):
                source = root / "__outside_the_export__"  # reported as missing, never read
            jobs.append(ImageJob(item_id, source, stage / rel, bool(need_blur), policy.transforms.strip_exif))
            targets[item_id] = rel
        say(f"copying {len(jobs):,} images")
        results = process_all(jobs, workers)
        img = pa.table(
            {
                "item_id": pa.array([r.item_id for r in results], pa.string()),
                "media": pa.array([targets[r.item_id] if r.ok else None for r in results], pa.string()),
                "faces": pa.array([r.faces for r in results], pa.int32()),
                "problem": pa.array([r.problem for r in results], pa.string()),
            }
        )
        con.register("img_res", img)
        for problem, n in con.execute("SELECT problem, count(*) FROM img_res WHERE problem IS NOT NULL GROUP BY 1").fetchall():
            excluded[problem] = n
        transforms = {
            "exif_stripped": sum(r.ok for r in results) if policy.transforms.strip_exif else 0,
            "photos_blurred": sum(r.ok and r.faces > 0 for r in results),
            "faces_blurred": sum(r.faces for r in results if r.ok),
        }

        steps = text_steps(policy.transforms, "bad")
        inner = f"""SELECT k.*, i.media, COALESCE(i.faces, 0) AS faces_blurred, mb.bad, k.text AS x0
            FROM cand k
            LEFT JOIN img_res i ON i.item_id = k.item_id
            LEFT JOIN (
              SELECT item_id, list(DISTINCT m) AS bad FROM (
                SELECT item_id, lower(unnest(regexp_extract_all(text, '{MENTION}', 1))) AS m
                FROM cand WHERE excluded IS NULL AND text LIKE '%@%')
              WHERE m IN (SELECT h FROM bad_handles) GROUP BY item_id) mb ON mb.item_id = k.item_id
            WHERE k.excluded IS NULL AND (k.media_path IS NULL OR i.media IS NOT NULL)"""
        for i, (_, tpl) in enumerate(steps):
            inner = f"SELECT *, {tpl.replace('{x}', f'x{i}')} AS x{i + 1} FROM ({inner})"
        changed = ", ".join(f"COALESCE(x{i + 1} IS DISTINCT FROM x{i}, false) AS changed_{n}" for i, (n, _) in enumerate(steps))
        final_sql = f"""SELECT item_id, user_id, kind, CAST(created_at AS TIMESTAMPTZ) AS created_at, parent_id,
            x{len(steps)} AS text, media, CAST(faces_blurred AS INTEGER) AS faces_blurred, tagged, bucket
            {', ' + changed if changed else ''} FROM ({inner})"""
        rows = con.execute(f"SELECT count(*) FROM cand k LEFT JOIN img_res i ON i.item_id = k.item_id "
                           f"WHERE k.excluded IS NULL AND (k.media_path IS NULL OR i.media IS NOT NULL)").fetchall()[0][0]
        tally = _Tally([n for n, _ in steps], {n: 0 for n, _ in steps})
        reader = con.sql(final_sql).to_arrow_reader(200_000)
        built_at = datetime.now(UTC)
        facts = {
            "name": name, "policy": policy.name, "policy_hash": policy.hash, "cutoff": at.isoformat(),
            "watermark": watermark, "built_at": built_at.isoformat(), "rows": rows, "decisions": decisions,
            "excluded_at_build": excluded,
        }
        say(f"writing {rows:,} rows")
        write_deltalake(
            str(stage / "table"),
            pa.RecordBatchReader.from_batches(SCHEMA, tally.batches(reader)),
            partition_by=["bucket"],
            # No min/max statistics in the log: they would copy people's ids and
            # words into files that purges cannot rewrite.
            configuration={"delta.dataSkippingNumIndexedCols": "0"},
            name=name,
            description=f"consentry snapshot '{name}': policy {policy.name}, cut-off {at.isoformat()}",
            commit_properties=CommitProperties(custom_metadata={"consentry.build": json.dumps(facts, sort_keys=True)}),
        )
        transforms.update({f"text_{n}": c for n, c in tally.counts.items()})
        dt = DeltaTable(str(stage / "table"))
        return Manifest(
            name=name, policy=policy.name, policy_hash=policy.hash,
            transforms_enabled=policy.transforms.model_dump(), policy_document=policy.model_dump(mode="json"), cutoff=at, watermark=watermark, built_at=built_at,
            export=str(export.folder.resolve()), buckets=buckets, rows=rows, rows_built=rows,
            digest=content_digest(stage), decisions=decisions, excluded_at_build=excluded, transforms=transforms,
            table_version=dt.version(),
        )
    finally:
        con.close()
