"""`consentry notify` and `consentry notices status|inapp|ack`: telling people before use, exactly once."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .. import config
from ..errors import ConsentryError, InputError
from ..timeutil import parse_instant
from ..words import count, plural
from ._common import (
    ControllerAddressOpt,
    ControllerFileOpt,
    ControllerNameOpt,
    DataOpt,
    DpoOpt,
    EngineOpt,
    LedgerOpt,
    PlatformOpt,
    PolicyOpt,
    SparkConfOpt,
    SparkMasterOpt,
    controller_from,
    err,
    friendly,
    opened_platform,
    out,
    show,
)

app = typer.Typer(help="Notice campaigns: status and in-app notices.", no_args_is_help=True)
top = typer.Typer()


BaseUrlOpt = Annotated[Optional[str], typer.Option(
    "--base-url", help="The privacy center's public address, e.g. https://privacy.example.org: every notice links there.")]


def _base_url(value: str | None, what: str) -> str:
    """The privacy center's address the notices link to: never a made-up one
    (mail used to link people to http://127.0.0.1:8000 when none was given)."""
    from ..notices import public_base_url

    if not value:
        raise InputError(f"{what} links each person to the privacy center, so it needs its public address",
                         fix="pass --base-url https://privacy.your-platform.example (where `consentry serve` answers)")
    try:
        return public_base_url(value)
    except ValueError as exc:
        raise InputError(f"--base-url: {exc}") from None


def _secret() -> str:
    secret = config.secret_key()
    if not secret or len(secret) < 32:
        raise ConsentryError(
            "set CONSENTRY_SECRET_KEY (the privacy center's, at least 32 characters): "
            "it signs the one-click objection links in the notices"
        )
    return secret


@top.command()
@friendly
def notify(
    data: DataOpt,
    cutoff: Annotated[str, typer.Option(help="The planned cut-off the notice announces.")],
    campaign: Annotated[str, typer.Option(help="Campaign id; run again with the same id to resume.")],
    policy: PolicyOpt = "recommended",
    ledger: LedgerOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count who would be told; send nothing.")] = False,
    channels: Annotated[str, typer.Option(help="email, in_app or both (comma-separated).")] = "email,in_app",
    smtp: Annotated[Optional[str], typer.Option(help="smtp+starttls://user:pass@host:587?sender=... or $CONSENTRY_SMTP")] = None,
    rate: Annotated[float, typer.Option(help="Mails per second at most (0: no limit).")] = 50.0,
    connections: Annotated[
        int,
        typer.Option(help="SMTP connections. More is faster, but widens the window in which a crash "
                     "records a notice whose mail was never final (see the README)."),
    ] = 1,
    base_url: BaseUrlOpt = None,
    renotify: Annotated[bool, typer.Option(
        "--renotify", help="Also tell people whom another campaign with the same policy and cut-off has already "
        "told (left out by default: they hold a `notified` event for this very notice).")] = False,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
    controller: ControllerFileOpt = None,
    platform_name: PlatformOpt = None,
    controller_name: ControllerNameOpt = None,
    controller_address: ControllerAddressOpt = None,
    dpo: DpoOpt = None,
) -> None:
    """Tell every affected person before use, exactly once: mail and in-app notices.

    Every notice names the platform, the controller and its DPO (--controller-file
    FILE, or the options): a campaign does not start without them.
    With --engine spark, Spark computes who must be told; the mail goes from here."""

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    from ..notices import CHANNELS, Campaign, Mailer, SmtpSettings

    wanted = tuple(c.strip() for c in channels.split(",") if c.strip())
    if not wanted or any(c not in CHANNELS for c in wanted):
        raise ConsentryError(f"--channels takes {', '.join(CHANNELS)} (comma-separated), got '{channels}'")
    _check_pace(rate, connections)
    t = parse_instant(cutoff, what="cut-off")
    who = controller_from(controller, platform_name, controller_name, controller_address, dpo)
    if not dry_run:
        who.require("a notice campaign")
    with opened_platform(data, policy, ledger, engine, spark_master, conf, opener=_notice_ledger) as platform:
        led, pol, export = platform.ledger, platform.policy, platform.export
        if dry_run:  # nothing is created: no campaign, no outbox, no mail
            from ..notices import already_told, check_cutoff, summarize

            check_cutoff(pol, t)  # what the real run would refuse

            already = {} if renotify else already_told(led, pol, t, besides=campaign)
            plan = summarize(platform.audience(t).to_pylist(), already)
            table = Table("jurisdiction", "language", "people", title=f"Would notify {count(plan.people, 'person', 'people')} (dry run)")
            for (j, lang), n in sorted(plan.per_jurisdiction_language.items()):
                table.add_row(j, lang, f"{n:,}")
            show(table)
            out.print(f"{plan.without_email:,} have no e-mail address (in-app notice only)")
            _print_scopes(plan)
            _print_already(plan)
            return
        mailer = secret = None
        if "email" in wanted:  # check everything needed before anything is planned
            smtp_url = config.smtp_url(smtp)
            if not smtp_url:
                raise ConsentryError("sending mail needs --smtp or $CONSENTRY_SMTP (or --channels in_app)")
            try:
                mailer = Mailer(SmtpSettings.from_url(smtp_url))
            except ValueError as exc:
                raise ConsentryError(str(exc)) from None
            secret = _secret()
            base_url = _base_url(base_url, "a notice mail")
        camp = Campaign.open(led, campaign, pol, t)
        backend = platform.backend()
        try:
            plan = camp.plan(export, pol, channels=wanted, backend=backend, renotify=renotify)
        finally:
            backend.close()
        err.print(f"campaign {campaign}: {count(plan.people, 'person', 'people')} in scope, "
                  f"{count(plan.added, 'new outbox entry', 'new outbox entries')}"
                  + (f", {count(plan.readdressed, 'address', 'addresses')} corrected in the export since the last run "
                     "(those notices go to the new address)" if plan.readdressed else ""), highlight=False)
        _print_already(plan, err)
        summary = None
        if mailer is not None and secret is not None:
            pending = camp.counts().get(("email", "pending"), 0) + camp.counts().get(("email", "sending"), 0)
            with Progress(
                TextColumn("{task.description}", style="progress.description", markup=False), BarColumn(),
                MofNCompleteColumn(), TaskProgressColumn(), TextColumn("{task.fields[rate]}", markup=False),
                TimeRemainingColumn(), console=err,
            ) as bar:
                task = bar.add_task("mailing", total=pending, rate="")
                started = __import__("time").perf_counter()

                def tick(n: int) -> None:
                    el = __import__("time").perf_counter() - started
                    bar.update(task, completed=n, rate=f"{n / el:,.0f}/s" if el > 0 else "")

                summary = camp.send_mail(
                    mailer, pol, secret=secret, base_url=base_url, rate=rate, progress=tick, connections=connections,
                    controller=who,
                )
        _print_campaign(camp, summary)


#: At most this many SMTP connections (threads) at once: enough for any server's per-client limit
#: (Postfix allows 50 by default); 100,000 ended in "can't start new thread".
MAX_CONNECTIONS = 64


def _check_pace(rate: float, connections: int) -> None:
    """Refuse a pace that means nothing: a negative rate sent without limit."""
    import math

    if not math.isfinite(rate) or rate < 0:
        raise InputError(f"--rate must be 0 (no limit) or more mails per second, got {rate:g}",
                         fix="pass --rate 50 (the default), or --rate 0 for no limit")
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise InputError(f"--connections must be between 1 and {MAX_CONNECTIONS}, got {connections:,}",
                         fix=f"pass --connections 1 (the default) up to {MAX_CONNECTIONS}; "
                         "16 sends about 520 mails/s (see the README)")


def _print_scopes(plan) -> None:  # noqa: ANN001 - a notices.Plan
    """What the notices speak of: people with content of their own, and people only in others' photos."""
    tagged, both = plan.per_scope.get("tagged", 0), plan.per_scope.get("both", 0)
    if tagged or both:
        out.print(f"{count(tagged, 'person is', 'people are')} told only about photos of them that others posted; "
                  f"{count(both, 'person is', 'people are')} told about their own content and such photos",
                  highlight=False)


def _print_already(plan, console=out) -> None:  # noqa: ANN001 - a notices.Plan, a rich Console
    if plan.already_notified:
        console.print(
            f"{count(plan.already_notified, 'person was', 'people were')} already notified for this cut-off and "
            f"policy (campaign {', '.join(plan.already_by)}) and {plural(plan.already_notified, 'is', 'are')} left "
            "out; --renotify tells them again", highlight=False)


def _notice_ledger(url: str | None):  # noqa: ANN202
    from ..ledger import Ledger

    return Ledger(config.ledger_url(url), synchronous="NORMAL")


def _print_campaign(camp, summary) -> None:  # noqa: ANN001
    counts = camp.counts()
    table = Table("channel", "state", "people", title=f"campaign {camp.id} ({camp.version})")
    for (ch, st), n in sorted(counts.items()):
        table.add_row(ch, st, f"{n:,}")
    show(table)
    if summary is not None:
        out.print(
            f"this run: {summary.sent:,} sent, {summary.bounced:,} bounced, {summary.deferred:,} deferred "
            f"(temporary failures, sent on the next run), {summary.bad_address:,} set aside (the address cannot "
            f"be used; see `consentry notices status`), {summary.recovered:,} recovered and "
            f"{summary.resent_after_crash:,} resent after an interruption"
            + (f", {summary.unbounced:,} recorded as bounced for the SMTP setup by an earlier run, sent again"
               if summary.unbounced else "")
            + f"; {summary.rate:,.0f} mails/s ({f'at most {summary.limit:g}/s' if summary.limit else 'no rate limit'})",
            highlight=False,
        )
        if summary.stopped:  # the mail server went away or refused this setup: the rest stays pending
            err.print(f"error: {summary.stopped}", highlight=False, markup=False)
            raise typer.Exit(1)


@app.command("status")
@friendly
def notices_status(campaign: str, ledger: LedgerOpt = None) -> None:
    """Where a campaign stands, per channel and state."""
    from ..notices import Campaign

    with _notice_ledger(ledger) as led:
        _print_campaign(Campaign(led, campaign), None)


@app.command("inapp")
@friendly
def notices_inapp(
    campaign: str,
    base_url: BaseUrlOpt = None,
    policy: PolicyOpt = "recommended",
    ledger: LedgerOpt = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many (default: every one not yet shown).")] = None,
    controller: ControllerFileOpt = None,
    platform_name: PlatformOpt = None,
    controller_name: ControllerNameOpt = None,
    controller_address: ControllerAddressOpt = None,
    dpo: DpoOpt = None,
) -> None:
    """Print the in-app notices still to be shown, with what to show, one JSON object per line.

    Each has the subject, text and html in the person's language and their
    signed objection link: the very text of the campaign's mails. Record what
    was shown with `notices ack`."""
    from ..notices import Campaign
    from ..policy import load_policy

    who = controller_from(controller, platform_name, controller_name, controller_address, dpo).require("an in-app notice")
    base = _base_url(base_url, "an in-app notice")
    secret, pol = _secret(), load_policy(policy)
    with _notice_ledger(ledger) as led:
        camp = Campaign(led, campaign)
        now = datetime.now(UTC)  # one instant for what is printed and what is said about the rest
        for row in camp.in_app_notices(pol, secret=secret, base_url=base, controller=who, limit=limit, now=now):
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        left = camp.in_app_withheld(pol, now=now)
    if left["too_late"]:
        err.print(f"warning: {count(left['too_late'], 'in-app notice was', 'in-app notices were')} not printed, as "
                  f"{plural(left['too_late'], 'it comes', 'they come')} too late: {_too_late(camp, pol, now)}",
                  highlight=False)
    if left["objected"] or left["erased"]:
        err.print(f"left out: {count(left['objected'], 'person', 'people')} who objected and "
                  f"{count(left['erased'], 'person', 'people')} who asked for erasure since the campaign was planned "
                  "(their content is not used: a notice saying it will be would be untrue)", highlight=False)


def _too_late(camp, pol, now: datetime) -> str:  # noqa: ANN001 - a Campaign, a Policy
    """Why an in-app notice shown now can no longer count, since when, and what to do."""
    from datetime import timedelta

    from ..notices import check_cutoff

    days = sorted({j.notice_days for j in pol.jurisdictions if j.notice_days is not None
                   and now > camp.cutoff - timedelta(days=j.notice_days)})
    last = min(camp.cutoff - timedelta(days=d) for d in days) if days else camp.cutoff
    try:
        check_cutoff(pol, camp.cutoff, now=now)
        later = "a later cut-off"
    except InputError as exc:
        later = str(exc.fix).removeprefix("announce ")
    return (f"the cut-off {camp.cutoff.isoformat()} is less than {count(max(days, default=0), 'day', 'days')} away, so a notice "
            f"shown now gives less than the notice period (the last moment was {last.isoformat()}) and no `notified` "
            f"event is recorded for it. To tell these people, start a campaign with {later}")


@app.command("ack")
@friendly
def notices_ack(
    campaign: str,
    file: Annotated[Path, typer.Argument(help="JSONL of shown notices (each with dedupe_key), or - for stdin.")],
    ledger: LedgerOpt = None,
    policy: Annotated[Optional[str], typer.Option(
        help="The campaign's policy (a file) when it is not a built-in one: its notice periods say until when a "
        "notice counts.")] = None,
) -> None:
    """Record in-app notices the platform has shown; each counts once.

    A notice shown too late to give the notice period before the cut-off is not recorded."""
    from ..notices import Campaign
    from ..policy import load_policy

    raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text (byte {exc.start})", where=str(file)) from None
    keys, line_of = [], {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            key = json.loads(line)["dedupe_key"]
        except (ValueError, KeyError, TypeError):
            key = None
        if not isinstance(key, str) or not key:
            raise InputError("expected a JSON object with a dedupe_key (a string), as `notices inapp` prints them",
                             where=f"{file}, line {n}") from None
        keys.append(key)
        line_of.setdefault(key, n)
    pol = load_policy(policy) if policy is not None else None
    now = datetime.now(UTC)
    with _notice_ledger(ledger) as led:
        camp = Campaign(led, campaign)
        done = camp.acknowledge(keys, pol, now=now)
        pol = camp._own_policy(pol)
    out.print(f"{count(done.shown, 'in-app notice', 'in-app notices')} recorded as shown; {done.already:,} recorded "
              f"before", highlight=False)
    late = ""
    if done.too_late:
        named = ", ".join(f"line {line_of[k]}" for k in done.too_late_keys[:5])
        more = f" and {done.too_late - 5:,} more" if done.too_late > 5 else ""
        late = (f"{count(done.too_late, 'in-app notice was', 'in-app notices were')} shown too late and "
                f"{plural(done.too_late, 'is', 'are')} not recorded ({named}{more}): {_too_late(camp, pol, now)}")
    if done.unknown:
        named = ", ".join(f"line {line_of[k]} ({k!r})" for k in done.unknown_keys[:5])
        more = f" and {done.unknown - 5:,} more" if done.unknown > 5 else ""
        raise InputError(f"{count(done.unknown, 'key names', 'keys name')} no in-app notice of campaign '{campaign}': "
                         f"{named}{more} (the others were recorded)" + (f"; and {late}" if late else ""), where=str(file),
                         fix="acknowledge only the dedupe_keys that `consentry notices inapp` printed for this campaign")
    if late:
        raise InputError(late, where=str(file),
                         fix="show only what `consentry notices inapp` prints now: it leaves out notices that came too late")
