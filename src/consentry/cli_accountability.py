"""`consentry report` and `consentry documents`: the DPO's paperwork from the CLI.

Kept out of cli.py so it can be wired with one line: `register(app)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import config
from .errors import InputError

from .cli_common import LedgerOpt, PolicyOpt, err, out
from .cli_common import friendly as _friendly


def _out_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise InputError("exists and is not a folder", where=str(path), fix="pass a folder for --out (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder: {exc.strerror}", where=str(path)) from None
    return path


def report(
    at: Annotated[str, typer.Option("--at", help="Report as of this time T, ISO 8601 UTC, e.g. 2024-06-26T00:00:00Z.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html and report.pdf.")],
    data: Annotated[
        Optional[Path], typer.Option("--data", help="The platform export; needed for items excluded per reason.")
    ] = None,
    policy: PolicyOpt = "recommended",
    ledger: LedgerOpt = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also print a PDF with headless Chromium.")] = True,
) -> None:
    """The accountability report for the DPO: notices, objections, delays, exclusions, purges, flagged models."""
    from .audit import build_report, write_report
    from .ledger import Ledger
    from .policy import load_policy
    from .sources import ValidationMemo, open_export
    from .timeutil import parse_instant

    t = parse_instant(at, what="report time (--at)")
    pol = load_policy(policy)
    target = _out_dir(out_dir)
    export = None
    if data is not None:
        with err.status(f"checking the export {data} ..."):
            export, _, _ = open_export(data, memo=ValidationMemo(config.validation_memo_path()))
    with Ledger(config.ledger_url(ledger)) as led, err.status("counting ..."):
        rep = build_report(led, pol, t, export=export)
        files = write_report(rep, target, pdf=pdf)
    out.print(f"wrote {files.html}", highlight=False)
    if files.pdf is not None:
        out.print(f"wrote {files.pdf}", highlight=False)
    else:
        err.print(f"[yellow]no PDF:[/] {files.pdf_skipped}. The HTML report is complete on its own.", highlight=False)
    if data is None:
        err.print("note: without --data the report cannot count items excluded per reason; that section says so.",
                  highlight=False)
    if rep.lifecycle.flagged:
        err.print(f"[bold red]{len(rep.lifecycle.flagged)} model(s) flagged[/]: trained on rows since purged.",
                  highlight=False)


def documents(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the .md and .html documents.")],
    policy: PolicyOpt = "recommended",
    ledger: LedgerOpt = None,
    controller: Annotated[Optional[str], typer.Option(help="The controller's legal name and address.")] = None,
    contact: Annotated[Optional[str], typer.Option(help="Contact for data protection questions.")] = None,
    dpo: Annotated[Optional[str], typer.Option(help="The data protection officer: name and contact.")] = None,
    platform: Annotated[Optional[str], typer.Option(help="The platform's name, as people know it.")] = None,
    controller_file: Annotated[Optional[Path], typer.Option(
        "--controller-file", help="YAML with platform, name, address, dpo (default: $CONSENTRY_CONTROLLER or "
        "controller.yaml in $CONSENTRY_HOME); the options above override it.")] = None,
    privacy_center: Annotated[
        str, typer.Option("--privacy-center", help="The privacy center's public address (in the notice).")
    ] = "https://privacy.example.org",
    cutoff: Annotated[
        Optional[str], typer.Option(help="The cut-off the notice announces (default: today plus the notice period).")
    ] = None,
    language: Annotated[str, typer.Option(
        help="Language of all three documents: the record, the LIA and the notice (an EU or EEA language code, "
             "e.g. de, pl).")] = "en",
) -> None:
    """Art. 30 record, draft Legitimate Interest Assessment and the notice, from the policy and the ledger."""
    from .audit import Controller, build_documents, write_documents
    from .audit.documents import ledger_facts
    from .i18n import LANGUAGES
    from .ledger import Ledger
    from .policy import load_policy
    from .timeutil import parse_instant

    if language not in LANGUAGES:
        raise InputError(f"no documents in '{language}'", fix=f"use one of {', '.join(LANGUAGES)} for --language")
    pol = load_policy(policy)
    t = parse_instant(cutoff, what="cut-off (--cutoff)") if cutoff else None
    from .controller import load_controller

    known = load_controller(config.controller_file(controller_file))  # who is asking, as pages and notices say it
    named = ", ".join(x for x in (known.name, known.address) if x) or None
    given = {"name": controller or named, "contact": contact or known.dpo, "dpo": dpo or known.dpo,
             "platform": platform or known.platform}
    who = Controller(**{k: v for k, v in given.items() if v}, privacy_center=privacy_center)
    target = _out_dir(out_dir)
    with Ledger(config.ledger_url(ledger)) as led:
        facts = ledger_facts(led.reader)
    docs = build_documents(pol, facts, who, cutoff=t, language=language)
    for path in write_documents(docs, target):
        out.print(f"wrote {path}", highlight=False)
    if not given["name"]:
        err.print("note: the controller, contact and DPO are [placeholders]; pass --controller, --contact and --dpo "
                  "(or --controller-file).",
                  highlight=False)


def register(app: typer.Typer) -> None:
    """Add `report` and `documents` to the consentry command."""
    app.command("report")(_friendly(report))
    app.command("documents")(_friendly(documents))
