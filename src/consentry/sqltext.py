"""SQL text that consentry writes itself: how a string literal is quoted.

Decisions, validation and redaction are compiled to SQL text (one text for
DuckDB and Spark), so values and patterns are written into it as literals;
doubling the single quote is the standard SQL escape both engines read. Spark
also reads a backslash in a literal as an escape (DuckDB does not), so a
literal that may hold one (a regex, a Windows path) goes to Spark through
`spark_quote`.
"""

from __future__ import annotations

__all__ = ["quote", "spark_quote"]


def quote(value: str) -> str:
    """`value` as an SQL string literal: O'Brien -> 'O''Brien'."""
    return "'" + value.replace("'", "''") + "'"


def spark_quote(value: str) -> str:
    """`value` as a Spark SQL string literal: backslashes and quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
