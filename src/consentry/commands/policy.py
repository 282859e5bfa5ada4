"""`consentry policy list|show|check`: the built-in policies and custom ones."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ._common import err, friendly, out, show

app = typer.Typer(help="Built-in and custom policies.", no_args_is_help=True)


@app.command("list")
@friendly
def policy_list() -> None:
    """The built-in policies."""
    from ..policy import load_policy, preset_names

    table = Table("name", "hash", "description")
    for name in preset_names():
        p = load_policy(name)
        table.add_row(name, p.hash, p.description)
    show(table)


@app.command("show")
@friendly
def policy_show(name: Annotated[str, typer.Argument(help="A built-in policy or a file.")] = "recommended") -> None:
    """Print a policy as YAML, to copy and edit."""
    from ..policy import load_policy, preset_names, preset_text

    if name in preset_names():
        sys.stdout.write(preset_text(name))
    else:
        sys.stdout.write(Path(name).read_text("utf-8") if Path(name).is_file() else "")
    p = load_policy(name)
    err.print(f"# {p.name}: hash {p.hash}", highlight=False)


@app.command("check")
@friendly
def policy_check(file: Annotated[Path, typer.Argument(help="A policy YAML file.")]) -> None:
    """Validate a policy file and print its hash."""
    from ..policy import load_policy

    p = load_policy(str(file))
    out.print(f"{file}: valid policy '{p.name}', hash {p.hash}", highlight=False)
