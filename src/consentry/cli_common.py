"""What every command module shares: the consoles, common options, and the
wrapper that prints consentry's own errors as messages."""

from __future__ import annotations

import functools
from typing import Annotated, Optional

import typer
from rich.console import Console

from .errors import ConsentryError

out = Console()
err = Console(stderr=True)

LedgerOpt = Annotated[
    Optional[str],
    typer.Option("--ledger", help="Ledger database URL (default: sqlite file consentry.db here, or $CONSENTRY_LEDGER)."),
]
PolicyOpt = Annotated[
    str, typer.Option("--policy", help="A built-in policy (recommended, meta-2024, consent-only) or a YAML file.")
]


def friendly(fn):  # noqa: ANN001, ANN201
    """Print consentry's own errors as messages, not tracebacks; exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            return fn(*args, **kwargs)
        except ConsentryError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper
