"""`consentry validate`, `evaluate` and `explain`: check an export, decide every item, show why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .. import config
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
    err,
    friendly,
    opened_platform,
    out,
    show,
    spark_for,
)

top = typer.Typer()


@top.command()
@friendly
def validate(
    data: DataOpt,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Check an export against the contract; every problem is named with its file, row and fix.

    With --engine spark, the checks run as Spark jobs over the files Spark reads."""
    from ..platform import spark_check
    from ..sources import ValidationMemo, open_export

    spark = spark_for(engine, spark_master, conf)
    check = spark_check(spark) if spark is not None else None
    with err.status(Text(f"checking {data} ...")):
        _, report, _ = open_export(data, memo=None, check=check)
    ValidationMemo(config.validation_memo_path()).put(report)
    table = Table("table", "format", "rows", title=f"{data}: valid")
    for name, n in report.rows.items():
        table.add_row(name, report.formats[name], f"{n:,}")
    show(table)


@top.command()
@friendly
def evaluate(
    data: DataOpt,
    at: AtOpt,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the decisions (.parquet).")],
    policy: PolicyOpt = "recommended",
    ledger: LedgerOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Decide every item at the cut-off; write item_id, user_id, eligible, reason."""
    t = parse_instant(at, what="cut-off time")
    from ..engine import decisions_path

    decisions_path(out_file, parts=engine == "spark")  # a bad --out is refused before the export is read
    with opened_platform(data, policy, ledger, engine, spark_master, conf) as platform:
        with err.status(f"deciding on {engine} ..."):
            result = platform.evaluate(t, out_file)
        pol = platform.policy
    print_counts(result)
    where = "a folder of Parquet parts " if engine == "spark" else ""
    out.print(
        f"wrote {count(result.items, 'decision', 'decisions')} to {where}{out_file} in {result.seconds:.1f}s "
        f"(policy {pol.name} {pol.hash}, ledger up to event #{result.watermark}, engine {engine})",
        highlight=False,
    )


def print_counts(result) -> None:  # noqa: ANN001
    from ..engine import MEANING

    table = Table(title=f"Decisions at {iso(result.at)} under policy '{result.policy_name}'")
    table.add_column("#", justify="right")
    table.add_column("reason")
    table.add_column("items", justify="right")
    table.add_column("share", justify="right")
    table.add_column("meaning", style="dim")
    total = result.items or 1
    for reason, n in result.ordered_counts():
        style = "bold green" if reason == "eligible" else ("" if n else "dim")
        table.add_row(str(reason.number), reason.value, f"{n:,}", f"{100 * n / total:.1f}%", MEANING[reason], style=style)
    table.add_section()
    table.add_row("", "total", f"{result.items:,}", "100%", "")
    show(table)
    if result.blurred is not None:  # tagged_people: blur
        out.print(f"of the {result.eligible:,} eligible, {count(result.blurred, 'item is', 'items are')} usable only with "
                  "every face blurred (blur_faces)", highlight=False)


@top.command()
@friendly
def explain(
    item_id: Annotated[str, typer.Argument(help="The item to explain.")],
    data: DataOpt,
    at: AtOpt,
    policy: PolicyOpt = "recommended",
    ledger: LedgerOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Show every rule for one item, passed or failed, including each tagged person's."""
    t = parse_instant(at, what="cut-off time")
    with opened_platform(data, policy, ledger, engine, spark_master, conf, quiet=True) as platform:
        e = platform.explain(item_id, t)
    out.print(f"[bold]{escape(e.item_id)}[/]" + escape(f" by {e.user_id}, policy '{e.policy}', cut-off {iso(e.at)}"),
              highlight=False, markup=True)
    _print_checks(e.checks, e.reason)
    for person in e.tagged:
        out.print(f"\ntagged person [bold]{escape(person.user_id)}[/]", highlight=False, markup=True)
        first = person.first_failure
        _print_checks(person.checks, first.reason if first else None)
    color = "green" if e.eligible else "red"
    out.print(f"\n[bold {color}]{escape(e.summary)}[/]", highlight=False, markup=True)
    if e.since:
        out.print("[yellow]Since the cut-off[/] " + escape(
            f"(not counted at it): {'; '.join(e.since)}. A snapshot built now applies this, and "
            "`consentry snapshot purge` applies it to snapshots built before."), highlight=False, markup=True)


def _print_checks(checks, decisive) -> None:  # noqa: ANN001
    table = Table(show_header=True, box=None, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("rule")
    table.add_column("result")
    table.add_column("because")
    for c in checks:
        if c.failed is None:
            result = Text("n/a", style="dim")
        elif c.failed:
            result = Text.assemble(("FAIL", "bold red"), " ◀ decides" if c.reason == decisive else "")
        else:
            result = Text("pass", style="green")
        table.add_row(str(c.number), c.reason.value, result, c.detail)
    show(table)
