"""Errors a person can act on.

Every refusal names where the problem is (file, line or row, column), what is
wrong and what to do, because the people reading them are data engineers fixing
an export at 2 a.m., not Python programmers reading a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .words import count


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


class EventError(InputError, ValueError):
    """A ledger event that breaks CONTRACT §2. Also a ValueError, as pydantic's
    error it replaces was. `details`: pydantic's error list, one dict per
    field, for callers that word each one themselves (`ledger import` names
    the line and column)."""

    def __init__(self, problem: str, details: list[dict[str, Any]], **kw: Any) -> None:
        self.details = details
        super().__init__(problem, **kw)


class LedgerError(ConsentryError):
    """The ledger cannot do what was asked (unreachable, wrong schema, ...)."""


class NotInForce(ConsentryError):
    """A withdrawal of an objection or consent that another event withdrew
    first, found in the withdrawal's own transaction: it was rolled back."""


class ObjectionSuperseded(NotInForce):
    """The objection a rejection answers is not the one in force any more (withdrawn, or made
    again since the reviewer read it), found in the rejection's own transaction: rolled back."""

    def __init__(self, user_id: str, answered: int, in_force: int | None) -> None:
        super().__init__(f"{user_id}: objection #{answered} is not the one in force")
        self.user_id, self.answered, self.in_force = user_id, answered, in_force


class _Problem(Protocol):
    def render(self) -> str: ...


class ExportInvalid(InputError):
    """The export was refused; `problems` lists every distinct problem found
    (each a `sources.validation.Problem`: file, column, example row and fix)."""

    def __init__(self, problems: Sequence[_Problem]) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__(f"the export was refused ({count(n, 'problem', 'problems')}; nothing was imported):\n"
                         + "\n".join(p.render() for p in self.problems))

    def render(self) -> str:  # the full text is built in __init__
        return self.problem


class SnapshotError(ConsentryError):
    """A snapshot operation cannot go ahead; the message says why and what to do."""


# -- mail: what can go wrong handing a mail over, in the two kinds a sender must tell apart --------


class MailError(ConsentryError):
    """The mail was not handed over. `code` and `server_text` are the server's reply, if it gave one.
    Every transport raises one of its two kinds: try again later (TemporaryFailure) or stop and tell
    someone (PermanentFailure)."""

    def __init__(
        self,
        problem: str,
        *,
        server: str,
        stage: str,
        code: int | None = None,
        server_text: str = "",
        recipient: str | None = None,
        setup: bool = False,
    ) -> None:
        self.problem = problem
        self.server = server
        self.stage = stage
        self.code = code
        self.server_text = server_text
        self.recipient = recipient
        #: The sender's setup or the server failed (connect, TLS, login, sender refused), not a recipient:
        #: a campaign must never record it as a recipient's bounce (`mail.is_setup_failure`).
        self.setup = setup
        super().__init__(self.render())

    def render(self) -> str:
        to = f" for <{self.recipient}>" if self.recipient else ""
        reply = f" (server said: {self.code} {self.server_text})" if self.code is not None else ""
        return f"SMTP {self.server}, {self.stage}{to}: {self.problem}{reply}"

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {k: getattr(self, k) for k in ("server", "stage", "code", "server_text", "recipient")}
        return (_rebuild_mail_error, (type(self), self.problem, kwargs))


def _rebuild_mail_error(cls: type[MailError], problem: str, kwargs: dict[str, Any]) -> MailError:
    return cls(problem, **kwargs)


class TemporaryFailure(MailError):
    """4xx reply, refused/reset connection or timeout: the same mail may go through later."""


class PermanentFailure(MailError):
    """5xx reply or a setup the server will never accept: retrying will not help."""


# -- the privacy center ----------------------------------------------------------------------------


class LinkError(ConsentryError):
    """A link that cannot sign anyone in; `reason` is expired, used or invalid.
    The messages are shown to people, translated (scripts/extract_messages.py)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            {
                "expired": "This link has expired (links work for 15 minutes). Ask for a new one.",
                "used": "This link has already been used. Ask for a new one.",
                "invalid": "This link is not valid. Ask for a new one.",
            }[reason]
        )


class AddressError(ConsentryError):
    """Not one well-formed e-mail address; the message says what is wrong."""


class ThirdPartyError(ConsentryError):
    """A step on a third-party request that cannot be taken; the message says why."""
