"""consentry's configuration from the environment, read in one place.

Every `CONSENTRY_*` variable is read here and nowhere else; an option given on
the command line or in code always wins over its variable. Where consentry
keeps its own files when the user does not say: `CONSENTRY_HOME`, else the
working folder (like git or datasette: local by default).
"""

from __future__ import annotations

import os
from pathlib import Path

#: Variable -> what it sets (for `--help` texts and the README).
VARIABLES = {
    "CONSENTRY_HOME": "folder for the default ledger, controller.yaml and caches (default: the working folder)",
    "CONSENTRY_LEDGER": "ledger database URL (default: sqlite file consentry.db in CONSENTRY_HOME)",
    "CONSENTRY_CONTROLLER": "the controller file (default: controller.yaml in CONSENTRY_HOME)",
    "CONSENTRY_SECRET_KEY": "the key that signs links and sessions (serve, notify)",
    "CONSENTRY_SMTP": "the SMTP server as a URL (serve, notify)",
    "CONSENTRY_METRICS_TOKEN": "bearer token for /metrics",
    "CONSENTRY_RECEIPT_KEY": "file with the key that signs purge receipts",
    "CONSENTRY_MEMORY_LIMIT": "DuckDB's memory limit (default 3GB)",
    "CONSENTRY_CHROMIUM": "the Chromium that prints the DPO report to PDF",
    "CONSENTRY_POSTGRES_JDBC_JAR": "PostgreSQL's JDBC driver for Spark (default: Debian's)",
    "CONSENTRY_SPARK_SCRATCH": "folder for Spark's ledger extracts (default: the temp folder)",
    "CONSENTRY_ALLOW_MLFLOW_FILE_STORE": "1 to let lineage write to MLflow's file store",
    "CONSENTRY_FAILPOINT": "tests only: the step at which a crash test kills the process",
    "CONSENTRY_CENTER_SETTINGS": "internal: `serve` hands its settings to the web workers",
}


def _get(name: str) -> str | None:
    if name not in VARIABLES:
        raise KeyError(f"{name} is not a consentry setting")
    return os.environ.get(name) or None


def home() -> Path:
    """CONSENTRY_HOME, else the working folder."""
    return Path(_get("CONSENTRY_HOME") or Path.cwd())


def ledger_url(explicit: str | None = None) -> str:
    """The ledger every face and `Ledger()` open when none is named: one default.
    A ledger named but blank (`--ledger "$UNSET"`) is refused, never taken for
    the default: that would decide against another ledger, perhaps an empty one."""
    if explicit is not None and not explicit.strip():
        from .errors import InputError

        raise InputError("the ledger given is blank (was a variable empty?); nothing was read", where="--ledger",
                         fix="name the ledger: --ledger sqlite:///FILE or postgresql+psycopg://..., or leave the "
                             "option out for $CONSENTRY_LEDGER or the default (consentry.db in $CONSENTRY_HOME)")
    return explicit or _get("CONSENTRY_LEDGER") or f"sqlite:///{home() / 'consentry.db'}"


def ledger_from_env() -> bool:
    """Whether $CONSENTRY_LEDGER names the ledger (for messages that say which setting to fix)."""
    return _get("CONSENTRY_LEDGER") is not None


def extract_dir() -> Path:
    """Where the CLI keeps the ledger's events per watermark (consentry.ledger.extract)."""
    return home() / ".consentry" / "extracts"


def validation_memo_path() -> Path:
    return home() / ".consentry" / "validated.json"


def controller_file(explicit: Path | None = None) -> Path | None:
    """The file that says who is asking: the one named, else $CONSENTRY_CONTROLLER,
    else controller.yaml in CONSENTRY_HOME if there is one."""
    if explicit is not None:
        return explicit
    if env := _get("CONSENTRY_CONTROLLER"):
        return Path(env)
    default = home() / "controller.yaml"
    return default if default.is_file() else None


def secret_key() -> str | None:
    return _get("CONSENTRY_SECRET_KEY")


def smtp_url(explicit: str | None = None) -> str | None:
    return explicit or _get("CONSENTRY_SMTP")


def metrics_token(explicit: str | None = None) -> str | None:
    return explicit or _get("CONSENTRY_METRICS_TOKEN")


def receipt_key(explicit: Path | None = None) -> Path | None:
    env = _get("CONSENTRY_RECEIPT_KEY")
    return explicit or (Path(env) if env else None)


def memory_limit(explicit: str | None = None) -> str:
    return explicit or _get("CONSENTRY_MEMORY_LIMIT") or "3GB"


def chromium() -> str | None:
    return _get("CONSENTRY_CHROMIUM")


def postgres_jdbc_jar() -> str:
    return _get("CONSENTRY_POSTGRES_JDBC_JAR") or "/usr/share/java/postgresql.jar"


def spark_scratch() -> str | None:
    return _get("CONSENTRY_SPARK_SCRATCH")


def mlflow_file_store_allowed() -> bool:
    return bool(_get("CONSENTRY_ALLOW_MLFLOW_FILE_STORE"))


def failpoint() -> str | None:
    return _get("CONSENTRY_FAILPOINT")


def hand_to_workers(settings_json: str, smtp: str | None, token: str | None) -> None:
    """`serve` with several web workers: what each worker's app reads back with `from_serve()`."""
    os.environ["CONSENTRY_CENTER_SETTINGS"] = settings_json
    if smtp:
        os.environ["CONSENTRY_SMTP"] = smtp
    if token:
        os.environ["CONSENTRY_METRICS_TOKEN"] = token


def from_serve() -> tuple[str, str | None, str | None, str | None]:
    """(settings JSON, secret key, SMTP URL, metrics token) as `serve` handed them over."""
    settings = _get("CONSENTRY_CENTER_SETTINGS")
    if settings is None:
        raise RuntimeError("consentry.center.asgi is started by `consentry serve`; CONSENTRY_CENTER_SETTINGS is not set")
    return settings, secret_key(), smtp_url(), metrics_token()
