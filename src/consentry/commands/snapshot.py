"""`consentry snapshot build|purge|verify|list|show`: training snapshots on Delta Lake."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..errors import ConsentryError, InputError
from ..timeutil import iso, parse_instant
from ..words import count
from ._common import (
    AtOpt,
    DataOpt,
    EngineOpt,
    LedgerOpt,
    PolicyOpt,
    SparkConfOpt,
    SparkMasterOpt,
    checked_export,
    err,
    finish_interrupted,
    friendly,
    open_ledger,
    out,
    show,
    spark_for,
)

app = typer.Typer(help="Training snapshots on Delta Lake: build, purge, verify.", no_args_is_help=True)


@app.command("build")
@friendly
def snapshot_build(
    data: DataOpt,
    at: AtOpt,
    name: Annotated[str, typer.Option("--name", help="A new name: snapshots are never overwritten.")],
    policy: PolicyOpt = "recommended",
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="Folder for the snapshot (default: $CONSENTRY_HOME/snapshots/NAME).")
    ] = None,
    buckets: Annotated[int, typer.Option(help="Hash buckets of user_id: a purge rewrites only the buckets it touches.")] = 64,
    ledger: LedgerOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Write the eligible items, transformed, into a new Delta table with a manifest.

    With --engine spark, Spark computes the rows and writes the Parquet parts."""
    from ..policy import load_policy
    from ..snapshots import build

    t = parse_instant(at, what="cut-off time")
    pol = load_policy(policy)
    spark = spark_for(engine, spark_master, conf)
    export = checked_export(data, spark=spark)
    with open_ledger(ledger) as led, err.status("building ...") as status:
        m = build(export, led, pol, t, name, out=out_dir, buckets=buckets, say=lambda s: status.update(Text(s)), spark=spark)
    _print_manifest(m)


def _print_manifest(m) -> None:  # noqa: ANN001
    table = Table(title=f"snapshot '{m.name}': {count(m.rows, 'row', 'rows')}, policy {m.policy} {m.policy_hash}, cut-off {iso(m.cutoff)}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for k, v in sorted(m.excluded_at_build.items()):
        table.add_row(f"left out at build: {k}", f"{v:,}")
    for k, v in m.transforms.items():
        table.add_row(f"transform: {k}", f"{v:,}")
    for p in m.purges:
        table.add_row(f"purge {iso(p.at)} ({_events(p.from_watermark, p.to_watermark)})", f"-{p.rows_removed:,}")
    show(table)
    out.print(f"ledger watermark {m.watermark}, Delta version {m.table_version}, digest {m.digest}", highlight=False)


def _purged_line(name: str, r) -> str:  # noqa: ANN001 - a PurgeResult
    """One purge's outcome as a DPO reads it: rows removed and mentions hidden
    are both changes to the snapshot (a purge that only hides mentions still
    rewrites buckets, so it is not "nothing"). "of N people" counts the people
    who may no longer be used; rows that left for the item itself (deleted,
    gone from the export, a third party's objection) are named by cause, not
    counted as people ("removed 52 rows of 5 people" counted a person who had
    only deleted a post)."""
    hidden = r.counts.get("mentions_redacted", 0)
    untagged = r.counts.get("tagged_ids_removed", 0)
    if not _changed(r):
        return f"{name}: nothing to remove (ledger up to event {r.to_watermark})"
    people = f"of {count(r.people_excluded, 'person', 'people')}"
    if items := r.item_rows():  # rows that left for the item itself: named by cause, not counted as people
        parts = [f"{r.person_rows:,} {people} who may no longer be used"] if r.person_rows else []
        parts += [f"{n:,} {words}" for n, words in items]
        removed = f"removed {count(r.rows_removed, 'row', 'rows')}: {', '.join(parts)}"
    else:
        removed = f"removed {count(r.rows_removed, 'row', 'rows')} {people}"
    return (f"{name}: {_events(r.from_watermark, r.to_watermark)}: {removed}; "
            f"hid @mentions in {count(hidden, 'remaining row', 'remaining rows')}; "
            + (f"took erased people out of `tagged` in {count(untagged, 'remaining row', 'remaining rows')}; " if untagged else "")
            + f"rewrote {count(r.buckets_rewritten, 'bucket', 'buckets')}, {count(r.files_removed, 'file', 'files')} "
            f"deleted ({r.seconds:.1f}s)")


def _events(after: int, upto: int) -> str:
    """Which ledger events a purge applied; none when only the export changed
    (it printed "events 2705..2704")."""
    if upto <= after:
        return f"no new ledger event (up to {upto})"
    return f"events {after + 1}..{upto}"


def _changed(r) -> bool:  # noqa: ANN001 - a PurgeResult
    return bool(r.rows_removed or r.counts.get("mentions_redacted", 0) or r.counts.get("tagged_ids_removed", 0))


@app.command("purge")
@friendly
def snapshot_purge(
    name: Annotated[Optional[str], typer.Argument(help="The snapshot (default with --all: every snapshot).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Purge every snapshot in the ledger (for cron).")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Keep purging as new events arrive, until interrupted.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between rounds with --watch.")] = 60.0,
    data: Annotated[Optional[str], typer.Option("--data", help="The current export (default: the one built from).")] = None,
    accept_missing_items: Annotated[bool, typer.Option(
        "--accept-missing-items",
        help="Purge even when the export lacks the items of more than half a snapshot's rows (refused otherwise, "
             "as the wrong export): the platform really deleted them.")] = False,
    ledger: LedgerOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Remove from existing snapshots every row that should not be there now, and vacuum the old files away.

    Rows of everyone the ledger now excludes, and whatever the export deleted or corrected since (the whole
    export is checked again when its files changed). With --engine spark, Spark finds the rows and rewrites
    the touched buckets."""
    import time

    from ..snapshots import Registry, purge

    if not name and not every:
        raise ConsentryError("name a snapshot, or pass --all")
    if watch and not 0 < interval < float("inf"):
        raise InputError(f"{interval:g} is not a number of seconds between rounds", where="--interval",
                         fix="pass more than 0, e.g. --interval 60")
    spark = spark_for(engine, spark_master, conf)
    with open_ledger(ledger) as led:
        first = True
        failing: dict[str, str] = {}  # snapshot -> what stopped its purge (a watch logs it once, until it changes)
        if watch:  # the log's first line: what is watched, how often
            out.print(f"{iso(datetime.now(UTC))} watching {f'snapshot {name}' if name else 'every snapshot'}: a round "
                      f"every {interval:g}s, each change logged (Ctrl-C stops)", highlight=False)
        while True:
            names = [name] if name else [r.name for r in Registry(led).all()]
            if not names and first:  # `--all` printed nothing at all: was anything purged?
                said = "no snapshot in this ledger yet: nothing to purge"
                out.print(f"{iso(datetime.now(UTC))} {said}; each round looks again" if watch else said, highlight=False)
            failed: dict[str, str] = {}
            for n in names:
                try:
                    r = purge(led, n, data=data, spark=spark, accept_missing_items=accept_missing_items)
                except ConsentryError as exc:
                    if name:  # one snapshot asked for: its error is the command's
                        raise
                    # One moved snapshot or lost export must not keep the objectors' rows in all the others.
                    failed[n] = str(exc)
                    if not watch or failing.get(n) != failed[n]:
                        stamp = f"{iso(datetime.now(UTC))} " if watch else ""
                        err.print(f"{stamp}[bold red]error:[/] {escape(failed[n])}", highlight=False, markup=True,
                                  soft_wrap=True)
                    continue
                if not watch:
                    out.print(_purged_line(n, r), highlight=False)
                elif first or _changed(r) or n in failing:  # a watch's log: the start, then what changed, each line timed
                    out.print(f"{iso(datetime.now(UTC))} {_purged_line(n, r)}", highlight=False, soft_wrap=True)
            failing = failed
            if not watch:
                if failed:
                    err.print(f"[bold red]error:[/] {len(failed)} of {count(len(names), 'snapshot', 'snapshots')} could "
                              f"not be purged: {escape(', '.join(failed))} (each is named above, with its fix); the "
                              "others were purged", highlight=False, markup=True, soft_wrap=True)
                    raise typer.Exit(1)
                return
            first = False
            time.sleep(interval)


@app.command("verify")
@friendly
def snapshot_verify(
    name: Annotated[str, typer.Argument(help="The snapshot.")],
    data: Annotated[Optional[str], typer.Option("--data", help="The current export (default: the one built from).")] = None,
    ledger: LedgerOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Re-check every row against the current ledger; exit 1 if any should not be there.

    With --engine spark, Spark decides and reads the snapshot's rows."""
    from ..snapshots import Registry, verify

    spark = spark_for(engine, spark_master, conf)
    with open_ledger(ledger) as led, err.status("verifying ..."):
        total, problems = verify(led, name, data=data, spark=spark)
        where = Path(Registry(led).require(name).uri).parent
    if not problems:
        # Say what was checked ("all 7,175 rows may be there" left the reader guessing).
        out.print(Text(f"{name}: {count(total, 'row', 'rows')} checked against the ledger and export as they are now: "
                       "every one may still be used, and none holds personal data, a hidden @mention or image "
                       "metadata that should be gone.", style="green"), highlight=False)
        return
    table = [p for p in problems if p.item_id is None]  # the table as a whole (changed outside consentry)
    rows = [p for p in problems if p.item_id is not None]
    if table:
        for p in table:
            err.print(Text(f"snapshot '{name}' ({where}): {p.why}", style="bold red"), highlight=False)
            if p.fix:
                err.print(f"  fix: {p.fix}", highlight=False, markup=False)
    if rows:
        # Rows, then their problems: "3 of 7,169 rows should not be there" was one row with three problems.
        bad = len({p.item_id for p in rows})
        err.print(Text(f"{name}: {bad:,} of {count(total, 'row', 'rows')} should not be there"
                       + (f" ({len(rows):,} problems):" if len(rows) != bad else ":"), style="bold red"), highlight=False)
        for p in rows[:50]:
            err.print(f"  {p.item_id} (user {p.user_id}): {p.why}", highlight=False, markup=False)
        if len(rows) > 50:
            err.print(f"  ... and {len(rows) - 50:,} more", highlight=False)
        if not table:
            err.print(f"run `consentry snapshot purge {name}`, then verify again", highlight=False)
    raise typer.Exit(1)


@app.command("list")
@friendly
def snapshot_list(ledger: LedgerOpt = None) -> None:
    """Every snapshot: rows, purges, ledger events not purged yet, models (after finishing what a crash interrupted)."""
    from ..snapshots import Registry, on_disk, purge_backlog

    problems = []
    with open_ledger(ledger) as led:
        finish_interrupted(led)
        reg = Registry(led)
        waiting = {b.snapshot: b for b in purge_backlog(led.reader)}
        table = Table("name", "policy", "cut-off", "rows", "built", "purges", "watermark", "not purged yet", "models", "where")
        for r in reg.all():
            m = r.manifest
            models = ", ".join(f"{x.name}{' (FLAGGED)' if x.flagged else ''}" for x in reg.models(r.name)) or "-"
            b = waiting.get(r.name)
            behind = (f"{count(b.events, 'event', 'events')} since {iso(b.oldest_recorded_at)}"
                      if b and b.oldest_recorded_at else "nothing")
            # A moved folder or a table another tool wrote to was listed as if fine.
            state, problem = on_disk(r)
            where = r.uri if state == "ok" else Text.assemble(r.uri, " ", (state, "bold red" if problem else "yellow"))
            if problem:
                problems.append(problem)
            table.add_row(r.name, m.policy, iso(m.cutoff), f"{m.rows:,}", f"{m.rows_built:,}", str(len(m.purges)),
                          str(m.watermark), behind, models, where)
    show(table, empty="no snapshots yet; build one with `consentry snapshot build`")
    for problem in problems:
        err.print(f"[bold red]error:[/] {escape(problem)}", highlight=False, markup=True, soft_wrap=True)


@app.command("move")
@friendly
def snapshot_move(
    name: Annotated[str, typer.Argument(help="The snapshot.")],
    to: Annotated[Path, typer.Argument(help="Its new folder (created), or where it was moved by hand.")],
    ledger: LedgerOpt = None,
) -> None:
    """Move a snapshot's folder, or tell consentry where it was moved (the very build, as recorded)."""
    from ..snapshots import move

    with open_ledger(ledger) as led:
        old, new, moved = move(led, name, to)
    if moved:
        out.print(f"{name}: moved from {old} to {new}", highlight=False)
    else:
        out.print(f"{name}: found at {new} (moved there from {old}, its files as recorded); recorded", highlight=False)


@app.command("show")
@friendly
def snapshot_show(name: Annotated[str, typer.Argument(help="The snapshot.")], ledger: LedgerOpt = None) -> None:
    """The manifest: what went in, what was left out and why, what was purged."""
    from ..snapshots import Registry, on_disk

    with open_ledger(ledger) as led:
        rec = Registry(led).require(name)
        _print_manifest(rec.manifest)
        _, problem = on_disk(rec)  # the manifest says what was recorded; say when the disk no longer agrees
    if problem:
        err.print(f"[bold red]error:[/] {escape(problem)}", highlight=False, markup=True, soft_wrap=True)
