"""Errors a person can act on.

Every refusal names where the problem is (file, line or row, column), what is
wrong and what to do, because the people reading them are data engineers fixing
an export at 2 a.m., not Python programmers reading a traceback.
"""

from __future__ import annotations


class ConsentryError(Exception):
    """Base class: the CLI prints these without a traceback."""


class InputError(ConsentryError):
    """Bad input: an export table, a ledger file, a policy or an argument."""

    def __init__(
        self,
        problem: str,
        *,
        where: str | None = None,
        column: str | None = None,
        row: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.where = where
        self.column = column
        self.row = row
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        head = self.where or ""
        if self.column:
            head = f"{head}, column '{self.column}'" if head else f"column '{self.column}'"
        lines = [f"{head}: {self.problem}" if head else self.problem]
        if self.row:
            lines.append(f"  example: {self.row}")
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


class InputProblems(InputError):
    """One input with several problems, each an InputError, reported together:
    one run finds them all, instead of one per run."""

    SHOWN = 20  # problems listed at most; the count covers them all

    def __init__(self, what: str, problems: list[InputError], total: int) -> None:
        self.problems = problems[: self.SHOWN]
        self.total = total
        shown = f", the first {len(self.problems)} listed" if total > len(self.problems) else ""
        said = "\n".join(
            InputError(p.problem.removesuffix("; nothing was imported"), where=p.where, column=p.column, row=p.row,
                       fix=p.fix).render() for p in self.problems)
        super().__init__(f"{what}: {total:,} problems{shown}; nothing was imported\n{said}")

    def render(self) -> str:  # the full text is built in __init__
        return self.problem


class PolicyError(InputError):
    """A policy that is malformed or that the contract forbids."""


class LedgerError(ConsentryError):
    """The ledger cannot do what was asked (unreachable, wrong schema, ...)."""
