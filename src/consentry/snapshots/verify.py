"""Verify: re-check every row of a snapshot against the current ledger and
export, independently of how it was built or purged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..engine.compile import Compiler
from ..engine.duck import connect, load_inputs
from ..ledger import Ledger
from ..policy import TaggedPeople, Transforms
from .shared import later_failures, third_party_now
from .images import metadata_left
from .purge import _export, _policy, _snapshot_view
from .mentions import handles_sql, mentioned_sql
from .pii import find_into
from .redact import install_sql, kinds_of
from .registry import Registry
from .repair import recover


@dataclass(frozen=True)
class Problem:
    item_id: str
    user_id: str | None
    why: str


def verify(ledger: Ledger, name: str, *, data: Path | None = None, now: datetime | None = None) -> tuple[int, list[Problem]]:
    """(rows checked, rows that should not be there). Checks: eligible at the
    cut-off; author and tagged people pass the person rules now; item not
    deleted; no objection by someone without an account; image present and
    without EXIF."""
    recover(ledger)  # a purge a crash interrupted is finished first: verify checks what is really there
    registry = Registry(ledger)
    rec = registry.require(name)
    m = rec.manifest
    policy = _policy(m)
    export = _export(m, data)
    watermark = ledger.watermark()
    now = now or datetime.now(UTC)
    folder = Path(rec.uri).parent
    con = connect()
    try:
        install_sql(con)
        load_inputs(con, export, ledger, max(now, m.cutoff), watermark=watermark)
        later_failures(con, policy, m.cutoff, now)
        third_party_now(con, policy, m.cutoff, now)
        _snapshot_view(con, rec, "item_id, user_id, tagged, bucket, media, faces_blurred, text")
        comp = Compiler(policy, m.cutoff)
        con.execute(
            f"""CREATE TEMP TABLE unmentionable AS WITH {comp.people_ctes()}
            SELECT DISTINCT lower(nfc_normalize(u.handle)) AS h FROM users u WHERE u.handle IS NOT NULL AND u.user_id IN (
              SELECT user_id FROM people WHERE reason_a IS NOT NULL OR reason_b IS NOT NULL
              UNION SELECT user_id FROM later_fail)"""
        )
        con.execute(f"CREATE TEMP TABLE decided AS {comp.decisions_sql()}")
        tag_check = policy.tagged_people is not TaggedPeople.ignore
        blur = policy.tagged_people is TaggedPeople.blur
        checks = [
            ("SELECT s.item_id, s.user_id, 'not in the export any more' FROM snap s "
             "LEFT JOIN content c ON c.item_id = s.item_id WHERE c.item_id IS NULL"),
            ("SELECT s.item_id, s.user_id, 'not eligible at the cut-off: ' || d.reason FROM snap s "
             "JOIN decided d ON d.item_id = s.item_id WHERE NOT d.eligible"),
            ("SELECT s.item_id, s.user_id, 'its author fails ' || lf.reason || ' now' FROM snap s "
             "JOIN later_fail lf ON lf.user_id = s.user_id"),
            (f"SELECT s.item_id, s.user_id, 'deleted in the export' FROM snap s JOIN content c ON c.item_id = s.item_id "
             f"WHERE c.deleted_at <= {Compiler(policy, now).T}"),
            ("SELECT s.item_id, s.user_id, 'a person without an account objected to it' FROM snap s "
             "JOIN tp_items tp ON tp.item_id = s.item_id"
             + (" WHERE NOT (s.media IS NOT NULL AND s.faces_blurred > 0)" if blur else "")),
            ("SELECT s.item_id, s.user_id, 'it has an image path but no image' FROM snap s "
             "JOIN content c ON c.item_id = s.item_id WHERE c.media_path IS NOT NULL AND s.media IS NULL"),
        ]
        if m.transforms_enabled.get("mentions", True):
            con.execute(f"CREATE TEMP TABLE all_handles AS {handles_sql('users')}")
            checks.append(
                f"SELECT s.item_id, s.user_id, 'it mentions @' || m.h || ', who may not be used' "
                f"FROM ({mentioned_sql('snap', 'item_id', 'text', 'all_handles')}) m JOIN snap s ON s.item_id = m.k "
                f"WHERE m.h IN (SELECT h FROM unmentionable)"
            )
        # Text redaction, re-checked: no row may still hold what the build's transforms remove.
        kinds = kinds_of(Transforms.model_validate(m.transforms_enabled))
        if kinds:
            texts = "(SELECT s.item_id, s.text, u.country FROM snap s LEFT JOIN users u ON u.user_id = s.user_id)"
            find_into(con, texts, "item_id", "text", "country", kinds, into="left_pii")
            checks.append(
                "SELECT s.item_id, s.user_id, 'its text still has ' || CASE f.kind WHEN 'email' THEN 'an email address' "
                "WHEN 'iban' THEN 'an IBAN' WHEN 'card' THEN 'a card number' ELSE 'a phone number' END "
                "FROM (SELECT DISTINCT k, kind FROM left_pii) f "
                "JOIN snap s ON s.item_id = f.k"
            )
        if tag_check:
            checks.append(
                "SELECT t.item_id, t.user_id, 'tagged person ' || t.u || ' fails ' || lf.reason || ' now' FROM "
                "(SELECT item_id, user_id, unnest(tagged) AS u FROM snap) t JOIN later_fail lf ON lf.user_id = t.u"
            )
        problems = [Problem(*row) for q in checks for row in con.execute(q).fetchall()]
        total = con.execute("SELECT count(*) FROM snap").fetchall()[0][0]
        media = [r for r in con.execute("SELECT item_id, user_id, media FROM snap WHERE media IS NOT NULL").fetchall()]
    finally:
        con.close()
    for item_id, user_id, rel in media:
        path = folder / rel
        if not path.is_file():
            problems.append(Problem(item_id, user_id, f"its image {rel} is missing"))
        elif m.transforms_enabled.get("strip_exif", True) and (left := metadata_left(path)):
            problems.append(Problem(item_id, user_id, f"its image {rel} still has metadata: {', '.join(left)}"))
    return int(total), sorted(problems, key=lambda p: (p.item_id, p.why))
