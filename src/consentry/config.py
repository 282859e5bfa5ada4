"""Where consentry keeps its own files when the user does not say."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """CONSENTRY_HOME, else the working folder (like git or datasette: local by default)."""
    return Path(os.environ.get("CONSENTRY_HOME") or Path.cwd())


def ledger_url(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    if env := os.environ.get("CONSENTRY_LEDGER"):
        return env
    return f"sqlite:///{home() / 'consentry.db'}"


def validation_memo_path() -> Path:
    return home() / ".consentry" / "validated.json"


def controller_file(explicit: Path | None = None) -> Path | None:
    """The file that says who is asking: the one named, else $CONSENTRY_CONTROLLER,
    else controller.yaml in CONSENTRY_HOME if there is one."""
    if explicit is not None:
        return explicit
    if env := os.environ.get("CONSENTRY_CONTROLLER"):
        return Path(env)
    default = home() / "controller.yaml"
    return default if default.is_file() else None
