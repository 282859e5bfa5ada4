"""Build a training snapshot: the eligible items, transformed, as a Delta table.

The decisions are the engine's, at the cut-off T. On top, whatever the ledger
says *now* (up to the watermark read first) is applied too: someone who
objected after T but before the build is not in it. An objection is not
"from then on".

Layout of a snapshot folder:

    NAME/table/        the Delta table, partitioned by bucket = md5(user_id) % B
    NAME/media/BBB/    images, re-encoded (no EXIF), faces blurred where needed
    NAME/manifest.json

It is built in a hidden sibling folder, registered, then renamed into place;
`recovery` finishes or removes whatever a crash leaves between those steps.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from .. import config
from ..engine.compile import Compiler
from ..engine.duck import connect, load_inputs
from ..engine.evaluation import outside_export
from ..errors import InputError, PolicyError
from ..ledger import Ledger
from ..paths import check_writable
from ..policy import Policy, load_policy
from ..sources import Export, ValidationMemo, valid_export
from ..timeutil import iso, parse_instant
from ..words import count
from .manifest import Manifest, content_digest, write_json
from .mentions import handles_sql, mentioned_sql
from .recovery import (
    failpoint,
    forget_stage,
    fsync_dir,
    ledger_identity,
    mark_stage,
    note_stage,
    stage_name,
)
from .redact import chain_sql, found_lists, install_sql, kinds_of, text_steps
from .registry import Registry, SnapshotError
from .repair import recover
from .rows import (
    IMAGE_COUNTS_SQL,
    IMAGE_PROBLEMS_SQL,
    IMG_SCHEMA,
    JOBS_SQL,
    TAGGED_LIST,
    cand_sql,
    image_counts,
    process_images,
)
from .shared import SCHEMA, bucket_sql, later_failures, snapshot_lock, third_party_now

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def default_location(name: str) -> Path:
    return config.home() / "snapshots" / name


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
    export: Export | str | Path,
    ledger: Ledger,
    policy: Policy | str | Path,
    at: datetime | str,
    name: str,
    *,
    out: str | Path | None = None,
    buckets: int = 64,
    workers: int | None = None,
    now: datetime | str | None = None,
    say: Callable[[str], None] = lambda _: None,
    _before_publish: Callable[[], None] | None = None,
    spark=None,  # noqa: ANN001 - a pyspark SparkSession: the rows are computed there
) -> Manifest:
    """Build the snapshot `name` of what `policy` lets train at the cut-off
    `at`. Takes what `Platform` takes: `export` a folder or an `Export`,
    `policy` a preset name, a YAML file or a `Policy`, `at` (and `now`) an
    aware datetime, ISO 8601 text or a naive datetime read as UTC; the
    cut-off is stored in UTC, whatever zone it was given in."""
    if not isinstance(ledger, Ledger):
        raise InputError(f"{ledger!r} is not a Ledger", where="snapshots.build",
                         fix="open it first: with Ledger(url) as led: build(export, led, ...)")
    at = parse_instant(at, what="cut-off")
    if now is not None:
        now = parse_instant(now, what="time `now`")
    if not isinstance(policy, Policy):
        if not isinstance(policy, str | Path):
            raise PolicyError(f"{policy!r} is not a policy", where="snapshots.build",
                              fix="pass a Policy, a built-in policy's name (recommended, ...) or a policy YAML file")
        policy = load_policy(policy)
    if not isinstance(export, Export):
        export = Export(export)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SnapshotError(f"snapshot name '{name}' is not allowed: use letters, digits, '.', '_' or '-' (at most 128)")
    if not 1 <= buckets <= 4096:
        raise SnapshotError(f"--buckets {buckets} is out of range: use 1 to 4096 (default 64)")
    if at > (clock := now or datetime.now(UTC)):
        raise SnapshotError(
            f"the cut-off {iso(at)} is later than now ({iso(clock)}): a snapshot is used from when it is built, and "
            "deciding at a later time would let in people whose notice period has not run out yet and minors who "
            "come of age only by then; build at a cut-off no later than now (`consentry evaluate` decides at any time)"
        )
    export = valid_export(export, ValidationMemo(config.validation_memo_path()))  # as `evaluate`: never from a refused export
    ledger.require_numbered("training rows")  # an objection deleted outside consentry must not let its rows in
    registry = Registry(ledger)
    final = (Path(out) if out is not None else default_location(name)).absolute()
    # Inside the export, its files would be read as the platform's (a snapshot in export/tags/ made the export
    # unreadable, and that snapshot could then never be purged).
    outside_export(final, export, what_goes="snapshots",
                   fix=f"build it outside the export folder (by default it goes to snapshots/{name} in $CONSENTRY_HOME)")
    if registry.get(name) is not None:
        raise SnapshotError(f"a snapshot named '{name}' exists already; snapshots are never overwritten, pick another name")
    if final.exists():
        raise SnapshotError(f"{final} exists already; pass --out with a new folder or remove it")
    check_writable(final.parent, where=str(final), create=True)
    recover(ledger, extra_roots=[final.parent], say=say)
    with snapshot_lock(final):
        build_id = secrets.token_hex(6)
        stage = final.parent / stage_name(final, build_id)
        registered = False
        note_stage(stage, build_id)  # before it exists: a crash from here on is found by `recover`
        try:
            stage.mkdir(parents=True)
            mark_stage(stage, build_id, ledger_identity(ledger.url))
            # The watermark first, then the clock: every event read (seq <= watermark)
            # was received before `now`, so the watermark says exactly what applies;
            # cut before any event dated later than `now`, which a later purge must still read.
            watermark = ledger.watermark()
            now = now or datetime.now(UTC)
            watermark = ledger.settled(watermark, now)
            if spark is not None:
                from .spark_build import build_rows_spark

                into = partial(build_rows_spark, spark)
            else:
                into = _build_into
            manifest = into(
                stage, export, ledger, policy, at, name, buckets, workers, now, watermark, say
            ).model_copy(update={"build_id": build_id})
            write_json(stage, manifest)
            failpoint("build:staged")
            if _before_publish:
                _before_publish()
            # Registered first, then moved into place: a crash in between leaves a
            # registered snapshot whose staging folder `recover` renames into place.
            with ledger.transaction() as conn:
                registry.add(conn, str(final / "table"), manifest)
            registered = True
            failpoint("build:registered")
            try:
                os.rename(stage, final)
                fsync_dir(final.parent)
            except OSError as exc:
                registry.remove(name, why=f"its folder could not be moved into place: {exc}")
                registered = False
                raise SnapshotError(f"the finished snapshot could not be moved to {final}: {exc}") from None
            failpoint("build:renamed")
        finally:
            if stage.exists() and not registered:
                shutil.rmtree(stage, ignore_errors=True)
            if not stage.exists():
                forget_stage(build_id)
    return manifest


def _build_into(
    stage: Path, export: Export, ledger: Ledger, policy: Policy, at: datetime, name: str,
    buckets: int, workers: int | None, now: datetime, watermark: int, say: Callable[[str], None],
) -> Manifest:
    from deltalake import CommitProperties, DeltaTable, write_deltalake

    con = connect()
    try:
        install_sql(con)
        load_inputs(con, export, ledger, max(at, now), watermark=watermark)
        say(f"ledger read up to event {watermark}")
        third_party_now(con, policy, at, now)
        later_failures(con, policy, at, now)
        comp = Compiler(policy, at)
        # The people at T once, for the decisions, the handles and the tags to hide.
        con.execute(f"CREATE TEMP TABLE people_once AS {comp.people_sql()}")
        con.execute(f"CREATE TEMP TABLE decided AS {comp.decisions_sql(people='people_once')}")
        decisions = dict(con.execute("SELECT reason, count(*) FROM decided GROUP BY reason ORDER BY reason").fetchall())
        say(f"decided {count(sum(decisions.values()), 'item', 'items')} at the cut-off, {decisions.get('eligible', 0):,} eligible")

        # Who may not be mentioned: fails at T, or fails now.
        con.execute(
            """CREATE TEMP TABLE bad_handles AS
            SELECT DISTINCT lower(nfc_normalize(u.handle)) AS h FROM users u
            WHERE u.handle IS NOT NULL AND u.user_id IN (
              SELECT user_id FROM people_once WHERE reason_a IS NOT NULL OR reason_b IS NOT NULL
              UNION SELECT user_id FROM later_fail)"""
        )
        con.execute(f"CREATE TEMP TABLE cand AS {cand_sql(policy, at, now, bucket_sql('d.user_id', buckets), TAGGED_LIST, 'people_once')}")
        excluded = dict(con.execute("SELECT excluded, count(*) FROM cand WHERE excluded IS NOT NULL GROUP BY 1").fetchall())

        # Images first (Python, in threads), so the table is written in one streamed pass.
        jobs_tbl = con.sql(JOBS_SQL).to_arrow_table()
        say(f"copying {count(jobs_tbl.num_rows, 'image', 'images')}")
        img = pa.Table.from_batches(list(process_images(jobs_tbl.to_batches(), root=str(export.folder), stage=str(stage),
                                                        strip_exif=policy.transforms.strip_exif, workers=workers)),
                                    IMG_SCHEMA)
        con.register("img_res", img)
        transforms = image_counts(*con.execute(IMAGE_COUNTS_SQL).fetchone(), policy)
        excluded.update(dict(con.execute(IMAGE_PROBLEMS_SQL).fetchall()))

        steps = text_steps(policy.transforms, "bad")
        # What to replace in each row's text, found once over the whole column.
        kept = ("(SELECT k.item_id, k.text, u.country FROM cand k LEFT JOIN users u ON u.user_id = k.user_id "
                "WHERE k.excluded IS NULL AND k.text IS NOT NULL)")
        found_lists(con, kept, "item_id", "text", "country", kinds_of(policy.transforms), into="found")
        con.execute(f"CREATE TEMP TABLE all_handles AS {handles_sql('users')}")
        inner = f"""SELECT k.*, i.media, COALESCE(i.faces, 0) AS faces_blurred, mb.bad,
              fl.f_email, fl.f_iban, fl.f_card, fl.f_phone, k.text AS x0
            FROM cand k
            LEFT JOIN img_res i ON i.item_id = k.item_id
            LEFT JOIN found fl ON fl.k = k.item_id
            LEFT JOIN (
              SELECT k AS item_id, list(DISTINCT h) AS bad FROM ({mentioned_sql(kept, 'item_id', 'text', 'all_handles')})
              WHERE h IN (SELECT h FROM bad_handles) GROUP BY k) mb ON mb.item_id = k.item_id
            WHERE k.excluded IS NULL AND (k.media_path IS NULL OR i.media IS NOT NULL)"""
        inner = chain_sql(inner, steps)
        changed = ", ".join(f"COALESCE(x{i + 1} IS DISTINCT FROM x{i}, false) AS changed_{n}" for i, (n, _) in enumerate(steps))
        final_sql = f"""SELECT item_id, user_id, kind, CAST(created_at AS TIMESTAMPTZ) AS created_at, parent_id,
            x{len(steps)} AS text, media, CAST(faces_blurred AS INTEGER) AS faces_blurred, tagged, bucket
            {', ' + changed if changed else ''} FROM ({inner})"""
        rows = con.execute("SELECT count(*) FROM cand k LEFT JOIN img_res i ON i.item_id = k.item_id "
                           "WHERE k.excluded IS NULL AND (k.media_path IS NULL OR i.media IS NOT NULL)").fetchall()[0][0]
        tally = _Tally([n for n, _ in steps], {n: 0 for n, _ in steps})
        reader = con.sql(final_sql).to_arrow_reader(200_000)
        built_at = datetime.now(UTC)
        facts = {
            "name": name, "policy": policy.name, "policy_hash": policy.hash, "cutoff": at.isoformat(),
            "watermark": watermark, "built_at": built_at.isoformat(), "rows": rows, "decisions": decisions,
            "excluded_at_build": excluded,
        }
        say(f"writing {count(rows, 'row', 'rows')}")
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
