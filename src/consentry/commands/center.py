"""`consentry serve`: the privacy center (web pages and the JSON API)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.markup import escape

from .. import config
from ..errors import ConsentryError, InputError
from ..timeutil import iso, parse_instant
from ._common import (
    ControllerAddressOpt,
    ControllerFileOpt,
    ControllerNameOpt,
    DataOpt,
    DpoOpt,
    LedgerOpt,
    PlatformOpt,
    PolicyOpt,
    controller_from,
    err,
    friendly,
)

top = typer.Typer()


@top.command()
@friendly
def serve(
    data: DataOpt,
    ledger: LedgerOpt = None,
    policy: PolicyOpt = "recommended",
    cutoff: Annotated[Optional[str], typer.Option(help="The next planned cut-off (default: now).")] = None,
    smtp: Annotated[
        Optional[str], typer.Option(help="smtp+starttls://user:pass@host:587?sender=... (or $CONSENTRY_SMTP)")
    ] = None,
    mail_dir: Annotated[Optional[Path], typer.Option(help="Development: write mails to this folder.")] = None,
    base_url: Annotated[Optional[str], typer.Option(
        help="The public address, for links in mails (default: http://HOST:PORT as given below).")] = None,
    host: Annotated[str, typer.Option(help="The address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each with its own group commit).", min=1)] = 1,
    trusted_proxy: Annotated[
        Optional[list[str]],
        typer.Option("--trusted-proxy", help="A reverse proxy (address or network) whose X-Forwarded-For is "
                     "believed for rate limits; repeatable. None by default."),
    ] = None,
    metrics_token: Annotated[
        Optional[str], typer.Option(help="Turns GET /metrics on, for 'Authorization: Bearer TOKEN' only "
                                    "(or $CONSENTRY_METRICS_TOKEN); without it /metrics is off.")
    ] = None,
    max_body_bytes: Annotated[int, typer.Option(help="Larger request bodies are refused (413).")] = 64 * 1024,
    controller: ControllerFileOpt = None,
    platform_name: PlatformOpt = None,
    controller_name: ControllerNameOpt = None,
    controller_address: ControllerAddressOpt = None,
    dpo: DpoOpt = None,
    purge_within: Annotated[Optional[float], typer.Option(
        "--purge-within", help="Hours within which your purges (`snapshot purge --watch` or cron, and the vacuum) take "
        "an objection's data out of existing snapshots: pages and mails promise it by then. Unset: 'at the next purge'.")] = None,
    receipt_key: Annotated[Optional[Path], typer.Option(
        "--receipt-key", help="The audit key (Ed25519 private key, PEM) that signs purge receipts on /me and the "
        "API (or $CONSENTRY_RECEIPT_KEY). Without it, no receipts are offered.")] = None,
) -> None:
    """Start the privacy center: web pages, and the JSON API at /api/v1.

    Every page and mail names the platform, the controller and its DPO
    (--controller-file FILE, or the options)."""

    import uvicorn

    from ..center import CenterSettings
    from ..notices import SmtpSettings

    secret = config.secret_key()
    if not secret:
        raise ConsentryError(
            "set CONSENTRY_SECRET_KEY to a random value of at least 32 characters "
            "(e.g. `export CONSENTRY_SECRET_KEY=$(openssl rand -hex 32)`); it signs sign-in links and sessions"
        )
    if len(set(secret.strip())) < 8:
        # 40 spaces (an unfilled template) passed the length check: anyone could sign a link or a session.
        raise ConsentryError(
            f"$CONSENTRY_SECRET_KEY has only {len(set(secret.strip()))} different characters, so it can be guessed; "
            "it signs sign-in links, sessions and objection links: set it to a random value "
            "(e.g. `export CONSENTRY_SECRET_KEY=$(openssl rand -hex 32)`)")
    smtp_url = config.smtp_url(smtp)
    if smtp and _has_password(smtp):
        err.print("[yellow]note:[/] --smtp carries a password, which every local user can read in the process list; "
                  "pass the URL in $CONSENTRY_SMTP instead", highlight=False, markup=True)
    sources = {**_SOURCE, "smtp": "--smtp" if smtp else "$CONSENTRY_SMTP",
               "metrics_token": "--metrics-token" if metrics_token else "$CONSENTRY_METRICS_TOKEN",
               "receipt_key": "--receipt-key" if receipt_key else "$CONSENTRY_RECEIPT_KEY",
               "ledger_url": "--ledger" if ledger else ("$CONSENTRY_LEDGER" if config.ledger_from_env()
                                                        else "the default ledger (consentry.db in $CONSENTRY_HOME)")}
    if metrics_token is not None and not metrics_token.strip():
        # `--metrics-token "$METRICS_TOKEN"` with the variable unset would have left /metrics open without a word.
        raise InputError("is empty, which would serve /metrics to anyone", where="--metrics-token",
                         fix="give the token (at least 16 characters), or leave the option out")
    token = config.metrics_token(metrics_token)
    try:
        settings = CenterSettings(
            data=data, ledger_url=config.ledger_url(ledger), policy=policy,
            cutoff=parse_instant(cutoff, what="cut-off") if cutoff else None, secret_key=secret,
            base_url=base_url or _local_url(host, port),
            smtp=SmtpSettings.from_url(smtp_url) if smtp_url else None, mail_dir=mail_dir,
            trusted_proxies=trusted_proxy or [], metrics_token=token or None, max_body_bytes=max_body_bytes,
            controller=controller_from(controller, platform_name, controller_name, controller_address, dpo),
            purge_within_hours=purge_within,
            receipt_key=config.receipt_key(receipt_key),
        )
    except ValidationError as exc:
        raise ConsentryError(_refused(exc, sources)) from None
    except ValueError as exc:
        raise ConsentryError(str(exc)) from None
    from ..sources import Export

    Export(data)  # a missing export is refused here, before the center is announced (its workers open it)
    from ..policy import load_policy

    pol = load_policy(settings.policy)  # likewise a bad policy: "privacy center on ..." was printed before its error
    from ..ledger import Ledger

    # And the ledger: with --workers N each worker failed on it and was restarted, for ever, with nothing listening.
    Ledger(settings.ledger_url).close()
    _check_mail_server(settings)
    _check_port(host, port)
    # Workers rebuild the settings; secrets travel only in their own variables.
    config.hand_to_workers(settings.model_dump_json(exclude={"secret_key", "smtp", "metrics_token"}), smtp_url, token)
    err.print(f"privacy center on http://{host}:{port} (API docs at /api/v1/docs)", highlight=False)
    if base_url is None and host in _EVERY_INTERFACE:
        err.print(f"[yellow]note:[/] mailed links point to {escape(str(settings.base_url))}; pass --base-url with the address "
                  "people reach this center at", highlight=False, markup=True)
    if missing := settings.controller.missing():
        err.print("[yellow]note:[/] " + escape(_unnamed(missing)), highlight=False, markup=True)
    if said := _not_honoured(pol):
        err.print("[yellow]note:[/] " + escape(said), highlight=False, markup=True)
    if settings.cutoff is not None and settings.cutoff <= datetime.now(UTC):
        err.print(f"[yellow]note:[/] the cut-off {iso(settings.cutoff)} has passed: pages show what a data set with "
                  "that cut-off built now would hold (later objections and deletions counted), and the notice page "
                  "says no date is set for the next one; pass --cutoff with the next planned build",
                  highlight=False, markup=True)
    if token is None:
        err.print("note: /metrics is off; set --metrics-token (or $CONSENTRY_METRICS_TOKEN) to scrape it", highlight=False)
    from ..center import prepare_multiprocess_dir

    prepare_multiprocess_dir(workers)  # /metrics sums every worker's counts
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from
    # 127.0.0.1; the app decides, from --trusted-proxy only.
    uvicorn.run("consentry.center.asgi:app", host=host, port=port, workers=workers, log_level="warning",
                proxy_headers=False, server_header=False)


_EVERY_INTERFACE = ("0.0.0.0", "::", "")


def _check_port(host: str, port: int) -> None:
    """Refuse a port another server holds before the center is announced
    (uvicorn's own error came after "privacy center on ..."). Bound as uvicorn
    binds, with SO_REUSEADDR, and released at once."""
    import socket

    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"cannot be resolved ({exc.strerror})", where=f"--host {host}") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            raise InputError(f"cannot listen there: {exc.strerror}", where=f"{host}:{port}",
                             fix="stop the server that holds it, or pass another --port") from None


def _unnamed(missing: list[str]) -> str:
    """What the pages and mails cannot say, for want of the controller's fields."""
    from ..controller import FIELDS

    said = "pages and mails do not name who runs this center and answers for it (GDPR Art. 13(1)(a) and (b)): pass "
    said += ", ".join(FIELDS[f][1] for f in missing) + " (or --controller-file)"
    if "platform" in missing:  # each catalog's own placeholder, not English words in a Romanian sentence
        said += ("; until then they write a placeholder for the platform's name ('the platform' in English, "
                 "'[Name der Plattform]' in German)")
    return said


def _not_honoured(policy) -> str | None:  # noqa: ANN001 - a Policy
    """What the pages will tell people the policy does not do for them, so the
    operator hears it first (under meta-2024: objections outside Europe, and
    those of people without an account, are recorded but not honoured)."""
    where = [j.name for j in policy.jurisdictions if not j.honour_objections]
    parts = [f"objections in {', '.join(where)}"] if where else []
    if not policy.honour_third_party_objections:
        parts.append("objections from people without an account")
    if not parts:
        return None
    return (f"policy '{policy.name}' does not honour {' nor '.join(parts)}: the center records them and tells those "
            "people that they are not honoured")


def _local_url(host: str, port: int) -> str:
    """The address links in mails use when no --base-url is given: where this
    center listens (a mailed link to another port than --port opened nothing)."""
    if host in _EVERY_INTERFACE:
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


#: Where each of the center's settings comes from, as its operator sets it.
_SOURCE = {
    "data": "--data", "ledger_url": "--ledger", "policy": "--policy", "cutoff": "--cutoff",
    "secret_key": "$CONSENTRY_SECRET_KEY", "base_url": "--base-url", "smtp": "--smtp", "mail_dir": "--mail-dir",
    "controller": "the controller (--controller-file or its options)", "purge_within_hours": "--purge-within",
    "receipt_key": "--receipt-key", "max_body_bytes": "--max-body-bytes", "trusted_proxies": "--trusted-proxy",
    "metrics_token": "--metrics-token",
}


def _has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def _refused(exc: ValidationError, sources: dict[str, str] = _SOURCE) -> str:
    """pydantic's report on the center's settings, as one line per setting that
    was refused, named as the operator set it (an option, or its variable)."""
    lines = []
    for e in exc.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        msg = e["msg"].removeprefix("Value error, ").replace("\n", "\n    ")
        lines.append(f"{sources.get(field, field)}: {msg}" if field else msg)
    return "the privacy center cannot start:\n" + "\n".join(f"  {ln}" for ln in lines) if len(lines) > 1 else lines[0]


def _check_mail_server(settings) -> None:  # noqa: ANN001
    """Refuse to start a center whose mail settings are wrong: connect, TLS
    and AUTH now (nothing is sent), rather than queue sign-in links nobody
    will get. A server that is only down (a temporary failure) is warned of,
    not refused. --mail-dir skips it: mails are then files."""
    import socket

    from ..errors import TemporaryFailure
    from ..mail import MailError, check_smtp

    if settings.mail_dir is not None:
        if settings.smtp is not None:
            err.print(f"--mail-dir given: mails are written to {settings.mail_dir}, not sent over SMTP", highlight=False)
        return
    if settings.smtp is None:
        raise ConsentryError("the privacy center needs --smtp or $CONSENTRY_SMTP (or --mail-dir for local development)")
    err.print(f"checking the mail server {settings.smtp.server} ...", highlight=False)
    try:
        socket.getaddrinfo(settings.smtp.host, settings.smtp.port)
    except socket.gaierror as exc:  # a name that resolves nowhere is a mistake, not an outage
        raise ConsentryError(f"not starting: the mail server {settings.smtp.server} cannot be found ({exc.strerror}). "
                             "Fix --smtp (or $CONSENTRY_SMTP)") from None
    try:
        check_smtp(settings.smtp)
    except TemporaryFailure as exc:
        # An outage, not a mistake: the outbox keeps every mail until the server is back, and a center that
        # would not start until then would take no objection either (a restart during a mail outage).
        err.print(f"[yellow]warning:[/] the mail server does not answer now ({escape(str(exc))}); starting anyway: "
                  "mails wait in the outbox and go out when it is back (`consentry mail status`)",
                  highlight=False, markup=True)
    except MailError as exc:  # its text names server and stage, and never holds the password
        raise ConsentryError(
            f"not starting: the mail server check failed. {exc}. Without it the center cannot send sign-in "
            "links or confirmations. Fix --smtp (or $CONSENTRY_SMTP), or for local development use "
            "--mail-dir DIR to write mails as files"
        ) from None
