"""The `consentry` command: a thin face over the library."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from . import config
from .cli_common import LedgerOpt, PolicyOpt, err, friendly, out
from .errors import ConsentryError, InputError
from .timeutil import iso, parse_instant

app = typer.Typer(
    help="Decide which user-generated content may train AI models, and prove it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ledger_app = typer.Typer(help="The ledger of what people said and were told.", no_args_is_help=True)
policy_app = typer.Typer(help="Built-in and custom policies.", no_args_is_help=True)
admin_app = typer.Typer(help="Privacy center administrators and API clients.", no_args_is_help=True)
notices_app = typer.Typer(help="Notice campaigns: status and in-app notices.", no_args_is_help=True)
snapshot_app = typer.Typer(help="Training snapshots on Delta Lake: build, purge, verify.", no_args_is_help=True)
model_app = typer.Typer(help="Models trained on snapshots (lineage).", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(model_app, name="model")
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(notices_app, name="notices")
app.add_typer(ledger_app, name="ledger")
app.add_typer(policy_app, name="policy")
app.add_typer(admin_app, name="admin")


DataOpt = Annotated[Path, typer.Option("--data", help="The platform export folder (CONTRACT §1).")]
AtOpt = Annotated[str, typer.Option("--at", help="Cut-off time T, ISO 8601 UTC, e.g. 2024-06-26T00:00:00Z.")]
EngineOpt = Annotated[str, typer.Option("--engine", help="duckdb (in this process) or spark.")]
ControllerFileOpt = Annotated[Optional[Path], typer.Option(
    "--controller-file", help="YAML with platform, name, address, dpo (default: $CONSENTRY_CONTROLLER or controller.yaml "
    "in $CONSENTRY_HOME).")]
PlatformOpt = Annotated[Optional[str], typer.Option("--platform", help="The platform's name, as people know it.")]
ControllerNameOpt = Annotated[Optional[str], typer.Option("--controller-name", help="The controller's legal name.")]
ControllerAddressOpt = Annotated[Optional[str], typer.Option("--controller-address", help="The controller's postal address.")]
DpoOpt = Annotated[Optional[str], typer.Option("--dpo", help="The data protection officer's name and contact.")]
SparkMasterOpt = Annotated[str, typer.Option(
    "--spark-master", help="With --engine spark: local[*], local[N], spark://host:port, yarn or k8s://...")]
SparkConfOpt = Annotated[list[str] | None, typer.Option(
    "--conf", help="With --engine spark: a Spark setting KEY=VALUE, passed through (repeatable).")]


def _ledger(url: str | None):  # noqa: ANN202
    from .ledger import Ledger

    return Ledger(config.ledger_url(url))


def _export(data: Path, quiet: bool = False, spark=None):  # noqa: ANN001, ANN202 - spark: a SparkSession
    """The export, validated (by Spark jobs when `spark` is given) or known valid from the memo."""
    from .platform import spark_check
    from .sources import ValidationMemo, open_export

    check = spark_check(spark) if spark is not None else None
    on = " on Spark" if spark is not None else ""
    with err.status(f"checking the export {data}{on} ...") if not quiet else _null():
        export, report, cached = open_export(data, memo=ValidationMemo(config.validation_memo_path()), check=check)
    if not quiet:
        rows = ", ".join(f"{n:,} {t}" for t, n in report.rows.items())
        note = f"unchanged since validated {report.validated_at}" if cached else "valid"
        err.print(f"export {data}: {rows} ({note})", highlight=False)
    return export


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


# -- export ------------------------------------------------------------------------


@app.command()
@friendly
def validate(
    data: DataOpt,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Check an export against the contract; every problem is named with its file, row and fix.

    With --engine spark, the checks run as Spark jobs over the files Spark reads."""
    from .platform import spark_check
    from .sources import ValidationMemo, open_export

    spark = _spark_for(engine, spark_master, conf)
    check = spark_check(spark) if spark is not None else None
    with err.status(f"checking {data} ..."):
        _, report, _ = open_export(data, memo=None, check=check)
    ValidationMemo(config.validation_memo_path()).put(report)
    table = Table("table", "format", "rows", title=f"{data}: valid")
    for name, n in report.rows.items():
        table.add_row(name, report.formats[name], f"{n:,}")
    out.print(table)


@app.command()
@friendly
def evaluate(
    data: DataOpt,
    at: AtOpt,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the decisions (.parquet).")],
    policy: PolicyOpt = "recommended",
    ledger: LedgerOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Decide every item at the cut-off; write item_id, user_id, eligible, reason."""
    from .platform import Platform
    from .policy import load_policy

    t = parse_instant(at, what="cut-off time")
    pol = load_policy(policy)
    spark = _spark_for(engine, spark_master, conf)
    export = _export(data, spark=spark)
    with _ledger(ledger) as led, Platform(export, led, pol, engine=_engine(engine), spark_session=spark) as platform:
        with err.status(f"deciding on {engine} ..."):
            result = platform.evaluate(t, out_file)
    print_counts(result)
    where = "a folder of Parquet parts " if engine == "spark" else ""
    out.print(
        f"wrote {result.items:,} decisions to {where}{out_file} in {result.seconds:.1f}s "
        f"(policy {pol.name} {pol.hash}, ledger up to event #{result.watermark}, engine {engine})",
        highlight=False,
    )


def _engine(name: str) -> str:
    from .errors import InputError
    from .platform import ENGINES

    if name not in ENGINES:
        raise InputError(f"unknown engine {name!r}", where="--engine", fix=f"use one of: {', '.join(ENGINES)}")
    return name


def _controller(file: Path | None, platform: str | None, name: str | None, address: str | None, dpo: str | None):  # noqa: ANN202
    """Who is asking: the controller file, overridden field by field by the options."""
    from .controller import load_controller

    return load_controller(config.controller_file(file)).merged(platform=platform, name=name, address=address, dpo=dpo)


def _spark_for(engine: str, master: str, conf: list[str] | None):  # noqa: ANN202 - a SparkSession or None
    """The Spark session a command runs on (--engine spark), or None for DuckDB."""
    if _engine(engine) != "spark":
        return None
    from .engine.spark import session

    return session(master, _spark_conf(conf))


def _spark_conf(pairs: list[str] | None) -> dict[str, str]:
    from .errors import InputError

    conf = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{pair!r} is not KEY=VALUE", where="--conf", fix="write it as --conf spark.executor.memory=4g")
        conf[key.strip()] = value
    return conf


def print_counts(result) -> None:  # noqa: ANN001
    from .engine import MEANING

    table = Table(title=f"Decisions at {iso(result.at)} under policy '{result.policy_name}'")
    table.add_column("#", justify="right")
    table.add_column("reason")
    table.add_column("items", justify="right")
    table.add_column("share", justify="right")
    table.add_column("meaning", style="dim")
    total = result.items or 1
    for reason, n in result.ordered_counts():
        style = "bold green" if reason == "eligible" else ("" if n else "dim")
        table.add_row(str(reason.number), reason.value, f"{n:,}", f"{100 * n / total:.1f}%", MEANING[reason], style=style)
    table.add_section()
    table.add_row("", "total", f"{result.items:,}", "100%", "")
    out.print(table)


@app.command()
@friendly
def explain(
    item_id: Annotated[str, typer.Argument(help="The item to explain.")],
    data: DataOpt,
    at: AtOpt,
    policy: PolicyOpt = "recommended",
    ledger: LedgerOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Show every rule for one item, passed or failed, including each tagged person's."""
    from .platform import Platform
    from .policy import load_policy

    t = parse_instant(at, what="cut-off time")
    pol = load_policy(policy)
    spark = _spark_for(engine, spark_master, conf)
    export = _export(data, quiet=True, spark=spark)
    with _ledger(ledger) as led, Platform(export, led, pol, engine=_engine(engine), spark_session=spark) as platform:
        e = platform.explain(item_id, t)
    out.print(f"[bold]{e.item_id}[/] by {e.user_id}, policy '{e.policy}', cut-off {iso(e.at)}", highlight=False)
    _print_checks(e.checks, e.reason)
    for person in e.tagged:
        out.print(f"\ntagged person [bold]{person.user_id}[/]", highlight=False)
        first = person.first_failure
        _print_checks(person.checks, first.reason if first else None)
    color = "green" if e.eligible else "red"
    out.print(f"\n[bold {color}]{e.summary}[/]", highlight=False)


def _print_checks(checks, decisive) -> None:  # noqa: ANN001
    table = Table(show_header=True, box=None, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("rule")
    table.add_column("result")
    table.add_column("because")
    for c in checks:
        if c.failed is None:
            result = "[dim]n/a[/]"
        elif c.failed:
            result = "[bold red]FAIL[/]" + (" ◀ decides" if c.reason == decisive else "")
        else:
            result = "[green]pass[/]"
        table.add_row(str(c.number), c.reason.value, result, c.detail)
    out.print(table)


# -- ledger --------------------------------------------------------------------------


@ledger_app.command("import")
@friendly
def ledger_import(
    file: Annotated[Path, typer.Argument(help="JSONL, one event per line (CONTRACT §2).")],
    ledger: LedgerOpt = None,
) -> None:
    """Load events; the whole file or nothing, and events already there are skipped."""
    with _ledger(ledger) as led, err.status(f"importing {file} ..."):
        r = led.import_jsonl(file)
    repeated = f", {r.repeated:,} repeated in the file (imported once)" if r.repeated else ""
    out.print(
        f"{file}: {r.read:,} events read, {r.added:,} added, {r.already_there:,} already in the ledger{repeated}"
        + (f" (events #{r.first_seq}-#{r.last_seq})" if r.added else ""),
        highlight=False,
        soft_wrap=True,
    )


@ledger_app.command("show")
@friendly
def ledger_show(
    user_id: Annotated[str, typer.Argument(help="The person.")],
    ledger: LedgerOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """A person's history, oldest first, and where they stand now."""
    with _ledger(ledger) as led:
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
    out.print(table)
    if state:
        words = []
        words.append("objects" if state.objects else "does not object")
        words.append("consents" if state.consents else "has not consented")
        if state.erasure_us is not None:
            words.append("asked for erasure")
        words.append("was notified" if state.first_notified_us is not None else "was never notified")
        out.print("now: " + ", ".join(words), highlight=False)


@ledger_app.command("status")
@friendly
def ledger_status(ledger: LedgerOpt = None) -> None:
    """Where the ledger is and how much it holds."""
    from .ledger import redact_url

    with _ledger(ledger) as led:
        out.print(f"{redact_url(led.url)}: {led.count():,} events, watermark #{led.watermark()}", highlight=False)


@app.command("object")
@friendly
def object_(
    user_id: Annotated[str, typer.Argument(help="The person who objects.")],
    note: Annotated[Optional[str], typer.Option(help="Optional; an objection never needs a reason.")] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Record an objection now. It takes effect at the moment it is recorded."""
    from .ledger import Channel, EventType, NewEvent

    with _ledger(ledger) as led:
        e = led.record(
            NewEvent(user_id=user_id, type=EventType.objected, at=datetime.now(UTC), channel=Channel.cli, note=note)
        )
    out.print(
        f"objection of {user_id} recorded as event #{e.seq}; it applies from {iso(e.at)} "
        f"to every cut-off at or after that time",
        highlight=False,
    )


# -- policies -------------------------------------------------------------------------


@policy_app.command("list")
@friendly
def policy_list() -> None:
    """The built-in policies."""
    from .policy import load_policy, preset_names

    table = Table("name", "hash", "description")
    for name in preset_names():
        p = load_policy(name)
        table.add_row(name, p.hash, p.description)
    out.print(table)


@policy_app.command("show")
@friendly
def policy_show(name: Annotated[str, typer.Argument(help="A built-in policy or a file.")] = "recommended") -> None:
    """Print a policy as YAML, to copy and edit."""
    from .policy import load_policy, preset_names, preset_text

    if name in preset_names():
        sys.stdout.write(preset_text(name))
    else:
        sys.stdout.write(Path(name).read_text("utf-8") if Path(name).is_file() else "")
    p = load_policy(name)
    err.print(f"# {p.name}: hash {p.hash}", highlight=False)


@policy_app.command("check")
@friendly
def policy_check(file: Annotated[Path, typer.Argument(help="A policy YAML file.")]) -> None:
    """Validate a policy file and print its hash."""
    from .policy import load_policy

    p = load_policy(str(file))
    out.print(f"{file}: valid policy '{p.name}', hash {p.hash}", highlight=False)


# -- data -------------------------------------------------------------------------------


@app.command()
@friendly
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="An empty or new folder.")],
    users: Annotated[int, typer.Option(help="How many people.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 0,
    media: Annotated[int, typer.Option(help="How many photos get a real JPEG.")] = 200,
) -> None:
    """Write a realistic synthetic export and an events.jsonl ledger."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from .generate import generate as run

    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("generating people", total=users)
        try:
            s = run(out_dir, users=users, seed=seed, media=media, progress=lambda n: bar.update(task, completed=n))
        except ValueError as exc:
            raise ConsentryError(str(exc)) from None
    out.print(
        f"wrote {s.users:,} users, {s.items:,} items, {s.tags:,} tags, {s.events:,} events "
        f"and {s.media_files:,} images to {out_dir}",
        highlight=False,
    )


@app.command()
@friendly
def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Where to put the demo's files.")] = Path("demo"),
    users: Annotated[int, typer.Option(help="How many people to generate.")] = 20_000,
    at: AtOpt = "2024-06-26T00:00:00Z",
) -> None:
    """The whole job on generated data: generate, import the ledger, evaluate, summarise."""
    data = workdir / "export"
    led_url = f"sqlite:///{(workdir / 'consentry.db').resolve()}"
    if not (data / "users.parquet").exists():
        workdir.mkdir(parents=True, exist_ok=True)
        generate(out_dir=data, users=users, seed=42, media=100)
    ledger_import(data / "events.jsonl", ledger=led_url)
    eligible = {}
    for name in ("meta-2024", "recommended"):
        target = workdir / f"decisions-{name}.parquet"
        evaluate(data=data, at=at, out_file=target, policy=name, ledger=led_url)
        eligible[name] = _count_eligible(target)
    fewer = eligible["meta-2024"] - eligible["recommended"]
    out.print(
        f"\n[bold]Summary:[/] meta-2024 would train on {eligible['meta-2024']:,} items; recommended on "
        f"{eligible['recommended']:,} ({fewer:,} fewer: objections honoured everywhere, everyone notified, "
        "no content posted as a minor, no photos of people who may not be used, nor of people without an account who objected).",
        highlight=False,
    )
    out.print(
        f"\nNext: `consentry explain ITEM --data {data} --at {at} --ledger {led_url}` "
        "shows why an item is in or out.",
        highlight=False,
    )


# -- privacy center ----------------------------------------------------------------------


@app.command()
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
    base_url: Annotated[str, typer.Option(help="The public address, for links in mails.")] = "http://127.0.0.1:8000",
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    trusted_proxy: Annotated[
        Optional[list[str]],
        typer.Option("--trusted-proxy", help="A reverse proxy (address or network) whose X-Forwarded-For is "
                     "believed for rate limits; repeatable. None by default."),
    ] = None,
    metrics_token: Annotated[
        Optional[str], typer.Option(help="If set, GET /metrics needs 'Authorization: Bearer TOKEN' "
                                    "(or $CONSENTRY_METRICS_TOKEN).")
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
    """Start the privacy center (web pages and the JSON API at /api/v1). Every
    page and mail names the platform, the controller and its DPO (--controller
    FILE or the options)."""

    import uvicorn

    from .center.settings import CenterSettings
    from .notices.mailer import SmtpSettings

    secret = config.secret_key()
    if not secret:
        raise ConsentryError(
            "set CONSENTRY_SECRET_KEY to a random value of at least 32 characters "
            "(e.g. `export CONSENTRY_SECRET_KEY=$(openssl rand -hex 32)`); it signs sign-in links and sessions"
        )
    smtp_url = config.smtp_url(smtp)
    token = config.metrics_token(metrics_token)
    try:
        settings = CenterSettings(
            data=data, ledger_url=config.ledger_url(ledger), policy=policy,
            cutoff=parse_instant(cutoff, what="cut-off") if cutoff else None, secret_key=secret, base_url=base_url,
            smtp=SmtpSettings.from_url(smtp_url) if smtp_url else None, mail_dir=mail_dir,
            trusted_proxies=trusted_proxy or [], metrics_token=token or None, max_body_bytes=max_body_bytes,
            controller=_controller(controller, platform_name, controller_name, controller_address, dpo),
            purge_within_hours=purge_within,
            receipt_key=config.receipt_key(receipt_key),
        )
    except ValueError as exc:
        raise ConsentryError(str(exc)) from None
    _check_mail_server(settings)
    # Workers rebuild the settings; secrets travel only in their own variables.
    config.hand_to_workers(settings.model_dump_json(exclude={"secret_key", "smtp", "metrics_token"}), smtp_url, token)
    err.print(f"privacy center on http://{host}:{port} (API docs at /api/v1/docs)", highlight=False)
    from .center.metrics import prepare_multiprocess_dir

    prepare_multiprocess_dir(workers)  # /metrics sums every worker's counts
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from
    # 127.0.0.1; the app decides, from --trusted-proxy only.
    uvicorn.run("consentry.center.asgi:app", host=host, port=port, workers=workers, log_level="warning",
                proxy_headers=False, server_header=False)


@admin_app.command("add")
@friendly
def admin_add(
    username: str,
    role: Annotated[str, typer.Option(help="reviewer (may reject with grounds) or viewer")] = "reviewer",
    ledger: LedgerOpt = None,
) -> None:
    """Add or update an administrator; the password is asked for, never taken as an argument."""
    from .access import Admins

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with _ledger(ledger) as led:
        a = Admins(led.engine).add(username, password, role)
    out.print(f"administrator {a.username} ({a.role}) saved; any session of theirs has ended", highlight=False)


@admin_app.command("remove")
@friendly
def admin_remove(username: str, ledger: LedgerOpt = None) -> None:
    """Remove an administrator; their sessions end at once."""
    from .access import Admins

    with _ledger(ledger) as led:
        if not Admins(led.engine).remove(username):
            raise ConsentryError(f"there is no administrator '{username}'")
    out.print(f"administrator {username} removed; their sessions have ended", highlight=False)


@admin_app.command("client")
@friendly
def admin_client(
    name: Annotated[str, typer.Argument(help="A name for a new client, or 'list', or 'revoke' followed by a client id.")],
    client_id: Annotated[Optional[str], typer.Argument(help="With 'revoke': the client id (cl_...).")] = None,
    scope: Annotated[
        Optional[list[str]], typer.Option("--scope", help="read (GET) and/or write (POST); repeatable. Default: both.")
    ] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Create an API client for a platform (its key is printed once), list the
    clients (`client list`, never a key) or revoke one (`client revoke ID`)."""
    from .access import ApiClients
    from .timeutil import from_micros

    if name in ("list", "revoke"):
        if scope:
            raise ConsentryError(f"--scope is for creating a client, not for '{name}'")
        if (name == "revoke") != (client_id is not None):
            raise ConsentryError("usage: consentry admin client revoke CLIENT_ID" if name == "revoke"
                                 else "usage: consentry admin client list")
    elif client_id is not None:
        raise ConsentryError(f"unexpected extra argument '{client_id}'; quote a client name with spaces")
    with _ledger(ledger) as led:
        clients = ApiClients(led.engine)
        if name == "list":
            table = Table("client", "name", "scopes", "created", "revoked", title="API clients")
            for r in clients.list():
                table.add_row(r["client_id"], r["name"], r["scopes"], iso(from_micros(r["created_us"])),
                              iso(from_micros(r["revoked_us"])) if r["revoked_us"] else "")
            out.print(table)
            return
        if name == "revoke":
            assert client_id is not None
            if not clients.revoke(client_id):
                raise ConsentryError(f"no active client '{client_id}' (see `consentry admin client list`)")
            out.print(f"client {client_id} revoked; its key is refused from now on", highlight=False)
            return
        client_id, key = clients.create(name, tuple(scope or ("read", "write")))
    out.print(f"client {client_id} ({name}, {', '.join(scope or ('read', 'write'))}); key (shown once, store it safely):",
              highlight=False)
    sys.stdout.write(key + "\n")


def _check_mail_server(settings) -> None:  # noqa: ANN001
    """Refuse to start a center that cannot mail: connect, TLS and AUTH now
    (nothing is sent), rather than queue sign-in links nobody will get.
    --mail-dir skips it: mails are then files, the SMTP server is not used."""
    from .mail import MailError, check_smtp

    if settings.mail_dir is not None:
        if settings.smtp is not None:
            err.print(f"--mail-dir given: mails are written to {settings.mail_dir}, not sent over SMTP", highlight=False)
        return
    if settings.smtp is None:
        raise ConsentryError("the privacy center needs --smtp or $CONSENTRY_SMTP (or --mail-dir for local development)")
    err.print(f"checking the mail server {settings.smtp.server} ...", highlight=False)
    try:
        check_smtp(settings.smtp)
    except MailError as exc:  # its text names server and stage, and never holds the password
        raise ConsentryError(
            f"not starting: the mail server check failed. {exc}. Without it the center cannot send sign-in "
            "links or confirmations. Fix --smtp (or $CONSENTRY_SMTP), or for local development use "
            "--mail-dir DIR to write mails as files"
        ) from None


# -- mail -----------------------------------------------------------------------------------

mail_app = typer.Typer(help="The privacy center's mail outbox: what is waiting, what never arrived.", no_args_is_help=True)
app.add_typer(mail_app, name="mail")


@mail_app.command("status")
@friendly
def mail_status(
    ledger: LedgerOpt = None,
    limit: Annotated[int, typer.Option(help="How many undelivered mails to list.")] = 50,
) -> None:
    """Mails queued, sent, expired and refused; the ones that never arrived are listed (never their content)."""
    from .mail import outbox

    with _ledger(ledger) as led, led.reader.connect() as conn:
        counts = outbox.counts(conn)
        lost = outbox.undelivered(conn, limit)
    out.print(", ".join(f"{n:,} {state}" for state, n in counts.items()), highlight=False)
    if lost:
        table = Table("id", "kind", "to", "queued at", "state", "attempts", "last error")
        for m in lost:
            table.add_row(m["id"], m["kind"], m["recipient"], iso(m["created"]), m["state"], str(m["attempts"]),
                          m["last_error"] or "")
        out.print(table)


@mail_app.command("send")
@friendly
def mail_send(
    ledger: LedgerOpt = None,
    smtp: Annotated[Optional[str], typer.Option(help="smtp+starttls://user:pass@host:587?sender=... (or $CONSENTRY_SMTP)")] = None,
    mail_dir: Annotated[Optional[Path], typer.Option(help="Write the mails to this folder instead.")] = None,
    now: Annotated[bool, typer.Option("--now", help="Try every queued mail now, even those waiting for their next attempt.")] = False,
) -> None:
    """Deliver the mails that are due, as a center's sender does (safe next to running centers)."""
    from .mail import FolderTransport, Sender, SmtpSettings, SmtpTransport, outbox

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
    with _ledger(ledger) as led:
        if now:
            with led.transaction() as conn:
                outbox.retry_now(conn)
        done = Sender(led, transport).drain()
    out.print(
        f"{done.sent:,} sent, {done.retrying:,} to try again later, {done.failed:,} refused, {done.expired:,} expired",
        highlight=False,
    )
    if done.retrying or done.failed or done.expired:
        raise typer.Exit(1)


# -- notices -------------------------------------------------------------------------------


def _secret() -> str:
    secret = config.secret_key()
    if not secret or len(secret) < 32:
        raise ConsentryError(
            "set CONSENTRY_SECRET_KEY (the privacy center's, at least 32 characters): "
            "it signs the one-click objection links in the notices"
        )
    return secret


@app.command()
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
    base_url: Annotated[str, typer.Option(help="The privacy center's public address.")] = "http://127.0.0.1:8000",
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
    Every notice names the platform, the controller and its DPO (--controller FILE
    or the options): a campaign does not start without them.
    With --engine spark, Spark computes who must be told; the mail goes from here."""

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    from .notices.campaign import CHANNELS, Campaign
    from .notices.mailer import Mailer, SmtpSettings
    from .platform import Platform
    from .policy import load_policy

    wanted = tuple(c.strip() for c in channels.split(",") if c.strip())
    if not wanted or any(c not in CHANNELS for c in wanted):
        raise ConsentryError(f"--channels takes {', '.join(CHANNELS)} (comma-separated), got '{channels}'")
    t = parse_instant(cutoff, what="cut-off")
    who = _controller(controller, platform_name, controller_name, controller_address, dpo)
    if not dry_run:
        who.require("a notice campaign")
    pol = load_policy(policy)
    spark = _spark_for(engine, spark_master, conf)
    export = _export(data, spark=spark)
    with _ledger_notice(ledger) as led, Platform(export, led, pol, engine=_engine(engine), spark_session=spark) as platform:
        if dry_run:  # nothing is created: no campaign, no outbox, no mail
            from .notices.campaign import summarize

            plan = summarize(platform.audience(t).to_pylist())
            table = Table("jurisdiction", "language", "people", title=f"Would notify {plan.people:,} people (dry run)")
            for (j, lang), n in sorted(plan.per_jurisdiction_language.items()):
                table.add_row(j, lang, f"{n:,}")
            out.print(table)
            out.print(f"{plan.without_email:,} have no e-mail address (in-app notice only)")
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
        camp = Campaign.open(led, campaign, pol, t)
        backend = platform.backend()
        try:
            plan = camp.plan(export, pol, channels=wanted, backend=backend)
        finally:
            backend.close()
        err.print(f"campaign {campaign}: {plan.people:,} people in scope, {plan.added:,} new outbox entries", highlight=False)
        summary = None
        if mailer is not None and secret is not None:
            pending = camp.counts().get(("email", "pending"), 0) + camp.counts().get(("email", "sending"), 0)
            with Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                "{task.fields[rate]}", TimeRemainingColumn(), console=err,
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


def _ledger_notice(url: str | None):  # noqa: ANN202
    from .ledger import Ledger

    return Ledger(config.ledger_url(url), synchronous="NORMAL")


def _print_campaign(camp, summary) -> None:  # noqa: ANN001
    counts = camp.counts()
    table = Table("channel", "state", "people", title=f"campaign {camp.id} ({camp.version})")
    for (ch, st), n in sorted(counts.items()):
        table.add_row(ch, st, f"{n:,}")
    out.print(table)
    if summary is not None:
        out.print(
            f"this run: {summary.sent:,} sent, {summary.bounced:,} bounced, {summary.deferred:,} deferred "
            f"(temporary failures, sent on the next run), {summary.recovered:,} recovered and "
            f"{summary.resent_after_crash:,} resent after an interruption; {summary.rate:,.0f} mails/s "
            f"({f'at most {summary.limit:g}/s' if summary.limit else 'no rate limit'})",
            highlight=False,
        )


@notices_app.command("status")
@friendly
def notices_status(campaign: str, ledger: LedgerOpt = None) -> None:
    """Where a campaign stands, per channel and state."""
    from .notices.campaign import Campaign

    with _ledger_notice(ledger) as led:
        _print_campaign(Campaign(led, campaign), None)


@notices_app.command("inapp")
@friendly
def notices_inapp(campaign: str, ledger: LedgerOpt = None) -> None:
    """Print the in-app notices the platform should show, one JSON object per line."""
    from .notices.campaign import Campaign

    with _ledger_notice(ledger) as led:
        for row in Campaign(led, campaign).in_app_pending():
            sys.stdout.write(json.dumps(row) + "\n")


@notices_app.command("ack")
@friendly
def notices_ack(
    campaign: str,
    file: Annotated[Path, typer.Argument(help="JSONL of shown notices (each with dedupe_key), or - for stdin.")],
    ledger: LedgerOpt = None,
) -> None:
    """Record in-app notices the platform has shown; each counts once."""
    from .notices.campaign import Campaign

    text = sys.stdin.read() if str(file) == "-" else file.read_text()
    keys = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            keys.append(json.loads(line)["dedupe_key"])
        except (ValueError, KeyError, TypeError):
            raise ConsentryError(f"{file}, line {n}: expected a JSON object with a dedupe_key") from None
    with _ledger_notice(ledger) as led:
        shown = Campaign(led, campaign).acknowledge(keys)
    out.print(f"{shown:,} in-app notices recorded as shown ({len(keys) - shown:,} were already recorded or unknown)")


# -- snapshots ---------------------------------------------------------------------


@snapshot_app.command("build")
@friendly
def snapshot_build(
    data: DataOpt,
    at: AtOpt,
    name: Annotated[str, typer.Option("--name", help="A new name: snapshots are never overwritten.")],
    policy: PolicyOpt = "recommended",
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="Folder for the snapshot (default: $CONSENTRY_HOME/snapshots/NAME).")
    ] = None,
    buckets: Annotated[int, typer.Option(help="Hash buckets of user_id: a purge rewrites only the buckets it touches.")] = 64,
    ledger: LedgerOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Write the eligible items, transformed, into a new Delta table with a manifest.
    With --engine spark, Spark computes the rows and writes the Parquet parts."""
    from .policy import load_policy
    from .snapshots import build

    t = parse_instant(at, what="cut-off time")
    pol = load_policy(policy)
    spark = _spark_for(engine, spark_master, conf)
    export = _export(data, spark=spark)
    with _ledger(ledger) as led, err.status("building ...") as status:
        m = build(export, led, pol, t, name, out=out_dir, buckets=buckets, say=lambda s: status.update(s), spark=spark)
    _print_manifest(m)


def _print_manifest(m) -> None:  # noqa: ANN001
    table = Table(title=f"snapshot '{m.name}': {m.rows:,} rows, policy {m.policy} {m.policy_hash}, cut-off {iso(m.cutoff)}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for k, v in sorted(m.excluded_at_build.items()):
        table.add_row(f"left out at build: {k}", f"{v:,}")
    for k, v in m.transforms.items():
        table.add_row(f"transform: {k}", f"{v:,}")
    for p in m.purges:
        table.add_row(f"purge {iso(p.at)} (events {p.from_watermark + 1}..{p.to_watermark})", f"-{p.rows_removed:,}")
    out.print(table)
    out.print(f"ledger watermark {m.watermark}, Delta version {m.table_version}, digest {m.digest}", highlight=False)


def _purged_line(name: str, r) -> str:  # noqa: ANN001 - a PurgeResult
    """One purge's outcome as a DPO reads it: rows removed and mentions hidden
    are both changes to the snapshot (a purge that only hides mentions still
    rewrites buckets, so it is not "nothing")."""
    hidden = r.counts.get("mentions_redacted", 0)
    if not r.rows_removed and not hidden:
        return f"{name}: nothing to remove (ledger up to event {r.to_watermark})"
    return (f"{name}: events {r.from_watermark + 1}..{r.to_watermark}: removed {r.rows_removed:,} rows of "
            f"{r.people:,} people; hid @mentions in {hidden:,} rows that stay; rewrote {r.buckets_rewritten} "
            f"buckets, {r.files_removed:,} files deleted ({r.seconds:.1f}s)")


@snapshot_app.command("purge")
@friendly
def snapshot_purge(
    name: Annotated[Optional[str], typer.Argument(help="The snapshot (default with --all: every snapshot).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Purge every snapshot in the ledger (for cron).")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Keep purging as new events arrive, until interrupted.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between rounds with --watch.")] = 60.0,
    data: Annotated[Optional[Path], typer.Option("--data", help="The current export (default: the one built from).")] = None,
    ledger: LedgerOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Remove from existing snapshots everyone the ledger now excludes, and vacuum the old files away.

    With --engine spark, Spark finds the rows and rewrites the touched buckets."""
    import time

    from .snapshots import Registry
    from .snapshots.purge import purge

    if not name and not every:
        raise ConsentryError("name a snapshot, or pass --all")
    spark = _spark_for(engine, spark_master, conf)
    with _ledger(ledger) as led:
        while True:
            names = [name] if name else [r.name for r in Registry(led).all()]
            for n in names:
                r = purge(led, n, data=data, spark=spark)
                out.print(_purged_line(n, r), highlight=False)
            if not watch:
                return
            time.sleep(interval)


@snapshot_app.command("verify")
@friendly
def snapshot_verify(
    name: Annotated[str, typer.Argument(help="The snapshot.")],
    data: Annotated[Optional[Path], typer.Option("--data", help="The current export (default: the one built from).")] = None,
    ledger: LedgerOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = "local[*]",
    conf: SparkConfOpt = None,
) -> None:
    """Re-check every row against the current ledger; exit 1 if any should not be there.

    With --engine spark, Spark decides and reads the snapshot's rows."""
    from .snapshots.verify import verify

    spark = _spark_for(engine, spark_master, conf)
    with _ledger(ledger) as led, err.status("verifying ..."):
        total, problems = verify(led, name, data=data, spark=spark)
    if not problems:
        out.print(f"[green]{name}: all {total:,} rows may be there.[/]", highlight=False)
        return
    err.print(f"[bold red]{name}: {len(problems):,} of {total:,} rows should not be there:[/]", highlight=False)
    for p in problems[:50]:
        err.print(f"  {p.item_id} (user {p.user_id}): {p.why}", highlight=False, markup=False)
    if len(problems) > 50:
        err.print(f"  ... and {len(problems) - 50:,} more", highlight=False)
    err.print(f"run `consentry snapshot purge {name}`, then verify again", highlight=False)
    raise typer.Exit(1)


@snapshot_app.command("list")
@friendly
def snapshot_list(ledger: LedgerOpt = None) -> None:
    """Every snapshot with its rows, purges and models (after finishing what a crash interrupted)."""
    from .snapshots import Registry
    from .snapshots.repair import recover

    with _ledger(ledger) as led:
        for line in recover(led):
            err.print(f"[yellow]{line}[/]", highlight=False)
        reg = Registry(led)
        table = Table("name", "policy", "cut-off", "rows", "built", "purges", "watermark", "models", "where")
        for r in reg.all():
            m = r.manifest
            models = ", ".join(f"{x.name}{' (FLAGGED)' if x.flagged else ''}" for x in reg.models(r.name)) or "-"
            table.add_row(r.name, m.policy, iso(m.cutoff), f"{m.rows:,}", f"{m.rows_built:,}", str(len(m.purges)),
                          str(m.watermark), models, r.uri)
    out.print(table)


@snapshot_app.command("show")
@friendly
def snapshot_show(name: Annotated[str, typer.Argument(help="The snapshot.")], ledger: LedgerOpt = None) -> None:
    """The manifest: what went in, what was left out and why, what was purged."""
    from .snapshots import Registry

    with _ledger(ledger) as led:
        _print_manifest(Registry(led).require(name).manifest)


@model_app.command("register")
@friendly
def model_register(
    name: Annotated[str, typer.Argument(help="The model's name (once).")],
    snapshot: Annotated[str, typer.Option("--snapshot", help="The snapshot it was trained on.")],
    mlflow_run: Annotated[Optional[str], typer.Option("--mlflow-run", help="Also log the snapshot as this MLflow run's input.")] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Record that a model was trained on a snapshot as it is now."""
    import getpass

    from .snapshots.lineage import register_model

    with _ledger(ledger) as led:
        rec = register_model(led, name, snapshot, mlflow_run=mlflow_run, actor=f"cli:{getpass.getuser()}")
    out.print(f"model {rec.name}: trained on {rec.snapshot} version {rec.table_version} ({rec.rows:,} rows, {rec.digest})",
              highlight=False)


@model_app.command("list")
@friendly
def model_list(ledger: LedgerOpt = None) -> None:
    """Models and whether their snapshot lost rows since they were trained."""
    from .snapshots import Registry

    with _ledger(ledger) as led:
        table = Table("model", "snapshot", "version", "rows", "registered", "rows purged since", "status")
        for x in Registry(led).models():
            status = "[bold red]retrain or unlearn[/]" if x.flagged else "[green]current[/]"
            table.add_row(x.name, x.snapshot, str(x.table_version), f"{x.rows:,}", iso(x.registered_at), f"{x.rows_purged_since:,}", status)
    out.print(table)


@app.command()
@friendly
def impact(user_id: Annotated[str, typer.Argument(help="The person.")], ledger: LedgerOpt = None) -> None:
    """The snapshots and models that hold or held a person's data."""
    from .snapshots.lineage import impact as run

    with _ledger(ledger) as led:
        found = run(led, user_id)
    if not found:
        out.print(f"{user_id}: in no snapshot, now or before.", highlight=False)
        return
    for s in found:
        state = f"{s.rows_now:,} rows now" if s.rows_now else "no rows now"
        out.print(f"[bold]{s.snapshot}[/] (built {iso(s.built_at)}): {state}", highlight=False)
        for p in s.purged:
            out.print(f"  purged {iso(p['purged_at'])}: {p['rows']:,} rows ({p['cause']})", highlight=False)
        for mod in s.models:
            out.print(f"  model {mod.name} was trained on it ({iso(mod.registered_at)}): "
                      + ("[bold red]retraining or unlearning is due[/]" if mod.flagged else "its snapshot still holds this person's rows"),
                      highlight=False)


# -- audit -------------------------------------------------------------------------


@audit_app.command("verify")
@friendly
def audit_verify(
    public_key: Annotated[
        Optional[Path], typer.Option("--public-key", help="Ed25519 public key (PEM): also check the signed checkpoints.")
    ] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Re-hash the whole chain; name the first record edited, deleted, inserted or out of order."""
    from .audit.log import verify

    with _ledger(ledger) as led, err.status("verifying the audit log ..."):
        r = verify(led, public_key=public_key.read_bytes() if public_key else None)
    if r.ok:
        signed = f", {r.checkpoints} signed checkpoints verified" if public_key else ""
        out.print(f"[green]audit log intact:[/] {r.records:,} records, head {r.head_hash}{signed}", highlight=False)
        return
    where = f"record {r.first_bad.seq}" if r.first_bad.seq is not None else "the log"
    err.print(f"[bold red]audit log broken at {where}:[/] {r.first_bad.problem}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@audit_app.command("export")
@friendly
def audit_export(
    out_file: Annotated[Path, typer.Option("--out", help="The JSONL file to write.")],
    ledger: LedgerOpt = None,
) -> None:
    """Write every audit record as JSON lines, for a regulator or an archive."""
    from .audit.log import export_jsonl

    with _ledger(ledger) as led:
        n = export_jsonl(led, out_file)
    out.print(f"wrote {n:,} audit records to {out_file}", highlight=False)


@audit_app.command("checkpoint")
@friendly
def audit_checkpoint(
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM), e.g. from `openssl genpkey -algorithm ed25519`.")],
    ledger: LedgerOpt = None,
) -> None:
    """Sign the chain's current head, so rewriting the whole chain would need the key."""
    from .audit.log import checkpoint

    with _ledger(ledger) as led:
        seq, h = checkpoint(led, key.read_bytes())
    out.print(f"signed checkpoint at record {seq}: {h}", highlight=False)


@audit_app.command("receipt")
@friendly
def audit_receipt(
    user_id: Annotated[str, typer.Argument(help="The person.")],
    key: Annotated[Path, typer.Option("--key", help="The audit key: Ed25519 private key (PEM).")],
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write the receipts here (default: stdout).")] = None,
    ledger: LedgerOpt = None,
) -> None:
    """Signed purge receipts for one person: which snapshot versions held their
    rows, the version that removed them, when the bytes were vacuumed, and the
    purge's place in the audit chain."""
    import json

    from .snapshots.receipts import issue

    with _ledger(ledger) as led:
        docs = issue(led, user_id, key.read_bytes())
    text = json.dumps(docs, indent=2, ensure_ascii=False) + "\n"
    if out_file is None:
        out.print(text, highlight=False, markup=False, soft_wrap=True, end="")
    else:
        out_file.write_text(text, encoding="utf-8")
        err.print(f"wrote {len(docs)} receipt(s) to {out_file}", highlight=False)


@audit_app.command("verify-receipt")
@friendly
def audit_verify_receipt(
    file: Annotated[Path, typer.Argument(help="A receipt (or a list of them) as downloaded from the privacy center.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The audit key's public half (PEM).")],
    ledger: Annotated[Optional[str], typer.Option(
        "--ledger", help="Also check the purge and its audit record in this ledger.")] = None,
) -> None:
    """Check a purge receipt's signature (and, with --ledger, the chain); exit 1 if it is not genuine."""
    import json

    from .snapshots.receipts import verify_receipt

    try:
        docs = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the receipt: {exc}", where=str(file)) from None
    docs = docs if isinstance(docs, list) else [docs]
    bad = 0
    led = _ledger(ledger) if ledger else None
    try:
        for doc in docs:
            problems = verify_receipt(doc, public_key.read_bytes(), led)
            body = doc.get("receipt", {}) if isinstance(doc, dict) else {}
            what = f"{body.get('person')} / {body.get('snapshot')} purge {body.get('purge_id')}"
            if problems:
                bad += 1
                err.print(f"[bold red]NOT GENUINE[/] {what}: " + "; ".join(problems), highlight=False)
            else:
                out.print(f"[green]genuine[/] {what}: removed in version {body.get('removed_in_version')}, "
                          f"vacuumed {body.get('vacuumed_at')}, audit record {(body.get('audit') or {}).get('seq')}",
                          highlight=False)
    finally:
        if led is not None:
            led.close()
    if bad:
        raise typer.Exit(1)


def _count_eligible(path: Path) -> int:
    import duckdb

    return int(duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{path}') WHERE eligible").fetchone()[0])


from .cli_accountability import register as _register_accountability  # noqa: E402 - commands defined in their own module

_register_accountability(app)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
