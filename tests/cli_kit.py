"""Helpers for tests that drive the `consentry` command through Typer's CliRunner
(on `consentry.cli.app`, in this process): run it, insist it succeeded, read its
tables. No pytest fixtures here.

    from cli_kit import cli, ok, table_rows

    rows = table_rows(ok(cli("ledger", "show", "--ledger", url)).stdout)
"""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from consentry.cli import app


def cli(*args: object) -> Any:
    """`consentry *args` in this process; each argument as str (a Path or a number will do)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def ok(result: Any) -> Any:
    """The result, after asserting the command exited 0 (else its output and exception)."""
    assert result.exit_code == 0, (
        f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
    )
    return result


def table_rows(text: str) -> list[list[str]]:
    """The cells of each row of the rich tables in `text` (lines with at least two │)."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.count("│") >= 2]
