"""What a build makes of the decisions, on either engine: the candidate rows
(`cand_sql`, one SQL text but for the engine's bucket and tag-list
expressions), the image jobs and what their results add to the rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from ..engine.compile import Compiler
from ..engine.rules import Reason
from ..policy import Policy, TaggedPeople
from ..sources.store import StorePath, inside, location
from ..sqltext import quote
from .images import ImageJob, process_all

__all__ = ["IMAGE_COUNTS_SQL", "IMAGE_PROBLEMS_SQL", "IMG_SCHEMA", "JOBS_SQL", "TAGGED_LIST", "cand_sql", "image_counts",
           "image_jobs", "process_images"]


#: The people tagged in an item, sorted (DuckDB; spark_build has Spark's form).
TAGGED_LIST = "list(tagged_user_id ORDER BY tagged_user_id)"


def tagged_sql(policy: Policy, at: datetime, tagged_list: str, people: str) -> str:
    """Per item, the people its row names in `tagged`, never one erased or
    deleted (`later_fail`: account_deleted). Under blur, a tagged
    person who fails at T (`people`) or now (`later_fail`) is left out: their
    face is blurred, and a row that still named them would tell a model who is
    under the blur (their @handles in texts are hidden for the same reason)."""
    if policy.tagged_people is not TaggedPeople.blur:
        # Whoever asked for erasure or deleted their account is never named, even where the policy
        # ignores the people in photos (`meta-2024`): erasure is not an objection a policy may ignore.
        return f"""SELECT t.item_id, {tagged_list} AS tagged FROM tags t
              LEFT JOIN later_fail lf ON lf.user_id = t.tagged_user_id AND lf.reason = {quote(Reason.account_deleted)}
              WHERE lf.user_id IS NULL GROUP BY t.item_id"""
    return f"""SELECT t.item_id, {tagged_list} AS tagged FROM tags t
              JOIN content c ON c.item_id = t.item_id
              JOIN {people} p ON p.user_id = t.tagged_user_id
              LEFT JOIN later_fail lf ON lf.user_id = t.tagged_user_id
              WHERE lf.user_id IS NULL AND {Compiler(policy, at).tagged_passes_sql('c', 'p')}
              GROUP BY t.item_id"""


def cand_sql(policy: Policy, at: datetime, now: datetime, bucket: str, tagged_list: str, people: str) -> str:
    """The eligible items at T with what a build needs of them, and why an
    item is left out now (`excluded`) or must have its faces blurred. Reads
    `decided`, `content`, `tags`, `later_fail`, `tp_items` and `people` (the
    people at T); portable SQL but for `bucket` and `tagged_list`, the
    engine's own expressions."""
    blur_policy = policy.tagged_people is TaggedPeople.blur
    blur_t = "d.blur_faces" if blur_policy else "false"
    return f"""
            SELECT d.item_id, d.user_id, c.kind, c.created_at, c.parent_id, c.text, c.media_path,
              tg.tagged, {bucket} AS bucket,
              {Compiler(policy, max(at, now)).left_out_now_sql(d="d", c="c", lf="lf", lt="lt", tp="tp", prefix="since_cutoff:")}
                AS excluded,
              COALESCE({blur_t}, false)
                OR {'lt.item_id IS NOT NULL' if blur_policy else 'false'}
                OR tp.item_id IS NOT NULL AS need_blur
            FROM decided d
            JOIN content c ON c.item_id = d.item_id
            LEFT JOIN ({tagged_sql(policy, at, tagged_list, people)}) tg
              ON tg.item_id = d.item_id
            LEFT JOIN later_fail lf ON lf.user_id = d.user_id
            LEFT JOIN (SELECT DISTINCT t.item_id FROM tags t JOIN later_fail l ON l.user_id = t.tagged_user_id) lt
              ON lt.item_id = d.item_id
            LEFT JOIN tp_items tp ON tp.item_id = d.item_id
            WHERE d.eligible"""


#: The image jobs a build hands `process_images`, as one SQL text for both engines.
JOBS_SQL = """SELECT item_id, media_path, bucket, need_blur, md5(item_id) AS file FROM cand
               WHERE excluded IS NULL AND media_path IS NOT NULL"""
#: What `process_images` gives back, one row per job: the registered `img_res`.
IMG_SCHEMA = pa.schema([("item_id", pa.string()), ("media", pa.string()), ("faces", pa.int32()), ("problem", pa.string())])
#: Why photos were left out, over `img_res` (both engines).
IMAGE_PROBLEMS_SQL = "SELECT problem, count(*) AS n FROM img_res WHERE problem IS NOT NULL GROUP BY problem"
#: The image transforms' counts, over `img_res` (both engines).
IMAGE_COUNTS_SQL = """SELECT count(media) AS published,
    count(CASE WHEN media IS NOT NULL AND faces > 0 THEN 1 END) AS photos_blurred,
    COALESCE(sum(CASE WHEN media IS NOT NULL THEN faces END), 0) AS faces_blurred FROM img_res"""


def image_jobs(jobs_tbl: pa.Table, root: Path | StorePath, stage: Path, strip_exif: bool) -> tuple[list[ImageJob], dict[str, str]]:
    """One job per row of `JOBS_SQL` (item_id, media_path, bucket, need_blur,
    file), and the path each lands at in the snapshot. A media path that leads
    out of the export folder `root` is reported missing, never read."""
    root = root.resolve()
    jobs, targets = [], {}
    for item_id, media_path, bucket, need_blur, file in zip(*(jobs_tbl.column(i).to_pylist() for i in range(5))):
        ext = ".png" if media_path.lower().endswith(".png") else ".jpg"
        rel = f"media/{bucket:03d}/{file}{ext}"
        source = inside(root, media_path) or root / "__outside_the_export__"  # never there: "media missing"
        jobs.append(ImageJob(item_id, source, stage / rel, bool(need_blur), strip_exif))
        targets[item_id] = rel
    return jobs, targets


def process_images(batches: Iterable[pa.RecordBatch], *, root: str, stage: str, strip_exif: bool,
                   workers: int | None = None) -> Iterator[pa.RecordBatch]:
    """The image jobs in `batches` done here, their results as `IMG_SCHEMA`
    batches. The DuckDB build runs it on its own machine (`workers` threads);
    a Spark build on the executors, one partition a task (`mapInArrow`), so
    the photos never pass through the driver. `root` and `stage` are paths
    wherever this runs reads and writes."""
    batches = [b for b in batches if b.num_rows]
    if not batches:  # Spark may hand a task of an empty partition no batch at all
        return
    jobs, targets = image_jobs(pa.Table.from_batches(batches), location(root), Path(stage), strip_exif)
    results = process_all(jobs, workers)
    yield from pa.table(
        {
            "item_id": pa.array([r.item_id for r in results], pa.string()),
            "media": pa.array([targets[r.item_id] if r.ok else None for r in results], pa.string()),
            "faces": pa.array([r.faces for r in results], pa.int32()),
            "problem": pa.array([r.problem for r in results], pa.string()),
        },
        schema=IMG_SCHEMA,
    ).to_batches()


def image_counts(published: int, photos_blurred: int, faces_blurred: int, policy: Policy) -> dict[str, int]:
    """The manifest's image transform counts, from a row of `IMAGE_COUNTS_SQL`."""
    return {
        "exif_stripped": int(published) if policy.transforms.strip_exif else 0,
        "photos_blurred": int(photos_blurred),
        "faces_blurred": int(faces_blurred),
    }
