"""consentry: decide which user-generated content may train AI models, and prove it.

The library is the product; the CLI and the web app are thin faces over it.
`Platform` is the front door: an export, a ledger, a policy and an engine.
Beside it, what a user's own code works with: policies, decisions, ledger
events, snapshots, redaction, and the errors to catch (all `ConsentryError`).
Every name is loaded on first use, so `import consentry` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Public name -> the package (or module) that is its home.
_HOMES = {
    "ENGINES": ".platform", "Platform": ".platform",
    "Policy": ".policy", "Transforms": ".policy", "load_policy": ".policy",
    "Evaluation": ".engine", "Explanation": ".engine", "Reason": ".engine",
    "Ledger": ".ledger", "NewEvent": ".ledger", "StoredEvent": ".ledger",
    "Export": ".sources", "open_export": ".sources",
    "Manifest": ".snapshots", "Registry": ".snapshots", "SnapshotRecord": ".snapshots",
    "find_pii": ".snapshots", "redact_texts": ".snapshots",
    "ConsentryError": ".errors", "InputError": ".errors", "LedgerError": ".errors", "PolicyError": ".errors",
    "ExportInvalid": ".errors", "SnapshotError": ".errors",
}

__all__ = [
    "ConsentryError", "ENGINES", "Evaluation", "Explanation", "Export", "ExportInvalid", "InputError", "Ledger", "LedgerError",
    "Manifest", "NewEvent", "Platform", "Policy", "PolicyError", "Reason", "Registry", "SnapshotError",
    "SnapshotRecord", "StoredEvent", "Transforms", "find_pii", "load_policy", "open_export", "redact_texts",
    "__version__",
]

if TYPE_CHECKING:
    from .engine import Evaluation, Explanation, Reason
    from .errors import ConsentryError, ExportInvalid, InputError, LedgerError, PolicyError, SnapshotError
    from .ledger import Ledger, NewEvent, StoredEvent
    from .platform import ENGINES, Platform
    from .policy import Policy, Transforms, load_policy
    from .snapshots import (
        Manifest,
        Registry,
        SnapshotRecord,
        find_pii,
        redact_texts,
    )
    from .sources import Export, open_export


def __getattr__(name: str):  # noqa: ANN202 - loaded on first use, so that `consentry --help` stays quick
    if name in _HOMES:
        from importlib import import_module

        return getattr(import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module 'consentry' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names with the module's own: each loads on first use, so
    `dir(consentry)` (and a notebook's completion) found none of them."""
    return sorted(set(globals()) | set(__all__))
