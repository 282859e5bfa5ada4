"""`consentry ledger import|show|status` and `consentry object`: what people said and were told."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..timeutil import iso
from ..words import count
from ._common import LedgerOpt, err, friendly, open_ledger, out, show

app = typer.Typer(help="The ledger of what people said and were told.", no_args_is_help=True)
top = typer.Typer()


@app.command("import")
@friendly
def ledger_import(
    file: Annotated[Path, typer.Argument(help="JSONL, one event per line (CONTRACT §2).")],
    ledger: LedgerOpt = None,
) -> None:
    """Load events; the whole file or nothing, and events already there are skipped."""
    with open_ledger(ledger, create=True) as led, err.status(Text(f"importing {file} ...")):
        r = led.import_jsonl(file)
    repeated = f", {r.repeated:,} repeated in the file (imported once)" if r.repeated else ""
    out.print(
        f"{file}: {count(r.read, 'event', 'events')} read, {r.added:,} added, {r.already_there:,} already in the ledger{repeated}"
        + (f" (events #{r.first_seq}-#{r.last_seq})" if r.added else ""),
        highlight=False,
        soft_wrap=True,
    )


@app.command("show")
@friendly
def ledger_show(
    user_id: Annotated[str, typer.Argument(help="The person.")],
    ledger: LedgerOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """A person's history, oldest first, and where they stand now."""
    with open_ledger(ledger) as led:
        history = led.history(user_id)
        state = led.state(user_id)
    if as_json:
        for e in history:
            sys.stdout.write(json.dumps(e.as_json()) + "\n")
        return
    if not history:
        out.print(f"no events for {user_id}", highlight=False)
        return
    table = Table("#", "at", "type", "channel", "note", "imported from", title=f"ledger of {user_id}")
    for e in history:
        source = Path(e.imported_from).name if e.imported_from else ""
        table.add_row(str(e.seq), iso(e.at), e.type.value, e.channel.value, e.note or "", source)
    show(table)
    if state:
        words = []
        words.append("objects" if state.objects else "does not object")
        words.append("consents" if state.consents else "has not consented")
        if state.erasure_us is not None:
            words.append("asked for erasure")
        words.append("was notified" if state.first_notified_us is not None else "was never notified")
        out.print("now: " + ", ".join(words), highlight=False)


@app.command("status")
@friendly
def ledger_status(ledger: LedgerOpt = None) -> None:
    """Where the ledger is and how much it holds."""
    from ..ledger import redact_url

    with open_ledger(ledger) as led:
        out.print(f"{redact_url(led.url)}: {led.count():,} events, watermark #{led.watermark()}", highlight=False)


@top.command("object")
@friendly
def object_(
    user_id: Annotated[str, typer.Argument(help="The person who objects.")],
    note: Annotated[Optional[str], typer.Option(help="Optional; an objection never needs a reason.")] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Record an objection now. It takes effect at the moment it is recorded."""
    from ..ledger import Channel, EventType, NewEvent

    with open_ledger(ledger, create=True) as led:
        if (was := led.in_force(user_id, EventType.objected)) is not None:  # as the privacy center: once means once
            out.print(f"{user_id} already objects: event #{was.seq}, in force since {iso(was.at)}; nothing new was "
                      "recorded", highlight=False)
            return
        e = led.record(
            NewEvent(user_id=user_id, type=EventType.objected, at=datetime.now(UTC), channel=Channel.cli, note=note)
        )
    out.print(
        f"objection of {user_id} recorded as event #{e.seq}; it applies from {iso(e.at)} "
        "to every cut-off at or after that time, and to snapshots already built (under a policy "
        "that honours it) at their next purge (`consentry snapshot purge --all`)",
        highlight=False,
    )
