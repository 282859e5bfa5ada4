"""Reading platform exports (CONTRACT §1): Parquet, JSONL or CSV, in a folder or a bucket, validated in DuckDB."""

from .export import Export
from .store import readable
from .validate import ExportInvalid, Problem, ValidationMemo, ValidationReport, open_export, valid_export, validate

__all__ = ["Export", "ExportInvalid", "Problem", "ValidationMemo", "ValidationReport", "open_export", "readable", "valid_export", "validate"]
