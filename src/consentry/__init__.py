"""consentry: decide which user-generated content may train AI models, and prove it.

The library is the product; the CLI and the web app are thin faces over it.
`Platform` is the front door: an export, a ledger, a policy and an engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["ENGINES", "Platform", "__version__"]

if TYPE_CHECKING:
    from .platform import ENGINES, Platform


def __getattr__(name: str):  # noqa: ANN202 - loaded on first use, so that `consentry --help` stays quick
    if name in ("ENGINES", "Platform"):
        from . import platform

        return getattr(platform, name)
    raise AttributeError(f"module 'consentry' has no attribute {name!r}")
