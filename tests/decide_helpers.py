"""Run the real engine on a small hand-written export and return item -> reason."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from exportkit import write_export

from consentry.engine import decide
from consentry.ledger import Ledger, NewEvent
from consentry.policy import Policy, load_policy
from consentry.sources import Export, validate


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


def engine_rows(export: Export, ledger: Ledger, policy: Policy, at) -> list[tuple[str, str, bool, str]]:  # noqa: ANN001
    """The engine's decisions as sorted (item_id, user_id, eligible, reason): what a benchmark peer must equal."""
    return sorted((r[0], r[1], bool(r[2]), str(r[3])) for r in decide(export, ledger, policy, at).fetchall())


def assert_peer_agrees(export: Export, ledger: Ledger, policies, at, peer) -> None:  # noqa: ANN001
    """`peer(folder, ledger, policy, at)` gives the engine's rows for every policy; the ledger is closed after."""
    try:
        for policy in policies:
            assert peer(export.folder, ledger, policy, at) == engine_rows(export, ledger, policy, at), policy.name
    finally:
        ledger.close()
