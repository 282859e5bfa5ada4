"""What `snapshot verify` checks, as SQL texts both engines run: the checks
over the rows (`checks_sql`, on DuckDB or Spark) and the checks that read the
text (`text_checks`, in DuckDB: in this process, or on Spark's executors).

`snapshot purge` removes what these checks find, by the same texts: the rows
that should not be there (`leaving_sql`, as `hits_sql`), the erased people
named in `tagged` (`untag_sql`) and the @mentions of people who may not be
used (`unmentionable_sql`). So after a purge, verify against the same export
finds none of them."""

from __future__ import annotations

from datetime import datetime

import duckdb

from ..engine.compile import Compiler
from ..engine.rules import PERSON_RULES, Reason
from ..policy import Policy, TaggedPeople, Transforms
from .manifest import Manifest
from .mentions import mentioned_sql
from .pii import find_into
from .redact import kinds_of

__all__ = ["OTHER_AUTHOR_SQL", "PERSON_CAUSE_RANK", "checks_sql", "drop_tagged_sql", "hits_sql", "leaving_sql", "text_checks", "unmentionable_sql", "untag_sql"]

#: Causes ranked below this are about a person (the author or someone tagged): the
#: rows of "people who may no longer be used". The others are about the item itself.
PERSON_CAUSE_RANK = 5


def leaving_sql(policy: Policy, now: datetime, explode: str = "unnest") -> str:
    """Every row of `snap` that should not be there, once per reason: the one
    home of that question, which `snapshot verify` reports and `snapshot purge`
    removes (so that after a purge, verify against the same export finds
    none). One SQL text for both engines; only the list-exploding function is
    named (`explode` on Spark).

    Columns: item_id, user_id (the author), bucket, media; `person`, whose
    status or item it is (the author, or the tagged person who fails);
    `cause` (a CONTRACT reason, `tagged:REASON`, `not_in_export` or
    `no_image`); `rank`, the order in which causes are named (a row is counted
    under its first; below `PERSON_CAUSE_RANK`, a person's); `why`, in words.

    Reads `snap`, `content` and `tags` (the export as it is now), `decided`
    (the decisions at the cut-off over the export as it is now), `later_fail`
    and `tp_items` (who and what may not be used now). The export is read as
    it is now, so whatever it corrected since the build (a row deleted, a
    birth date, a visibility) is found as well as what the ledger says."""
    blur = policy.tagged_people is TaggedPeople.blur
    unblurred = "NOT (s.media IS NOT NULL AND s.faces_blurred > 0)"
    person = ", ".join(f"'{r}'" for r in PERSON_RULES)
    cols = "s.item_id, s.user_id, s.bucket, s.media, s.user_id AS person"
    parts = [
        (f"SELECT {cols}, lf.reason AS cause, 1 AS rank, 'its author may not be used now: ' || lf.reason AS why "
         "FROM snap s JOIN later_fail lf ON lf.user_id = s.user_id"),
        (f"SELECT {cols}, d.reason, CASE WHEN d.reason IN ({person}) THEN 2 WHEN d.reason = 'tagged_person' THEN 4 "
         f"WHEN d.reason = 'content_deleted' THEN 5 WHEN d.reason = 'third_party_objected' THEN 8 ELSE 7 END, "
         "'not eligible at the cut-off: ' || d.reason FROM snap s JOIN decided d ON d.item_id = s.item_id WHERE NOT d.eligible"),
        (f"SELECT {cols}, 'content_deleted', 5, 'deleted in the export' FROM snap s JOIN content c ON c.item_id = s.item_id "
         f"WHERE c.deleted_at <= {Compiler(policy, now).T}"),
        (f"SELECT {cols}, 'not_in_export', 6, 'not in the export any more' FROM snap s "
         "LEFT JOIN content c ON c.item_id = s.item_id WHERE c.item_id IS NULL"),
        (f"SELECT {cols}, 'third_party_objected', 8, 'a person without an account objected to it' FROM snap s "
         "JOIN tp_items tp ON tp.item_id = s.item_id" + (f" WHERE {unblurred}" if blur else "")),
        (f"SELECT {cols}, 'no_image', 9, 'it has an image path but no image' FROM snap s "
         "JOIN content c ON c.item_id = s.item_id WHERE c.media_path IS NOT NULL AND s.media IS NULL"),
    ]
    if policy.tagged_people is not TaggedPeople.ignore:
        # The people the row names (under blur too: a blurred photo may show people who fail, CONTRACT rule 14,
        # but its row never names them), and those the export tags in it now (a tag added since the build), but
        # in a photo whose faces were blurred under blur.
        parts.append(
            "SELECT t.item_id, t.user_id, t.bucket, t.media, t.u, 'tagged:' || lf.reason, 3, "
            "'tagged person ' || t.u || ' may not be used now: ' || lf.reason FROM "
            f"(SELECT item_id, user_id, bucket, media, {explode}(tagged) AS u FROM snap "
            "UNION SELECT s.item_id, s.user_id, s.bucket, s.media, g.tagged_user_id FROM snap s "
            "JOIN tags g ON g.item_id = s.item_id" + (f" WHERE {unblurred}" if blur else "")
            + ") t JOIN later_fail lf ON lf.user_id = t.u"
        )
    return "\nUNION ALL\n".join(parts)


#: The snapshot's rows whose item the export gives another author: an item id never changes hands, so
#: these say the export is another platform's (a purge refuses one where they and the missing are most).
OTHER_AUTHOR_SQL = "SELECT count(*) AS n FROM snap s JOIN content c ON c.item_id = s.item_id WHERE c.user_id <> s.user_id"


def hits_sql(policy: Policy, now: datetime, explode: str = "unnest") -> str:
    """What a purge removes: `leaving_sql`'s rows (item_id, bucket, media, person, cause, rank)."""
    return f"SELECT item_id, bucket, media, person, cause, rank FROM ({leaving_sql(policy, now, explode)}) l"


def untag_sql(policy: Policy, users: str = "users", explode: str = "unnest") -> str:
    """(item_id, user_id, bucket, u, why): a person named in a row's `tagged` who
    must leave the list while the row stays: one no longer in the export's
    `users` (an account erased by deleting its rows), and, under a policy that
    does not check tagged people (`meta-2024`), one whose account is deleted
    or who asked for erasure (rule 6, now): erasure is no objection a policy
    may ignore. (Under the other policies such a row leaves whole.)"""
    erased = (f"lf.reason = '{Reason.account_deleted}' OR "
              if policy.tagged_people is TaggedPeople.ignore else "")
    return (f"SELECT t.item_id, t.user_id, t.bucket, t.u, CASE WHEN x.user_id IS NULL THEN 'who is no longer in the "
            "export' ELSE 'whose account is deleted or who asked for erasure' END AS why "
            f"FROM (SELECT item_id, user_id, bucket, {explode}(tagged) AS u FROM snap) t "
            f"LEFT JOIN later_fail lf ON lf.user_id = t.u LEFT JOIN {users} x ON x.user_id = t.u WHERE {erased}x.user_id IS NULL")


def drop_tagged_sql(gone: str, tagged: str) -> str:
    """DuckDB SQL: the list `tagged` without the ids in the list column `gone`
    (`untag_sql`'s, per row), in its order; unchanged where `gone` is NULL.
    A purge rewrites the column with it, in this process or on Spark's executors."""
    return f"CASE WHEN {gone} IS NULL THEN {tagged} ELSE list_filter({tagged}, lambda x: NOT list_contains({gone}, x)) END"


def checks_sql(policy: Policy, m: Manifest, now: datetime, explode: str = "unnest") -> list[str]:
    """The checks over `snap` that need no text scan, one SQL text for both
    engines: each gives (item_id, user_id, why) for rows that should not be
    there (`leaving_sql`: what a purge removes) or that name in `tagged` someone
    erased (`untag_sql`: what a purge takes out of the list; under a policy that
    checks tagged people such a row leaves whole)."""
    return [f"SELECT item_id, user_id, why FROM ({leaving_sql(policy, now, explode)}) l",
            f"SELECT item_id, user_id, 'it names ' || u || ' in tagged, ' || why FROM ({untag_sql(policy, 'users', explode)}) x"]


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
