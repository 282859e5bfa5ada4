"""Reading platform exports (CONTRACT §1): Parquet, JSONL or CSV, in a folder or a bucket, validated in DuckDB.

Names load on first use: Spark's Python workers import `sources.export` and
`sources.store` alone, not validation and the policies it reads. A module here
is never named after one of the package's public names, which it would hide
once imported."""

from __future__ import annotations

from typing import TYPE_CHECKING

#: Public name -> the module of this package that is its home.
_HOMES = {
    "Export": ".export", "readable": ".store",
    **dict.fromkeys(("ExportInvalid", "Problem", "ValidationMemo", "ValidationReport", "open_export", "valid_export",
                     "validate"), ".validation"),
}

__all__ = ["Export", "ExportInvalid", "Problem", "ValidationMemo", "ValidationReport", "open_export", "readable", "valid_export", "validate"]

if TYPE_CHECKING:
    from .export import Export
    from .store import readable
    from .validation import ExportInvalid, Problem, ValidationMemo, ValidationReport, open_export, valid_export, validate


def __getattr__(name: str):  # noqa: ANN202 - loaded on first use
    if name in _HOMES:
        from importlib import import_module

        return getattr(import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
