"""Reading platform exports (CONTRACT §1): Parquet, JSONL or CSV, validated in DuckDB."""

from .export import Export
from .validate import ExportInvalid, Problem, ValidationMemo, ValidationReport, open_export, validate

__all__ = ["Export", "ExportInvalid", "Problem", "ValidationMemo", "ValidationReport", "open_export", "validate"]
