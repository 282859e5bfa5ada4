"""SQL text that consentry writes itself: one way to quote a string literal.

Decisions, validation and redaction are compiled to SQL text (one text for
DuckDB and Spark), so values and patterns are written into it as literals;
doubling the single quote is the standard SQL escape both engines read.
"""

from __future__ import annotations

__all__ = ["quote"]


def quote(value: str) -> str:
    """`value` as an SQL string literal: O'Brien -> 'O''Brien'."""
    return "'" + value.replace("'", "''") + "'"
