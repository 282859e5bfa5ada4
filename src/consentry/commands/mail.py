"""`consentry mail status|send`: the privacy center's mail outbox."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .. import config
from ..errors import ConsentryError
from ..timeutil import iso
from ._common import LedgerOpt, friendly, open_ledger, out, show

app = typer.Typer(help="The privacy center's mail outbox: what is waiting, what never arrived.", no_args_is_help=True)


@app.command("status")
@friendly
def mail_status(
    ledger: LedgerOpt = None,
    limit: Annotated[int, typer.Option(help="How many undelivered mails to list.", min=1, max=1_000_000)] = 50,
) -> None:
    """Mails queued, sent, expired and refused; the ones that never arrived are listed (never their content)."""
    from ..mail import outbox

    with open_ledger(ledger) as led, led.reader.connect() as conn:
        counts = outbox.counts(conn)
        lost = outbox.undelivered(conn, limit)
    out.print(", ".join(f"{n:,} {state}" for state, n in counts.items()), highlight=False)
    if lost:
        table = Table("id", "kind", "to", "queued at", "state", "attempts", "last error")
        for m in lost:
            table.add_row(m["id"], m["kind"], m["recipient"], iso(m["created"]), m["state"], str(m["attempts"]),
                          m["last_error"] or "")
        show(table)


@app.command("send")
@friendly
def mail_send(
    ledger: LedgerOpt = None,
    smtp: Annotated[Optional[str], typer.Option(help="smtp+starttls://user:pass@host:587?sender=... (or $CONSENTRY_SMTP)")] = None,
    mail_dir: Annotated[Optional[Path], typer.Option(help="Write the mails to this folder instead.")] = None,
    now: Annotated[bool, typer.Option("--now", help="Try every queued mail now, even those waiting for their next attempt.")] = False,
) -> None:
    """Deliver the mails that are due, as a center's sender does (safe next to running centers)."""
    from ..mail import FolderTransport, Sender, SmtpSettings, SmtpTransport, outbox

    smtp_url = config.smtp_url(smtp)
    if mail_dir is not None:
        transport = FolderTransport(mail_dir)
    elif smtp_url:
        try:
            transport = SmtpTransport(SmtpSettings.from_url(smtp_url))
        except ValueError as exc:
            raise ConsentryError(str(exc)) from None
    else:
        raise ConsentryError("give --smtp (or $CONSENTRY_SMTP), or --mail-dir")
    with open_ledger(ledger) as led:
        if now:
            with led.transaction() as conn:
                outbox.retry_now(conn)
        done = Sender(led, transport).drain()
    held = ""
    if done.held:
        # Leased by a sender that is alive (or on another machine): not tried now, and not twice.
        until = f" until {done.held_until:%Y-%m-%d %H:%M:%S} UTC" if done.held_until else ""
        held = f", {done.held:,} held by another sender{until}"
    out.print(
        f"{done.sent:,} sent, {done.retrying:,} to try again later, {done.failed:,} refused, {done.expired:,} expired"
        + held, highlight=False,
    )
    if done.retrying or done.failed or done.expired or done.held:
        raise typer.Exit(1)
