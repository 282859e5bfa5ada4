"""What every command module shares: the consoles, common options, the wrapper
that prints consentry's own errors as messages, and opening the ledger, the
export and the engine the way every command does."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .. import config
from ..errors import ConsentryError, InputError

# Markup off: what is printed is shown as is (a user id, a file name, an error quoting
# "[/x]" was eaten or raised MarkupError). consentry's own styles opt in with
# markup=True and escape what they quote, or are rich Text. Soft wrap: a message
# is one line however wide the terminal (rich broke lines at 80 columns in a
# pipe or a cron job's log); tables still fit the width (`show`). Emoji codes off:
# rich turned ":m:" in a user id or a text into "Ⓜ".
out = Console(markup=False, emoji=False, soft_wrap=True)
err = Console(stderr=True, markup=False, emoji=False, soft_wrap=True)

LedgerOpt = Annotated[
    Optional[str],
    typer.Option("--ledger", help="Ledger database URL (default: $CONSENTRY_LEDGER, else the SQLite file consentry.db in $CONSENTRY_HOME, else in the working folder)."),
]
PolicyOpt = Annotated[
    str, typer.Option("--policy", help="A built-in policy (recommended, meta-2024, consent-only) or a YAML file.")
]
DataOpt = Annotated[str, typer.Option(
    "--data", help="The platform export folder (CONTRACT §1): a path, or s3://, gs://, abfs:// (credentials from the environment).")]
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


def show(table: Table, console: Console = out, *, empty: str | None = None) -> None:
    """Print `table` so that no value is cut short (rich would end it with
    '…'; a pipe or a file is 80 columns wide): as made if it fits the
    console, else without its frame, else each row as a block of `header:
    value` lines, as psql's expanded display does. A column of counts is
    aligned on the right, so its digits line up. `empty`: what to say instead
    of a table with no rows (a bare header told a new user nothing)."""
    if empty is not None and not table.row_count:
        console.print(empty, highlight=False)
        return
    for column in table.columns:
        cells = [str(c) for c in column.cells]
        if column.justify == "left" and cells and all(_NUMBER.fullmatch(c) for c in cells):
            column.justify = "right"
    if not _fits(table, console):
        table.box, table.show_edge, table.pad_edge, table.collapse_padding = box.SIMPLE_HEAD, False, False, True
    if _fits(table, console):
        console.print(table)
        return
    if table.title:
        console.print(table.title, style="bold", highlight=False)
    headers = [str(c.header) for c in table.columns]
    wide = max(map(len, headers), default=0)
    for i, cells in enumerate(zip(*(c.cells for c in table.columns))):
        if i or table.title:
            console.print()
        for header, cell in zip(headers, cells):
            console.print(f"{escape(header.ljust(wide))}  ", cell, sep="", highlight=False, soft_wrap=True)


_NUMBER = re.compile(r"-?[0-9][0-9,.]*%?")


def _fits(table: Table, console: Console) -> bool:
    """Whether `table` prints within the console's width with no value cut:
    rendered once, it shows no '…' beyond those its cells hold."""
    with console.capture() as shown:
        console.print(table)
    own = sum(str(cell).count("…") for column in table.columns for cell in column.cells)
    return shown.get().count("…") <= own


def _interrupted() -> NoReturn:
    """Ctrl-C: one line, the shell's exit status for SIGINT, never a traceback."""
    err.print("[bold yellow]interrupted[/] (Ctrl-C). Run it again: a build or purge cut short is finished or undone "
              "by the next snapshot command, a notice run goes on where it stopped, and a ledger import or a "
              "decisions file is written whole or not at all.", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(130)


def friendly(fn):  # noqa: ANN001, ANN201
    """Print consentry's own errors as messages, not tracebacks; exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            return fn(*args, **kwargs)
        except ConsentryError as exc:
            said = str(exc)
        except ValidationError as exc:  # a model made from what was typed (an event's user_id): pydantic's report, as a line
            said = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'the value'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
        except KeyboardInterrupt:
            _interrupted()
        except OSError as exc:
            if exc.filename is None:  # a socket, a pipe: not a file the person named
                raise
            # A file given on the command line that is missing, a folder, or unreadable.
            said = f"{exc.filename}: {(exc.strerror or type(exc).__name__).lower()}"
        except Exception as exc:
            if "interrupted" in str(exc).lower() and type(exc).__name__ in ("RuntimeError", "InterruptException"):
                _interrupted()  # Ctrl-C inside a DuckDB query or delta-rs: the same as anywhere else
            if (spark := _spark_failure(exc)) is None:
                raise
            said = spark
        err.print(f"[bold red]error:[/] {escape(said)}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(2)

    return wrapper


def _spark_failure(exc: Exception) -> str | None:
    """What a failed Spark job says, in a line or two; None when `exc` is not Spark's.
    (Spark has already logged its own trace.)"""
    if not type(exc).__module__.startswith(("pyspark", "py4j")):
        return None
    from ..engine import SPARK_REACH_FIX, spark_unreachable

    if (reason := spark_unreachable(exc)) is not None:
        return f"{reason}\n  fix: {SPARK_REACH_FIX}"
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    raised = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(?:Error|Exception): ", ln)]
    return "Spark could not finish: " + (raised[-1] if raised else lines[0] if lines else type(exc).__name__)


def finish_interrupted(led) -> None:  # noqa: ANN001 - a Ledger
    """Finish (or undo) what a killed build or purge left, saying each in yellow, before a command
    reads snapshots: until then a purge killed after its commit read as "no purge recorded", and its
    models as current."""
    from ..snapshots import recover

    for line in recover(led):
        err.print(Text(line, style="yellow"), highlight=False)


def open_ledger(url: str | None, *, create: bool = False):  # noqa: ANN201
    """The ledger at --ledger (or $CONSENTRY_LEDGER, or the default), its
    events read for decisions through an extract kept in CONSENTRY_HOME.
    Only a command that records (`create`: import, object, admin) starts a
    SQLite ledger: a mistyped path or another folder's default made a new,
    empty one, and "audit log intact: 0 records" or a report of nothing."""
    from ..ledger import Ledger

    resolved = config.ledger_url(url)
    if not create and (missing := _missing_sqlite(resolved)) is not None:
        source = "--ledger" if url else ("$CONSENTRY_LEDGER" if config.ledger_from_env() else
                                         "the default ledger (consentry.db in $CONSENTRY_HOME, else the working folder)")
        raise InputError(
            f"there is no ledger at {missing}; nothing was read, and no empty ledger was made there", where=source,
            fix="name the ledger that holds the events: --ledger sqlite:///FILE (an absolute path takes four slashes), "
                "$CONSENTRY_LEDGER, or $CONSENTRY_HOME for the folder of its consentry.db; "
                "`consentry ledger import FILE` starts a new ledger")
    return Ledger(resolved, extract_dir=config.extract_dir())


def _missing_sqlite(url: str) -> Path | None:
    """The file of a SQLite ledger URL when it does not exist (None otherwise,
    and for any other database: Ledger says why it cannot be opened)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # Ledger says what is wrong with the URL, without its password
        return None
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return None if Path(db).exists() else Path(db).resolve()


def checked_export(data: str | Path, quiet: bool = False, spark=None):  # noqa: ANN001, ANN201 - spark: a SparkSession
    """The export, validated (by Spark jobs when `spark` is given) or known valid from the memo."""
    from ..platform import spark_check
    from ..sources import ValidationMemo, open_export

    check = spark_check(spark) if spark is not None else None
    on = " on Spark" if spark is not None else ""
    with err.status(Text(f"checking the export {data}{on} ...")) if not quiet else nullcontext():
        export, report, cached = open_export(data, memo=ValidationMemo(config.validation_memo_path()), check=check)
    if not quiet:
        rows = ", ".join(f"{n:,} {t}" for t, n in report.rows.items())
        note = f"unchanged since validated {report.validated_at}" if cached else "valid"
        err.print(f"export {data}: {rows} ({note})", highlight=False)
    return export


def engine_name(name: str) -> str:
    """--engine, checked: one of the engines the platform knows."""
    from ..platform import ENGINES

    if name not in ENGINES:
        raise InputError(f"unknown engine {name!r}", where="--engine", fix=f"use one of: {', '.join(ENGINES)}")
    return name


def spark_for(engine: str, master: str, conf: list[str] | None):  # noqa: ANN201 - a SparkSession or None
    """The Spark session a command runs on (--engine spark), or None for DuckDB."""
    if engine_name(engine) != "spark":
        return None
    from ..engine import spark_session as session

    return session(master, _spark_conf(conf))


def _spark_conf(pairs: list[str] | None) -> dict[str, str]:
    conf = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{pair!r} is not KEY=VALUE", where="--conf", fix="write it as --conf spark.executor.memory=4g")
        conf[key.strip()] = value
    return conf


@contextmanager
def opened_platform(data: str | Path, policy: str, ledger: str | None, engine: str, spark_master: str, conf: list[str] | None,
                    *, quiet: bool = False, opener: Callable = open_ledger) -> Iterator:
    """The Platform a deciding command works on, put together the one way every
    command does it: the policy, the engine (Spark if asked), the export checked,
    the ledger (`opener`: the notices' own for a campaign)."""
    from ..platform import Platform
    from ..policy import load_policy

    pol = load_policy(policy)
    spark = spark_for(engine, spark_master, conf)
    export = checked_export(data, quiet=quiet, spark=spark)
    with opener(ledger) as led, Platform(export, led, pol, engine=engine_name(engine), spark_session=spark) as platform:
        warn_if_empty(led)
        yield platform


def warn_if_empty(led) -> None:  # noqa: ANN001 - a Ledger
    """A deciding command on a ledger with no events: most likely the wrong
    one (another folder's default, an unset $CONSENTRY_LEDGER), whose
    decisions would silently know of no objection."""
    from ..ledger import redact_url

    if led.watermark() == 0:
        err.print(f"[yellow]warning:[/] the ledger {escape(redact_url(led.url))} holds no events, so these decisions know "
                  "of no notice, objection, consent or erasure request; import them (`consentry ledger import FILE`) "
                  "or name the ledger that holds them (--ledger, $CONSENTRY_LEDGER or $CONSENTRY_HOME)",
                  highlight=False, markup=True)


def controller_from(file: Path | None, platform: str | None, name: str | None, address: str | None,
                    dpo: str | None):  # noqa: ANN201
    """Who is asking: the controller file, overridden field by field by the options."""
    from ..controller import load_controller

    return load_controller(config.controller_file(file)).merged(platform=platform, name=name, address=address, dpo=dpo)
