"""What a build makes of the decisions, on either engine: the candidate rows
(`cand_sql`, one SQL text but for the engine's bucket and tag-list
expressions), the image jobs and what their results add to the rows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa

from ..engine.compile import Compiler
from ..policy import Policy, TaggedPeople
from ..sources import Export
from .images import ImageJob

__all__ = ["TAGGED_LIST", "cand_sql", "image_jobs", "image_results"]


#: The people tagged in an item, sorted (DuckDB; spark_build has Spark's form).
TAGGED_LIST = "list(tagged_user_id ORDER BY tagged_user_id)"


def cand_sql(policy: Policy, at: datetime, now: datetime, bucket: str, tagged_list: str) -> str:
    """The eligible items at T with what a build needs of them, and why an
    item is left out now (`excluded`) or must have its faces blurred. Reads
    `decided`, `content`, `tags`, `later_fail` and `tp_items`; portable SQL
    but for `bucket` and `tagged_list`, the engine's own expressions."""
    blur_policy = policy.tagged_people is TaggedPeople.blur
    checks_tags = policy.tagged_people is not TaggedPeople.ignore
    blur_t = "d.blur_faces" if blur_policy else "false"
    return f"""
            SELECT d.item_id, d.user_id, c.kind, c.created_at, c.parent_id, c.text, c.media_path,
              tg.tagged, {bucket} AS bucket,
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
            LEFT JOIN (SELECT item_id, {tagged_list} AS tagged FROM tags GROUP BY item_id) tg
              ON tg.item_id = d.item_id
            LEFT JOIN later_fail lf ON lf.user_id = d.user_id
            LEFT JOIN (SELECT DISTINCT t.item_id FROM tags t JOIN later_fail l ON l.user_id = t.tagged_user_id) lt
              ON lt.item_id = d.item_id
            LEFT JOIN tp_items tp ON tp.item_id = d.item_id
            WHERE d.eligible"""


def image_jobs(jobs_tbl: pa.Table, export: Export, stage: Path, policy: Policy) -> tuple[list[ImageJob], dict[str, str]]:
    """One job per image to publish (item_id, media_path, bucket, need_blur,
    file), and the path each lands at in the snapshot."""
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
    return jobs, targets


def image_results(results: list, targets: dict[str, str], policy: Policy) -> tuple[pa.Table, dict[str, int]]:
    """`img_res` (item_id, media, faces, problem) and the image transform counts."""
    img = pa.table(
        {
            "item_id": pa.array([r.item_id for r in results], pa.string()),
            "media": pa.array([targets[r.item_id] if r.ok else None for r in results], pa.string()),
            "faces": pa.array([r.faces for r in results], pa.int32()),
            "problem": pa.array([r.problem for r in results], pa.string()),
        }
    )
    counts = {
        "exif_stripped": sum(r.ok for r in results) if policy.transforms.strip_exif else 0,
        "photos_blurred": sum(r.ok and r.faces > 0 for r in results),
        "faces_blurred": sum(r.faces for r in results if r.ok),
    }
    return img, counts
