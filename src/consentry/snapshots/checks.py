"""What `snapshot verify` checks, as SQL texts both engines run: the checks
over the rows (`checks_sql`, on DuckDB or Spark) and the checks that read the
text (`text_checks`, in DuckDB: in this process, or on Spark's executors)."""

from __future__ import annotations

from datetime import datetime

import duckdb

from ..engine.compile import Compiler
from ..policy import Policy, TaggedPeople, Transforms
from .manifest import Manifest
from .mentions import mentioned_sql
from .pii import find_into
from .redact import kinds_of

__all__ = ["checks_sql", "text_checks", "unmentionable_sql"]


def checks_sql(policy: Policy, m: Manifest, now: datetime, explode: str = "unnest") -> list[str]:
    """The checks over `snap` that need no text scan, one SQL text for both
    engines: each gives (item_id, user_id, why) for rows that should not be
    there. They read `content`, `decided` (at the cut-off), `later_fail` and
    `tp_items` (now)."""
    blur = policy.tagged_people is TaggedPeople.blur
    checks = [
        ("SELECT s.item_id, s.user_id, 'not in the export any more' FROM snap s "
         "LEFT JOIN content c ON c.item_id = s.item_id WHERE c.item_id IS NULL"),
        ("SELECT s.item_id, s.user_id, 'not eligible at the cut-off: ' || d.reason FROM snap s "
         "JOIN decided d ON d.item_id = s.item_id WHERE NOT d.eligible"),
        ("SELECT s.item_id, s.user_id, 'its author may not be used now: ' || lf.reason FROM snap s "
         "JOIN later_fail lf ON lf.user_id = s.user_id"),
        (f"SELECT s.item_id, s.user_id, 'deleted in the export' FROM snap s JOIN content c ON c.item_id = s.item_id "
         f"WHERE c.deleted_at <= {Compiler(policy, now).T}"),
        ("SELECT s.item_id, s.user_id, 'a person without an account objected to it' FROM snap s "
         "JOIN tp_items tp ON tp.item_id = s.item_id"
         + (" WHERE NOT (s.media IS NOT NULL AND s.faces_blurred > 0)" if blur else "")),
        ("SELECT s.item_id, s.user_id, 'it has an image path but no image' FROM snap s "
         "JOIN content c ON c.item_id = s.item_id WHERE c.media_path IS NOT NULL AND s.media IS NULL"),
    ]
    if policy.tagged_people is not TaggedPeople.ignore:
        # Under blur too: a blurred photo may show people who fail (CONTRACT rule 14), but its row never names them.
        checks.append(
            "SELECT t.item_id, t.user_id, 'tagged person ' || t.u || ' may not be used now: ' || lf.reason FROM "
            f"(SELECT item_id, user_id, {explode}(tagged) AS u FROM snap) t JOIN later_fail lf ON lf.user_id = t.u"
        )
    return checks


def unmentionable_sql(policy: Policy, m: Manifest) -> str:
    """The user ids whose handles no row may @mention: failing at the cut-off or now."""
    return (f"WITH {Compiler(policy, m.cutoff).people_ctes()} SELECT user_id FROM people "
            "WHERE reason_a IS NOT NULL OR reason_b IS NOT NULL UNION SELECT user_id FROM later_fail")


def text_checks(con: duckdb.DuckDBPyConnection, src: str, m: Manifest) -> list[str]:
    """Checks that read the text of `src(item_id, user_id, text, country)`:
    no @mention of a handle in `unmentionable(h)` (handles in `all_handles`),
    and nothing the build's redaction removes. In DuckDB; Spark runs them on
    its executors, a partition at a time."""
    checks = []
    if m.transforms_enabled.get("mentions", True):
        checks.append(
            f"SELECT s.item_id, s.user_id, 'it mentions @' || m.h || ', who may not be used' "
            f"FROM ({mentioned_sql(src, 'item_id', 'text', 'all_handles')}) m JOIN {src} s ON s.item_id = m.k "
            f"WHERE m.h IN (SELECT h FROM unmentionable)"
        )
    # Text redaction, re-checked: no row may still hold what the build's transforms remove.
    kinds = kinds_of(Transforms.model_validate(m.transforms_enabled))
    if kinds:
        find_into(con, src, "item_id", "text", "country", kinds, into="left_pii")
        checks.append(
            "SELECT s.item_id, s.user_id, 'its text still has ' || CASE f.kind WHEN 'email' THEN 'an email address' "
            "WHEN 'iban' THEN 'an IBAN' WHEN 'card' THEN 'a card number' ELSE 'a phone number' END "
            f"FROM (SELECT DISTINCT k, kind FROM left_pii) f JOIN {src} s ON s.item_id = f.k"
        )
    return checks
