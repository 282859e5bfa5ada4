"""Run the real engine on a small hand-written export and return item -> reason."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from consentry.engine import decide
from consentry.ledger import Ledger, NewEvent
from consentry.policy import Policy, load_policy
from consentry.sources import Export, validate
from exportkit import write_export


def ev(user_id: str, type_: str, at: str, note: str | None = None, **kw) -> NewEvent:
    if type_ == "objection_rejected" and note is None:
        note = "compelling grounds: public figure"
    return NewEvent(user_id=user_id, type=type_, at=at, note=note, **kw)


def reasons(
    folder: Path,
    ledger: Ledger,
    at: datetime,
    users: list[dict],
    content: list[dict],
    tags: list[dict] | None = None,
    events: list[NewEvent] | None = None,
    policy: str | Policy = "recommended",
    fmt: str = "parquet",
) -> dict[str, str]:
    write_export(folder, users, content, tags, fmt=fmt)
    if events:
        ledger.append(events)
    export = Export(folder)
    validate(export)
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    rows = decide(export, ledger, pol, at).fetchall()
    return {item_id: reason for item_id, _user, _eligible, reason, *_ in rows}
