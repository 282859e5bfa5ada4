"""Purge: take out of an existing snapshot, for real, every row that should
not be there now; then vacuum, so the old bytes are gone from disk.

Which rows is verify's question (`checks.leaving_sql`), so that after a purge
verify against the same export finds none: every event after the snapshot's
watermark (objections, erasures, consent withdrawals), accounts and items
deleted in the export (marked deleted, or their rows gone), whatever else the
export corrected since (a birth date, a visibility), and objections by people
without an account (rule 15). Erased people also leave the `tagged` lists of
rows that stay, and their @mentions are hidden. Only the buckets that hold
such rows are rewritten.

Every row is checked when the export's files are not the ones the last purge
checked every row against (`shared.export_checked`); otherwise only the
people with new ledger events and deleted accounts are looked at. An export
that lacks most of the snapshot's items is refused (a wrong `--data`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ..engine.compile import Compiler
from ..engine.duck import connect, load_inputs
from ..engine.rules import PERSON_RULES
from ..errors import SnapshotError
from ..timeutil import parse_instant
from ..ledger import Ledger
from ..policy import Policy
from ..sources import Export
from ..words import count
from .checks import (
    OTHER_AUTHOR_SQL,
    PERSON_CAUSE_RANK,
    drop_tagged_sql,
    hits_sql,
    unmentionable_sql,
    untag_sql,
)
from .manifest import Purge, content_digest, write_json
from .mentions import handles_sql, hide_sql, mentioned_sql
from . import people_index
from .ondisk import refuse_unless_ours
from .recovery import (
    claimed_builds,
    clear_intent,
    committed_at,
    failpoint,
    ledger_identity,
    new_intent,
    read_intent,
    sweep_staging,
    write_intent,
)
from .redact import install_sql
from .registry import Registry, SnapshotRecord
from .shared import (
    SCHEMA,
    current_export,
    export_checked,
    later_failures,
    remember_export_checked,
    snapshot_lock,
    snapshot_view,
    stored_policy,
    third_party_now,
    triggers_sql,
)

#: Counts of rows that stay, rewritten (not removed).
REWRITES = ("mentions_redacted", "tagged_ids_removed")

#: How the summary names the rows that left for the item itself, by cause.
ITEM_CAUSES = {
    "content_deleted": "deleted in the export",
    "not_in_export": "no longer in the export",
    "third_party_objected": "objected to by a person without an account",
    "no_image": "with an image path in the export but no image",
}


@dataclass
class PurgeResult:
    name: str
    from_watermark: int
    to_watermark: int
    people: int = 0
    rows_removed: int = 0
    files_removed: int = 0
    buckets_rewritten: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: Every row checked against the whole export (its files changed since the last such check, or none yet);
    #: else only the people with new ledger events and deleted accounts.
    full: bool = False
    #: Of `rows_removed`, those that left because of a person (the author or someone tagged fails a person
    #: rule now or at the cut-off), and how many people that is; the others left for the item itself
    #: (deleted, gone from the export, objected to by a person without an account, ...: `counts` says).
    person_rows: int = 0
    people_excluded: int = 0

    def item_rows(self) -> list[tuple[int, str]]:
        """The rows removed for the item itself (not a person's), by their first
        cause, in words: [(1, "deleted in the export"), ...], most first."""
        rows = {c: n for c, n in self.counts.items()
                if c not in PERSON_RULES and not c.startswith("tagged:") and c not in REWRITES}
        out = sorted(((n, ITEM_CAUSES[c]) for c, n in rows.items() if c in ITEM_CAUSES), key=lambda nw: (-nw[0], nw[1]))
        if late := {c: n for c, n in rows.items() if c not in ITEM_CAUSES}:  # not_public, private_message, ...
            out.append((sum(late.values()), f"not eligible at the cut-off by the export as it is now ({', '.join(sorted(late))})"))
        return out


def _find_duckdb(con: duckdb.DuckDBPyConnection, export: Export, ledger: Ledger, rec: SnapshotRecord, policy: Policy,
                 now: datetime, new_wm: int, full: bool) -> None:
    """Temp tables `hits`, `untag`, `remention(item_id, bucket, bad)` and `triggers`, in this process.
    `full`: every person; else everyone with an event after the watermark (with their whole history) and
    deleted accounts (the export is the one checked whole before, so nobody else can have changed)."""
    m = rec.manifest
    if full:
        load_inputs(con, export, ledger, max(now, m.cutoff), watermark=new_wm)
        con.execute("CREATE TEMP VIEW users_all AS SELECT * FROM users")
    else:
        load_inputs(con, export, ledger, max(now, m.cutoff), watermark=new_wm, touched_after=m.watermark)
        con.execute("ALTER VIEW users RENAME TO users_all")
        con.execute(
            "CREATE TEMP VIEW users AS SELECT * FROM users_all "
            "WHERE user_id IN (SELECT user_id FROM ledger_events) OR deleted_at IS NOT NULL"
        )
    later_failures(con, policy, m.cutoff, now)
    third_party_now(con, policy, m.cutoff, now)
    snapshot_view(con, rec, "item_id, user_id, tagged, bucket, media, faces_blurred, text")
    con.execute(f"CREATE TEMP TABLE decided AS {Compiler(policy, m.cutoff).decisions_sql()}")
    con.execute(f"CREATE TEMP TABLE hits AS {hits_sql(policy, now)}")
    con.execute(f"CREATE TEMP TABLE untag AS {untag_sql(policy, 'users_all')}")
    # Rows that stay but @mention someone who may not be used: rewritten with @[person] (verify's list).
    con.execute(f"CREATE TEMP TABLE all_handles AS {handles_sql('users_all')}")
    con.execute(f"""CREATE TEMP TABLE unmentionable AS SELECT DISTINCT lower(nfc_normalize(u.handle)) AS h
        FROM users_all u WHERE u.handle IS NOT NULL AND u.user_id IN ({unmentionable_sql(policy, m)})""")
    src = "snap" if policy.transforms.mentions else "(SELECT * FROM snap WHERE false)"
    con.execute(
        f"""CREATE TEMP TABLE remention AS
        SELECT m.k AS item_id, any_value(s.bucket) AS bucket, list(DISTINCT m.h) AS bad
        FROM ({mentioned_sql(src, 'item_id', 'text', 'all_handles')}) m JOIN snap s ON s.item_id = m.k
        WHERE m.h IN (SELECT h FROM unmentionable)
        GROUP BY m.k"""
    )
    con.execute(f"CREATE TEMP TABLE triggers AS {triggers_sql(m.watermark)}")


def _refuse_a_wrong_export(con: duckdb.DuckDBPyConnection, rec: SnapshotRecord, export: Export, other_author: int) -> None:
    """Refuse, before anything is written, an export that lacks the items of
    more than half the snapshot's rows, or gives them other authors (item ids
    never change hands: the same ids with other authors are another
    platform's, or a generator's, export): most likely not the current export
    of the platform it was built from (another one, a test export, a partial
    copy), whose purge would remove nearly everything for good.
    `other_author`: the snapshot's rows whose item the export gives another author."""
    m = rec.manifest
    missing = int(con.execute("SELECT count(DISTINCT item_id) FROM hits WHERE cause = 'not_in_export'").fetchall()[0][0])
    if (missing + other_author) == 0 or (missing + other_author) * 2 <= m.rows:
        return
    given = getattr(export, "folder", export)
    given = given.resolve() if isinstance(given, Path) else given
    what = (f"{missing:,} of {count(m.rows, 'row', 'rows')} have no item in the export {given}"
            + (f", and {other_author:,} have an item there by another author" if other_author else ""))
    raise SnapshotError(
        f"snapshot '{m.name}' ({Path(rec.uri).parent}): {what}: more than half, so it is most likely not the current "
        f"export of the platform the snapshot was built from ({m.export}); nothing was removed\n"
        f"  fix: pass that platform's current export: `consentry snapshot purge {m.name} --data FOLDER`; if the platform "
        f"really deleted these items, say so: `consentry snapshot purge {m.name} --data {given} --accept-missing-items`"
    )


def _tally(con: duckdb.DuckDBPyConnection, result: PurgeResult) -> tuple[list[dict], int, int]:
    """From `hits`, `untag`, `remention` and `triggers`: the counts, the people
    with their rows and the event that set the purge off, and the rows that
    stay but are rewritten (mentions hidden, erased people out of `tagged`).
    Rows that leave are not rewritten as well."""
    doomed = con.execute("SELECT count(DISTINCT item_id), count(DISTINCT bucket) FROM hits").fetchall()[0]
    result.rows_removed = int(doomed[0])
    # Rows per cause, each row counted once, under its first cause (by rank: a person's before the item's).
    con.execute("""CREATE TEMP TABLE firsts AS SELECT item_id, cause, rank FROM (
        SELECT item_id, cause, rank, row_number() OVER (PARTITION BY item_id ORDER BY rank, cause, person) AS n
        FROM hits) WHERE n = 1""")
    result.counts = dict(con.execute("SELECT cause, count(*) FROM firsts GROUP BY cause").fetchall())
    result.person_rows, result.people_excluded = (int(x or 0) for x in con.execute(
        f"""SELECT (SELECT count(*) FROM firsts WHERE rank < {PERSON_CAUSE_RANK}),
                   (SELECT count(DISTINCT person) FROM hits WHERE rank < {PERSON_CAUSE_RANK})""").fetchall()[0])
    con.execute("DELETE FROM remention WHERE item_id IN (SELECT item_id FROM hits)")
    remention = int(con.execute("SELECT count(*) FROM remention").fetchall()[0][0])
    if remention:
        result.counts["mentions_redacted"] = remention
    con.execute("""CREATE TEMP TABLE retag AS SELECT item_id, any_value(bucket) AS bucket, list(DISTINCT u) AS gone
        FROM untag WHERE item_id NOT IN (SELECT item_id FROM hits) GROUP BY item_id""")
    retag = int(con.execute("SELECT count(*) FROM retag").fetchall()[0][0])
    if retag:
        result.counts["tagged_ids_removed"] = retag
    # One row per person whose rows left: the author of an item that left for itself (deleted, gone from
    # the export, a third party's objection), or the person who fails (the author, or someone tagged).
    # Each with the event that set its removal off, for its first cause (`triggers_sql`): the person's own
    # (an objection, not a notice or a repeat after it), or a third party's objection to one of their items.
    people = [
        {"user_id": u, "cause": c, "rows": int(n), "trigger_seq": None if s is None else int(s)}
        for u, c, n, s in con.execute(
            """WITH chosen AS (
                 SELECT person, substr(min(lpad(CAST(rank AS VARCHAR), 2, '0') || cause), 3) AS cause,
                        count(DISTINCT item_id) AS n
                 FROM hits WHERE person IS NOT NULL GROUP BY person)
               SELECT c.person, replace(c.cause, 'tagged:', ''), c.n,
                      COALESCE(min(p.seq), min(i.seq))
               FROM chosen c
               LEFT JOIN triggers p ON p.user_id = c.person AND p.reason = replace(c.cause, 'tagged:', '')
               LEFT JOIN (SELECT h.person, t.seq FROM hits h JOIN triggers t ON t.item_id = h.item_id
                          AND t.reason = h.cause) i ON i.person = c.person AND c.cause = 'third_party_objected'
               GROUP BY c.person, c.cause, c.n ORDER BY c.person"""
        ).fetchall()
    ]
    result.people = len(people)
    return people, remention, retag


def _rewrite_duckdb(con: duckdb.DuckDBPyConnection, dt, buckets: list[int], mentions: bool,  # noqa: ANN001 - a DeltaTable
                    commit: dict) -> None:
    """Write the touched buckets back without the rows that leave, with delta-rs."""
    import pyarrow as pa
    from deltalake import CommitProperties, write_deltalake

    files = dt.file_uris(file_pruning_predicate=[("bucket", "in", [str(b) for b in buckets])])
    step = hide_sql("r.bad", "s.text") if mentions else "s.text"
    rewritten = {"text": f"{step} AS text", "tagged": f"{drop_tagged_sql('g.gone', 's.tagged')} AS tagged"}
    cols = ", ".join(rewritten.get(f.name, f"s.{f.name}") for f in SCHEMA)
    keep = con.sql(
        f"""SELECT {cols} FROM read_parquet({files!r}, hive_partitioning = true, hive_types = {{'bucket': INTEGER}}) s
        LEFT JOIN remention r ON r.item_id = s.item_id
        LEFT JOIN retag g ON g.item_id = s.item_id
        WHERE s.item_id NOT IN (SELECT item_id FROM hits)"""
    ).to_arrow_reader(200_000)
    write_deltalake(
        dt,
        pa.RecordBatchReader.from_batches(SCHEMA, (b.cast(SCHEMA) for b in keep)),
        mode="overwrite",
        predicate=f"bucket IN ({', '.join(str(b) for b in buckets)})",
        partition_by=["bucket"],
        commit_properties=CommitProperties(custom_metadata=commit),
    )


def purge(
    ledger: Ledger,
    name: str,
    *,
    data: str | Path | None = None,
    now: datetime | None = None,
    say: Callable[[str], None] = lambda _: None,
    spark=None,  # noqa: ANN001 - a pyspark SparkSession: Spark finds the rows and rewrites the buckets
    accept_missing_items: bool = False,
) -> PurgeResult:
    """`accept_missing_items`: purge even when the export lacks the items of
    more than half the snapshot's rows (refused otherwise, as a wrong export)."""
    from deltalake import DeltaTable

    registry = Registry(ledger)
    rec = registry.require(name)
    refuse_unless_ours(rec)  # moved, or written to by another tool: say so by name and path, before any lock or scan
    folder = Path(rec.uri).parent
    t0 = time.perf_counter()
    for line in sweep_staging(folder.parent, claimed_builds(registry.all()), ledger_identity(ledger.url)):
        say(line)
    with snapshot_lock(folder):
        finish_pending(registry, rec, say)  # a purge killed before: complete it (or drop it) first
        new_wm = ledger.watermark()  # before the clock: every event up to it was received before `now`
        started = datetime.now(UTC)
        now = parse_instant(now, what="time `now`") if now is not None else started  # text, naive (UTC) or aware
        rec = registry.require(name)  # re-read under the lock: another purge may have run
        m = rec.manifest
        if (settled := ledger.settled(new_wm, now, after_seq=m.watermark)) < new_wm:
            say(f"events from #{settled + 1} on take effect later than now: a later purge applies them")
            new_wm = settled
        policy = stored_policy(m)
        export = current_export(m, data, at=folder)
        # Taken before the export is read: a file changed while this purge reads it is checked again next time.
        fingerprint = export.fingerprint()
        full = export_checked(folder) != fingerprint
        if full:
            say("the export's files are not those every row was last checked against: checking every row")
        con = connect()
        found = None
        try:
            install_sql(con)
            if spark is None:
                _find_duckdb(con, export, ledger, rec, policy, now, new_wm, full)
                # Only when the export's files changed since the last full check (another export always has)
                other_author = int(con.execute(OTHER_AUTHOR_SQL).fetchall()[0][0]) if full else 0
            else:
                from .spark_purge import SparkFind

                found = SparkFind(spark, export, ledger, rec, policy, now, new_wm, full)
                found.into(con)
                other_author = found.other_author
            if not accept_missing_items:
                _refuse_a_wrong_export(con, rec, export, other_author)
            result = PurgeResult(name, m.watermark, new_wm, full=full)
            people, remention, retag = _tally(con, result)
            if result.rows_removed == 0 and not remention and not retag:
                m = m.model_copy(update={"watermark": new_wm})
                registry.advance(m)
                write_json(folder, m)
                if full:
                    remember_export_checked(folder, fingerprint)
                result.seconds = time.perf_counter() - t0
                say(f"nothing to purge; watermark {m.watermark}")
                return result

            buckets = [b for (b,) in con.execute(
                "SELECT bucket FROM hits UNION SELECT bucket FROM remention UNION SELECT bucket FROM retag ORDER BY 1"
            ).fetchall()]
            result.buckets_rewritten = len(buckets)  # with those where only mentions are hidden
            media = [p for (p,) in con.execute("SELECT DISTINCT media FROM hits WHERE media IS NOT NULL").fetchall()]
            dt = DeltaTable(rec.uri)
            # The intent first (on disk before the commit): whatever happens after
            # the commit, the next command finds it and finishes the purge.
            intent = new_intent(
                snapshot=name, base_version=dt.version(), from_watermark=m.watermark, to_watermark=new_wm,
                started=started.isoformat(), people=people, rows_removed=result.rows_removed, counts=result.counts,
                media=media,
            )
            write_intent(folder, intent)
            failpoint("purge:intent")
            facts = {"purge": {"from_watermark": m.watermark, "to_watermark": new_wm, "rows_removed": result.rows_removed,
                               "counts": result.counts, "intent": intent["id"]}}
            commit = {"consentry.purge": json.dumps(facts, sort_keys=True)}
            say(f"rewriting {len(buckets)} of {count(m.buckets, 'bucket', 'buckets')} without {count(result.rows_removed, 'row', 'rows')} "
                f"({count(remention + retag, 'row', 'rows')} re-redacted)")
            if found is None:
                _rewrite_duckdb(con, dt, buckets, policy.transforms.mentions, commit)
            else:
                found.rewrite(con, dt, buckets, commit)
            failpoint("purge:commit")
        finally:
            con.close()
            if found is not None:
                found.close()
        done = _complete(registry, rec, intent, finished=datetime.now(UTC))
        result.files_removed = done.files_removed
        if full:  # after the record: a purge killed before it checks every row again
            remember_export_checked(folder, fingerprint)
    result.seconds = time.perf_counter() - t0
    say(f"purged {count(result.rows_removed, 'row', 'rows')} of {count(result.people, 'person', 'people')}; "
        f"{count(result.files_removed, 'file', 'files')} deleted")
    return result


def finish_pending(registry: Registry, rec: SnapshotRecord, say: Callable[[str], None] = lambda _: None) -> str | None:
    """Complete a purge a crash interrupted after its commit, or drop its intent
    when the commit never happened (nothing changed then; the next purge redoes
    it). The caller holds the snapshot's lock. Returns what was done."""
    from deltalake import DeltaTable

    folder = Path(rec.uri).parent
    intent = read_intent(folder)
    if intent is None:
        return None
    hit = committed_at(rec.uri, intent["id"], int(intent["base_version"]))
    if hit is None:
        # Files the killed write left behind belong to no version: vacuum removes them.
        DeltaTable(rec.uri).vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False, full=True)
        clear_intent(folder)
        say(f"{rec.name}: a purge stopped before its commit; nothing had changed, it is done again now")
        return "discarded"
    _complete(registry, rec, intent, finished=hit[1])
    say(f"{rec.name}: finished a purge that stopped after its commit ({count(intent['rows_removed'], 'row', 'rows')})")
    return "completed"


def _complete(registry: Registry, rec: SnapshotRecord, intent: dict, *, finished: datetime) -> Purge:
    """Everything after the commit, each step safe to repeat: the images of the
    removed rows deleted, the old files vacuumed, the purge recorded (once: the
    registry's watermark says whether it was), the manifest written, the
    intent cleared. `finished` is the commit's time, so models registered
    after it are not flagged for rows they never saw."""
    from deltalake import DeltaTable

    folder = Path(rec.uri).parent
    dt = DeltaTable(rec.uri)
    if "files_removed" not in intent:
        # Counted before anything is deleted, and kept in the intent, so that a completion repeated after a
        # crash says what this purge deleted. Vacuum lists every file the log ever removed, those an earlier
        # purge already deleted among them (they were counted twice): only files still on disk count.
        listed = dt.vacuum(retention_hours=0, dry_run=True, enforce_retention_duration=False, full=True)
        intent = {**intent, "files_removed": sum(1 for f in listed if (Path(rec.uri) / f).exists())
                  + sum(1 for rel in intent["media"] if (folder / rel).is_file())}
        write_intent(folder, intent)
    m = registry.require(rec.name).manifest
    # Not recorded yet? Known by the intent, not by the watermark: a purge with no new event (the export deleted
    # an item or an account) moves none, and went unrecorded: no purge, no flagged model, a manifest of old rows.
    frm, to = int(intent["from_watermark"]), int(intent["to_watermark"])
    recorded = any(p.intent == intent["id"] for p in m.purges) or (  # or by the watermark, as before purges kept it
        m.watermark >= to > frm and all(p.intent is None for p in m.purges[-1:]))
    for rel in intent["media"]:
        (folder / rel).unlink(missing_ok=True)
    people_index.forget(folder)  # who was in the old version: the ids of the people just removed among them
    failpoint("purge:media")
    if not recorded:  # a recorded purge was vacuumed before: again, it only added commits the manifest did not name
        dt.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False, full=True)
    failpoint("purge:vacuum")
    purge_rec = Purge(
        at=finished, from_watermark=frm, to_watermark=to,
        people=len(intent["people"]), rows_removed=int(intent["rows_removed"]),
        files_removed=int(intent["files_removed"]), table_version=dt.version(), counts=intent["counts"],
        intent=intent["id"],
    )
    if not recorded:
        m = m.model_copy(
            update={
                "watermark": purge_rec.to_watermark, "rows": m.rows - purge_rec.rows_removed,
                "digest": content_digest(folder), "table_version": dt.version(), "purges": [*m.purges, purge_rec],
            }
        )
        registry.record_purge(m, purge_rec, intent["people"], datetime.fromisoformat(intent["started"]))
        failpoint("purge:recorded")
    write_json(folder, m)
    clear_intent(folder)
    return purge_rec
