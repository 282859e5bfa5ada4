"""`consentry model register|list` and `consentry impact`: lineage from snapshots to models and people."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..errors import InputError
from ..timeutil import iso
from ..words import count
from ._common import LedgerOpt, err, finish_interrupted, friendly, open_ledger, out, show

app = typer.Typer(help="Models trained on snapshots (lineage).", no_args_is_help=True)
top = typer.Typer()


@app.command("register")
@friendly
def model_register(
    name: Annotated[str, typer.Argument(help="The model's name (once).")],
    snapshot: Annotated[str, typer.Option("--snapshot", help="The snapshot it was trained on.")],
    mlflow_run: Annotated[Optional[str], typer.Option("--mlflow-run", help="Also log the snapshot as this MLflow run's input.")] = None,
    version: Annotated[Optional[int], typer.Option(
        "--version", min=0, help="The table version the training read (DeltaTable(...).version() when it started), "
                                 "if a purge changed the snapshot since; default: the version now.")] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Record that a model was trained on a snapshot as it is now, or as it was at --version."""
    import getpass

    from ..snapshots import register_model

    with open_ledger(ledger) as led:
        rec = register_model(led, name, snapshot, mlflow_run=mlflow_run, actor=f"cli:{getpass.getuser()}",
                             version=version)
    out.print(f"model {rec.name}: trained on {rec.snapshot} version {rec.table_version} ({count(rec.rows, 'row', 'rows')}, {rec.digest})",
              highlight=False)


@app.command("list")
@friendly
def model_list(ledger: LedgerOpt = None) -> None:
    """Models and whether their snapshot lost rows since they were trained."""
    from ..snapshots import Registry

    with open_ledger(ledger) as led:
        finish_interrupted(led)
        table = Table("model", "snapshot", "version", "rows", "registered", "rows purged since", "status")
        for x in Registry(led).models():
            status = Text("retrain or unlearn", style="bold red") if x.flagged else Text("current", style="green")
            since = f"{x.rows_purged_since:,}" + (f" (+{x.rows_rewritten_since:,} rewritten)" if x.rows_rewritten_since else "")
            table.add_row(x.name, x.snapshot, str(x.table_version), f"{x.rows:,}", iso(x.registered_at), since, status)
    show(table, empty="no models registered yet; record one with `consentry model register NAME --snapshot SNAPSHOT`")


@top.command()
@friendly
def impact(user_id: Annotated[str, typer.Argument(help="The person.")], ledger: LedgerOpt = None) -> None:
    """The snapshots and models that hold or held a person's data."""
    from ..snapshots import impact as run

    with open_ledger(ledger) as led:
        finish_interrupted(led)
        found = run(led, user_id, check_user=True)
    if found.user_known is False and not found.unchecked:
        # "no snapshot holds their rows" reassured about an id that is nobody's (a typo, another platform's).
        which = "the export" if len(found.exports) == 1 else "any of the exports"
        raise InputError(f"not a user of {which} the snapshots were built from ({', '.join(found.exports)}), and the "
                         "ledger has no event for them", where=user_id,
                         fix="check the id: it is a user_id of the export's users table (as `consentry ledger show` takes)")
    if not found and not found.unchecked:
        # Not "now or before": a photo that tagged them may have left with its author's rows, unrecorded for them.
        out.print(f"{user_id}: no snapshot holds their rows or photos that tag them now, and no purge was recorded "
                  "for them.", highlight=False)
        return
    for s in found:
        # Their rows, not the snapshot's: "no rows now" read as an empty snapshot.
        state = f"{count(s.rows_now, 'row', 'rows')} of theirs now" if s.rows_now else "none of their rows now"
        if s.tagged_now:  # photos of others that show them: their data too
            state += f", and {count(s.tagged_now, 'photo', 'photos')} of others that tag them"
        out.print(f"[bold]{escape(s.snapshot)}[/] " + escape(f"(built {iso(s.built_at)}): {state}"), highlight=False, markup=True)
        for p in s.purged:
            out.print(f"  purged {iso(p['purged_at'])}: {count(p['rows'], 'row', 'rows')} ({p['cause']})", highlight=False)
        for mod in s.models:
            out.print(escape(f"  model {mod.name} was trained on it ({iso(mod.registered_at)}): ")
                      + ("[bold red]retraining or unlearning is due[/]" if mod.flagged else "its snapshot still holds this person's rows"),
                      highlight=False, markup=True)
    for u in found.unchecked:
        # Never left out: whether it holds this person is unknown, and the person must not be told less.
        out.print(f"[bold red]{escape(u.snapshot)}: cannot be checked[/]" + escape(f": {u.why}"), highlight=False, markup=True)
        for p in u.purged:
            out.print(f"  purged {iso(p['purged_at'])}: {count(p['rows'], 'row', 'rows')} ({p['cause']})", highlight=False)
        for mod in u.models:
            out.print(escape(f"  model {mod.name} was trained on it ({iso(mod.registered_at)})"), highlight=False, markup=True)
    if found.unchecked:
        names = ", ".join(u.snapshot for u in found.unchecked)
        n = count(len(found.unchecked), "snapshot", "snapshots")
        fixes = "".join(f"\n  fix ({u.snapshot}): {u.fix}" for u in found.unchecked)
        err.print(f"[bold red]error:[/] {escape(f'{n} could not be checked ({names}), so this answer is incomplete')}"
                  + escape(fixes + "\n  then ask again"), highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(1)
