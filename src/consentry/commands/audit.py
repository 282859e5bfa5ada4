"""`consentry audit verify|export|checkpoint|receipt|verify-receipt`, `consentry report` and
`consentry documents`: the tamper-evident audit log and the DPO's paperwork."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.text import Text

from .. import config
from ..errors import InputError
from ..timeutil import iso
from ..words import count
from ._common import LedgerOpt, PolicyOpt, checked_export, err, finish_interrupted, friendly, open_ledger, out

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
top = typer.Typer()


# -- the DPO's paperwork -----------------------------------------------------------------------


#: Names a person gives when they think --out is the file: it is the folder the files go in.
_FILE_NAMES = {".html", ".htm", ".pdf", ".md"}


def _out_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise InputError("exists and is not a folder", where=str(path), fix="pass a folder for --out (it is created if missing)")
    if not path.exists() and path.suffix.lower() in _FILE_NAMES:
        # `--out report.html` made a folder report.html/ holding report.html.
        raise InputError("--out names the folder the files are written to, and this looks like a file name",
                         where=str(path), fix=f"pass a folder, e.g. --out {path.with_suffix('')}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder: {exc.strerror}", where=str(path)) from None
    return path


PublicKeyOpt = Annotated[Optional[Path], typer.Option(
    "--public-key", help="Ed25519 public key (PEM): also check the signed checkpoints.")]
CheckpointsOpt = Annotated[Optional[Path], typer.Option(
    "--checkpoints", help="The file `audit checkpoint --out` appends to, kept outside the database: catches its "
    "checkpoints deleted or the database put back to an older copy (needs --public-key).")]


@top.command("report")
@friendly
def report(
    at: Annotated[str, typer.Option("--at", help="Report as of this time T, ISO 8601 UTC, e.g. 2024-06-26T00:00:00Z.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html and report.pdf.")],
    data: Annotated[
        Optional[str], typer.Option("--data", help="The platform export; needed for items excluded per reason.")
    ] = None,
    policy: PolicyOpt = "recommended",
    ledger: LedgerOpt = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also print a PDF with headless Chromium.")] = True,
    public_key: PublicKeyOpt = None,
    checkpoints: CheckpointsOpt = None,
) -> None:
    """The accountability report for the DPO: notices, objections, delays, exclusions, purges, flagged models."""
    from ..audit import build_report, write_report
    from ..policy import load_policy
    from ..sources import ValidationMemo, open_export
    from ..timeutil import parse_instant

    t = parse_instant(at, what="report time (--at)")
    pol = load_policy(policy)
    target = _out_dir(out_dir)
    export = None
    if data is not None:
        with err.status(Text(f"checking the export {data} ...")):
            export, _, _ = open_export(data, memo=ValidationMemo(config.validation_memo_path()))
    with open_ledger(ledger) as led, err.status("verifying the audit log and counting ..."):
        finish_interrupted(led)  # a purge a crash stopped after its commit: counted once finished
        rep = build_report(led, pol, t, export=export, public_key=public_key, checkpoints=checkpoints)
        files = write_report(rep, target, pdf=pdf)
    out.print(f"wrote {files.html}", highlight=False)
    if files.pdf is not None:
        out.print(f"wrote {files.pdf}", highlight=False)
    else:
        err.print(f"[yellow]no PDF:[/] {escape(str(files.pdf_skipped))}. The HTML report is complete on its own.", highlight=False,
                  markup=True)
    if data is None:
        err.print("note: without --data the report cannot count items excluded per reason; that section says so.",
                  highlight=False)
    if rep.lifecycle.flagged:
        err.print(f"[bold red]{count(len(rep.lifecycle.flagged), 'model', 'models')} flagged[/]: trained on rows since purged.",
                  highlight=False, markup=True)


@top.command("documents")
@friendly
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
        Optional[str], typer.Option("--privacy-center", help="The privacy center's public address, e.g. "
                                    "https://privacy.example.org, written in the notice; without it the notice has a placeholder "
                                    "to fill in.")
    ] = None,
    cutoff: Annotated[
        Optional[str], typer.Option(help="The cut-off the notice announces (default: today plus the notice period).")
    ] = None,
    language: Annotated[str, typer.Option(
        help="Language of all three documents: the record, the LIA and the notice (an EU or EEA language code, "
             "e.g. de, pl).")] = "en",
    data: Annotated[Optional[str], typer.Option(
        "--data", help="The platform export: its countries tell, per the policy, which objections in force are "
        "honoured (without it, the documents say they cannot tell).")] = None,
    public_key: PublicKeyOpt = None,
    checkpoints: CheckpointsOpt = None,
) -> None:
    """Art. 30 record, draft Legitimate Interest Assessment and the notice, from the policy and the ledger."""
    from ..audit import Controller, build_documents, ledger_facts, require_intact, write_documents
    from ..i18n import LANGUAGES
    from ..policy import load_policy
    from ..timeutil import parse_instant

    if language not in LANGUAGES:
        raise InputError(f"no documents in '{language}'", fix=f"use one of {', '.join(LANGUAGES)} for --language")
    pol = load_policy(policy)
    t = parse_instant(cutoff, what="cut-off (--cutoff)") if cutoff else None
    if t is not None and t <= datetime.now(UTC):
        # "From January 1, 2020, ..." in a notice written today (`notify` refuses such a cut-off); the record
        # and the LIA may still be drafted for a past one, so a warning, not a refusal.
        err.print(f"[yellow]warning:[/] the cut-off {iso(t)} has passed: the notice announces it as to come; "
                  "give the planned one (--cutoff) before it is sent", highlight=False, markup=True)
    from ..controller import load_controller

    known = load_controller(config.controller_file(controller_file))  # who is asking, as pages and notices say it
    named = ", ".join(x for x in (known.name, known.address) if x) or None
    given = {"name": controller or named, "contact": contact or known.dpo, "dpo": dpo or known.dpo,
             "platform": platform or known.platform}
    given["privacy_center"] = privacy_center
    # An option replaces one field of the controller file and keeps the others: say so, so that a record
    # naming one company with another's DPO is not written without a word.
    replaced = [f"{opt} replaces its {what} ({kept!r})" for opt, mine, kept, what in (
        ("--controller", controller, named, "name and address"), ("--contact", contact, known.dpo, "contact"),
        ("--dpo", dpo, known.dpo, "DPO"), ("--platform", platform, known.platform, "platform")) if mine and kept and mine != kept]
    if replaced:
        from_file = config.controller_file(controller_file)
        err.print(f"note: the controller file {from_file} is used for what no option gives; " + "; ".join(replaced),
                  highlight=False, soft_wrap=True)
    who = Controller(**{k: v for k, v in given.items() if v})
    target = _out_dir(out_dir)
    with open_ledger(ledger) as led:
        with err.status("verifying the audit log ..."):
            require_intact(led, "document", public_key=public_key, checkpoints=checkpoints)
        facts = ledger_facts(led.reader, export=checked_export(data) if data is not None else None)
    docs = build_documents(pol, facts, who, cutoff=t, language=language)
    for path in write_documents(docs, target):
        out.print(f"wrote {path}", highlight=False)
    missing = [f"{what} ({option})" for what, field, option in (
        ("the controller", "name", "--controller"), ("the contact", "contact", "--contact"), ("the DPO", "dpo", "--dpo"),
        ("the platform", "platform", "--platform"), ("the privacy center's address", "privacy_center", "--privacy-center"),
    ) if not given[field]]
    if missing:
        err.print(f"note: the documents leave [placeholders] for what was not given: {', '.join(missing)}; "
                  "a controller file (--controller-file) can give the controller, the contact, the DPO and the platform.",
                  highlight=False)


# -- the audit log -----------------------------------------------------------------------------


@app.command("verify")
@friendly
def audit_verify(
    public_key: PublicKeyOpt = None,
    checkpoints: CheckpointsOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """Re-hash the whole chain; name the first record edited, deleted, inserted or out of order."""
    from ..audit import verify_chain as verify

    with open_ledger(ledger) as led, err.status("verifying the audit log ..."):
        r = verify(led, public_key=public_key, checkpoints=checkpoints)
    if r.ok:
        signed = f", {count(r.checkpoints, 'signed checkpoint', 'signed checkpoints')} verified" if public_key else ""
        out.print(f"[green]audit log intact:[/] {count(r.records, 'record', 'records')}, head {escape(f'{r.head_hash}{signed}')}", highlight=False, markup=True)
        return
    verdict = "audit log broken" if r.first_bad.broken else "audit log not verified"
    where = f" at record {r.first_bad.seq}" if r.first_bad.seq is not None else ""
    err.print(f"[bold red]{verdict}{where}:[/] {escape(r.first_bad.problem)}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(1)


@app.command("export")
@friendly
def audit_export(
    out_file: Annotated[Path, typer.Option("--out", help="The JSONL file to write.")],
    ledger: LedgerOpt = None,
) -> None:
    """Write every audit record as JSON lines, for a regulator or an archive."""
    from ..audit import export_jsonl

    with open_ledger(ledger) as led:
        n = export_jsonl(led, out_file)
    out.print(f"wrote {count(n, 'audit record', 'audit records')} to {out_file}", highlight=False)


@app.command("checkpoint")
@friendly
def audit_checkpoint(
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM), e.g. from `openssl genpkey -algorithm ed25519`.")],
    out_file: Annotated[Optional[Path], typer.Option(
        "--out", help="Also append the signed checkpoint to this file, as a JSON line; keep it outside the database "
        "(another machine, write-once storage) and pass it to `audit verify --checkpoints`.")] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Sign the chain's current head, so rewriting the whole chain would need the key."""
    from ..audit import checkpoint

    with open_ledger(ledger) as led:
        seq, h = checkpoint(led, key, out=out_file)
    out.print(f"signed checkpoint at record {seq}: {h}" + (f" (appended to {out_file})" if out_file else ""), highlight=False)


@app.command("receipt")
@friendly
def audit_receipt(
    user_id: Annotated[str, typer.Argument(help="The person.")],
    key: Annotated[Path, typer.Option("--key", help="The audit key: Ed25519 private key (PEM).")],
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write the receipts here (default: stdout).")] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Signed purge receipts for one person, from the snapshots' purges.

    A receipt names the snapshot versions that held the person's rows, the
    version that removed them, when the bytes were vacuumed, and the purge's
    place in the audit chain."""
    import json

    from ..snapshots import issue_receipts as issue

    with open_ledger(ledger) as led:
        docs = issue(led, user_id, key)
    text = json.dumps(docs, indent=2, ensure_ascii=False) + "\n"
    if out_file is None:
        out.print(text, highlight=False, markup=False, soft_wrap=True, end="")
    else:
        out_file.write_text(text, encoding="utf-8")
        err.print(f"wrote {count(len(docs), 'receipt', 'receipts')} to {out_file}", highlight=False)


@app.command("verify-receipt")
@friendly
def audit_verify_receipt(
    file: Annotated[Path, typer.Argument(help="A receipt (or a list of them) as downloaded from the privacy center.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The audit key's public half (PEM).")],
    ledger: Annotated[Optional[str], typer.Option(
        "--ledger", help="Also check the purge and its audit record in this ledger.")] = None,
) -> None:
    """Check a purge receipt's signature (and, with --ledger, the chain); exit 1 if it is not genuine."""
    import json

    from ..snapshots import verify_receipt

    try:
        docs = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the receipt: {exc}", where=str(file)) from None
    docs = docs if isinstance(docs, list) else [docs]
    bad = 0
    led = open_ledger(ledger) if ledger else None
    try:
        for doc in docs:
            problems = verify_receipt(doc, public_key, led)
            body = doc.get("receipt", {}) if isinstance(doc, dict) else {}
            what = f"{body.get('person')} / {body.get('snapshot')} purge {body.get('purge_id')}"
            if problems:
                bad += 1
                err.print("[bold red]NOT GENUINE[/] " + escape(f"{what}: " + "; ".join(problems)), highlight=False, markup=True)
            else:
                out.print("[green]genuine[/] " + escape(
                    f"{what}: removed in version {body.get('removed_in_version')}, "
                    f"vacuumed {body.get('vacuumed_at')}, audit record {(body.get('audit') or {}).get('seq')}"
                    # say what was checked: the signature alone, or also the ledger's own record of the purge
                    + ("; signature valid, and the purge and its audit record agree with the ledger" if led is not None
                       else "; signature valid (add --ledger to check it against the audit chain too)")),
                    highlight=False, markup=True)
    finally:
        if led is not None:
            led.close()
    if bad:
        raise typer.Exit(1)
