"""A snapshot's rows computed on Spark, committed to Delta by delta-rs.

Spark decides (the same compiled SQL as DuckDB), picks the candidates and
writes the Parquet parts into the table folder; the text transforms run on the
executors, one partition at a time, as the very SQL the DuckDB build runs
(`redact.py`, `mentions.py`, in an embedded DuckDB), so the rows are the same
byte for byte; the driver commits the parts with delta-rs (no Maven package).
Images are processed on the executors too (`rows.process_images`), written
straight into the snapshot's folder, which every node must reach.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..engine.backend import SparkBackend
from ..engine.compile import Compiler
from ..engine.spark import materialised, small_enough
from ..ledger import Ledger
from ..policy import Policy
from ..sources import Export
from ..words import count
from .manifest import Manifest, content_digest
from .mentions import MACROS as MENTION_MACROS
from .mentions import handles_sql, mentioned_sql
from .redact import chain_sql, found_lists, install_sql, kinds_of, text_steps
from .rows import (
    IMAGE_COUNTS_SQL,
    IMAGE_PROBLEMS_SQL,
    IMG_SCHEMA,
    JOBS_SQL,
    cand_sql,
    image_counts,
    process_images,
)
from .shared import SCHEMA

__all__ = ["build_rows_spark"]


def _bucket_sql(user: str, buckets: int) -> str:
    """`shared.bucket_sql` in Spark SQL: the same md5 prefix, the same bucket."""
    return f"CAST(CAST(conv(left(md5({user}), 8), 16, 10) AS BIGINT) % {int(buckets)} AS INT)"


def handles(users: pa.Table, user_ids: pa.Table | None) -> tuple[pa.Table, pa.Table]:
    """(every handle, the handles of `user_ids`), lower case NFC, as the DuckDB build computes them."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("users", users)
        every = con.sql(handles_sql("users")).to_arrow_table()
        con.register("bad_ids", user_ids if user_ids is not None else pa.table({"user_id": pa.array([], pa.string())}))
        bad = con.sql("SELECT DISTINCT lower(nfc_normalize(handle)) AS h FROM users "
                      "WHERE handle IS NOT NULL AND user_id IN (SELECT user_id FROM bad_ids)").to_arrow_table()
        return every, bad
    finally:
        con.close()


@contextmanager
def partition_duckdb(batches: Iterator[pa.RecordBatch], **tables: pa.Table) -> Iterator:
    """On an executor: an embedded DuckDB (UTC, consentry's macros) with this
    partition registered as `part_rows` and `tables` beside it; None for an empty
    partition (Spark may hand one no batch at all)."""
    import duckdb

    batches = list(batches)
    if not batches or not any(b.num_rows for b in batches):
        yield None
        return
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        install_sql(con)
        con.execute(MENTION_MACROS)
        con.register("part_rows", pa.Table.from_batches(batches))
        for name, table in tables.items():
            con.register(name, table)
        yield con
    finally:
        con.close()


def _transform_partition(batches: Iterator[pa.RecordBatch], *, transforms, all_handles: pa.Table,  # noqa: ANN001
                         bad_handles: pa.Table, out_schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """On an executor: the text steps of a DuckDB build over one partition."""
    with partition_duckdb(batches, all_handles=all_handles, bad_handles=bad_handles) as con:
        if con is None:
            return
        con.execute("CREATE VIEW cand AS SELECT * FROM part_rows")
        steps = text_steps(transforms, "bad")
        kept = "(SELECT item_id, text, country FROM cand WHERE text IS NOT NULL)"
        found_lists(con, kept, "item_id", "text", "country", kinds_of(transforms), into="found")
        inner = f"""SELECT k.*, mb.bad, fl.f_email, fl.f_iban, fl.f_card, fl.f_phone, k.text AS x0
            FROM cand k
            LEFT JOIN found fl ON fl.k = k.item_id
            LEFT JOIN (
              SELECT k AS item_id, list(DISTINCT h) AS bad FROM ({mentioned_sql(kept, 'item_id', 'text', 'all_handles')})
              WHERE h IN (SELECT h FROM bad_handles) GROUP BY k) mb ON mb.item_id = k.item_id"""
        inner = chain_sql(inner, steps)
        changed = "".join(f", COALESCE(x{i + 1} IS DISTINCT FROM x{i}, false) AS changed_{n}" for i, (n, _) in enumerate(steps))
        out = con.sql(f"""SELECT item_id, user_id, kind, created_at, parent_id, x{len(steps)} AS text, media,
            CAST(faces_blurred AS INTEGER) AS faces_blurred, tagged, bucket{changed} FROM ({inner})""").to_arrow_table()
    yield from out.cast(out_schema).to_batches()


def tidy(table_dir: Path) -> None:
    """Remove Spark's _SUCCESS markers and checksums: not part of the table."""
    for path in sorted(table_dir.rglob("*")):
        if path.is_file() and (path.name.startswith((".", "_")) or path.suffix == ".crc") and "_delta_log" not in path.parts:
            path.unlink()


def add_actions(table_dir: Path, paths: list[Path]) -> list:
    """Delta add actions for Parquet parts Spark wrote under `table_dir`."""
    from deltalake.transaction import AddAction

    actions = []
    for path in sorted(paths):
        rel = path.relative_to(table_dir).as_posix()
        part = {k: v for k, v in (seg.split("=", 1) for seg in rel.split("/")[:-1])}
        rows = pq.read_metadata(path).num_rows
        st = path.stat()
        # Only a row count: min/max statistics would copy people's ids and words into the log.
        actions.append(AddAction(rel, st.st_size, part, int(st.st_mtime * 1000), True, json.dumps({"numRecords": rows})))
    return actions


def _commit(table_dir: Path, name: str, policy: Policy, at: datetime, facts: dict) -> None:
    """Commit the Parquet parts Spark wrote into `table_dir` as version 0, with delta-rs."""
    from deltalake import CommitProperties, Schema
    from deltalake.transaction import create_table_with_add_actions

    tidy(table_dir)
    create_table_with_add_actions(
        str(table_dir), Schema.from_arrow(SCHEMA), add_actions(table_dir, list(table_dir.rglob("*.parquet"))),
        mode="error", partition_by=["bucket"], name=name,
        description=f"consentry snapshot '{name}': policy {policy.name}, cut-off {at.isoformat()}",
        configuration={"delta.dataSkippingNumIndexedCols": "0"},
        commit_properties=CommitProperties(custom_metadata={"consentry.build": json.dumps(facts, sort_keys=True)}),
    )


def now_failing(spark, policy: Policy, at: datetime, now: datetime) -> list:  # noqa: ANN001
    """Views `later_fail` and `tp_items` (who and what must not be in a snapshot
    now), as `shared.later_failures` and `shared.third_party_now` make them in
    DuckDB; the DataFrames kept, for the caller to unpersist."""
    comp_now = Compiler(policy, max(at, now))
    kept = [materialised(spark.sql(comp_now.failing_sql()))]
    kept[-1].createOrReplaceTempView("later_fail")
    if comp_now.honours_third_parties:
        kept.append(materialised(spark.sql(f"WITH {comp_now.third_party_cte()} SELECT item_id FROM third_party")))
        kept[-1].createOrReplaceTempView("tp_items")
    else:
        spark.sql("SELECT CAST(NULL AS STRING) AS item_id WHERE false").createOrReplaceTempView("tp_items")
    return kept


def build_rows_spark(
    spark, stage: Path, export: Export, ledger: Ledger, policy: Policy, at: datetime, name: str,  # noqa: ANN001
    buckets: int, workers: int | None, now: datetime, watermark: int, say: Callable[[str], None],
) -> Manifest:
    """`build._build_into` on Spark: the same facts, the same rows. (`workers`
    is the DuckDB build's; here each executor core takes one partition's images.)"""
    from deltalake import DeltaTable
    from pyspark import StorageLevel

    b = SparkBackend(spark)
    persisted = []
    try:
        b.load(export, ledger, max(at, now), watermark)
        say(f"ledger read up to event {watermark} (Spark)")

        def view(name_: str, sql: str) -> None:
            df = materialised(spark.sql(sql))
            persisted.append(df)
            df.createOrReplaceTempView(name_)

        persisted += now_failing(spark, policy, at, now)
        comp = Compiler(policy, at)
        view("people_once", comp.people_sql())
        view("decided", comp.decisions_sql(people="people_once", broadcast=small_enough(spark, spark.table("people_once"))))
        decisions = {r["reason"]: int(r["n"]) for r in spark.sql(
            "SELECT reason, count(*) AS n FROM decided GROUP BY reason").collect()}
        decisions = dict(sorted(decisions.items()))
        say(f"decided {count(sum(decisions.values()), 'item', 'items')} at the cut-off, {decisions.get('eligible', 0):,} eligible")

        bad_ids = b.arrow("""SELECT user_id FROM people_once WHERE reason_a IS NOT NULL OR reason_b IS NOT NULL
                             UNION SELECT user_id FROM later_fail""")
        all_handles, bad_handles = handles(b.arrow("SELECT user_id, handle FROM users"), bad_ids)

        view("cand", cand_sql(policy, at, now, _bucket_sql("d.user_id", buckets), "sort_array(collect_list(tagged_user_id))",
                             "people_once"))
        excluded = {r["excluded"]: int(r["n"]) for r in spark.sql(
            "SELECT excluded, count(*) AS n FROM cand WHERE excluded IS NOT NULL GROUP BY 1").collect()}

        # Images on the executors, one partition a task: the photos never pass through the driver.
        from pyspark.sql.pandas.types import from_arrow_schema

        jobs_df = spark.sql(JOBS_SQL)
        say(f"copying {jobs_df.count():,} images (on the executors)")
        fn = partial(process_images, root=str(export.folder.resolve()), stage=str(stage.resolve()),
                     strip_exif=policy.transforms.strip_exif, workers=1)
        img = materialised(jobs_df.mapInArrow(fn, from_arrow_schema(IMG_SCHEMA)))
        persisted.append(img)
        img.createOrReplaceTempView("img_res")
        transforms = image_counts(*spark.sql(IMAGE_COUNTS_SQL).collect()[0], policy)
        excluded.update({r["problem"]: int(r["n"]) for r in spark.sql(IMAGE_PROBLEMS_SQL).collect()})

        steps = text_steps(policy.transforms, "bad")
        out_schema = pa.schema(list(SCHEMA) + [(f"changed_{n}", pa.bool_()) for n, _ in steps])
        rows_df = spark.sql("""SELECT k.item_id, k.user_id, k.kind, k.created_at, k.parent_id, k.text, u.country,
              i.media, COALESCE(i.faces, 0) AS faces_blurred, k.tagged, k.bucket
            FROM cand k LEFT JOIN img_res i ON i.item_id = k.item_id LEFT JOIN users u ON u.user_id = k.user_id
            WHERE k.excluded IS NULL AND (k.media_path IS NULL OR i.media IS NOT NULL)""")
        fn = partial(_transform_partition, transforms=policy.transforms, all_handles=all_handles,
                     bad_handles=bad_handles, out_schema=out_schema)
        out = rows_df.mapInArrow(fn, from_arrow_schema(out_schema)).persist(StorageLevel.MEMORY_AND_DISK)
        persisted.append(out)
        tally = out.selectExpr("count(*) AS rows", *(f"sum(CAST(changed_{n} AS INT)) AS {n}" for n, _ in steps)).collect()[0].asDict()
        rows = int(tally.pop("rows"))
        say(f"writing {count(rows, 'row', 'rows')}")
        table_dir = stage / "table"
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # not INT96: the Delta schema says timestamp
        (out.select(*[f.name for f in SCHEMA]).repartition("bucket").write
         .option("compression", "zstd").partitionBy("bucket").mode("errorifexists").parquet(str(table_dir)))
        built_at = datetime.now(UTC)
        facts = {
            "name": name, "policy": policy.name, "policy_hash": policy.hash, "cutoff": at.isoformat(),
            "watermark": watermark, "built_at": built_at.isoformat(), "rows": rows, "decisions": decisions,
            "excluded_at_build": excluded, "engine": "spark",
        }
        _commit(table_dir, name, policy, at, facts)
        transforms.update({f"text_{n}": int(tally.get(n) or 0) for n, _ in steps})
        dt = DeltaTable(str(table_dir))
        return Manifest(
            name=name, policy=policy.name, policy_hash=policy.hash, transforms_enabled=policy.transforms.model_dump(),
            policy_document=policy.model_dump(mode="json"), cutoff=at, watermark=watermark, built_at=built_at,
            export=str(export.folder.resolve()), buckets=buckets, rows=rows, rows_built=rows,
            digest=content_digest(stage), decisions=decisions, excluded_at_build=excluded, transforms=transforms,
            table_version=dt.version(),
        )
    finally:
        for df in persisted:
            df.unpersist()
        b.close()
