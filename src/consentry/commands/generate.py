"""`consentry generate` and `consentry demo`: synthetic data, and the whole job run on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConsentryError
from ..words import count
from ._common import AtOpt, err, friendly, out
from .decide import evaluate
from .ledger import ledger_import

top = typer.Typer()


@top.command()
@friendly
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="An empty or new folder.")],
    users: Annotated[int, typer.Option(help="How many people.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Same seed, same data.", min=0, max=2**32 - 1)] = 0,
    media: Annotated[int, typer.Option(help="How many photos get a real JPEG.")] = 200,
) -> None:
    """Write a realistic synthetic export and an events.jsonl ledger."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..generate import generate as run

    # A column given as a string is printed through the console, which shows markup as is.
    bar = Progress(TextColumn("{task.description}", style="progress.description", markup=False), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err)
    task = bar.add_task("generating people", total=users)

    def progress(n: int) -> None:  # the bar appears with the first people, after the arguments were checked
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=n)

    try:
        s = run(out_dir, users=users, seed=seed, media=media, progress=progress)
    except ValueError as exc:
        raise ConsentryError(str(exc)) from None
    finally:
        if bar.live.is_started:
            bar.stop()
    out.print(
        f"wrote {count(s.users, 'user', 'users')}, {count(s.items, 'item', 'items')}, {count(s.tags, 'tag', 'tags')}, "
        f"{count(s.events, 'event', 'events')} and {count(s.media_files, 'image', 'images')} to {out_dir}",
        highlight=False,
    )


@top.command()
@friendly
def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Where to put the demo's files.")] = Path("demo"),
    users: Annotated[int, typer.Option(help="How many people to generate.")] = 20_000,
    at: AtOpt = "2024-06-26T00:00:00Z",
) -> None:
    """The whole job on generated data: generate, import the ledger, evaluate, summarise."""
    data = workdir / "export"
    led_url = f"sqlite:///{(workdir / 'consentry.db').resolve()}"
    if not (data / "users.parquet").exists():
        workdir.mkdir(parents=True, exist_ok=True)
        generate(out_dir=data, users=users, seed=42, media=100)
    ledger_import(data / "events.jsonl", ledger=led_url)
    eligible = {}
    for name in ("meta-2024", "recommended"):
        target = workdir / f"decisions-{name}.parquet"
        evaluate(data=data, at=at, out_file=target, policy=name, ledger=led_url)
        eligible[name] = _count_eligible(target)
    fewer = eligible["meta-2024"] - eligible["recommended"]
    out.print(
        f"\n[bold]Summary:[/] meta-2024 would train on {eligible['meta-2024']:,} items; recommended on "
        f"{eligible['recommended']:,} ({fewer:,} fewer: objections honoured everywhere, everyone notified, "
        "no content posted as a minor, no photos of people who may not be used, nor of people without an account who objected).",
        highlight=False, markup=True,
    )
    out.print(
        f"\nNext: `consentry explain ITEM --data {data} --at {at} --ledger {led_url}` "
        "shows why an item is in or out.",
        highlight=False,
    )


def _count_eligible(path: Path) -> int:
    import duckdb

    return int(duckdb.connect().execute("SELECT count(*) FROM read_parquet(?) WHERE eligible", [str(path)]).fetchone()[0])
