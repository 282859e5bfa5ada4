"""SQL text that consentry writes itself: how a string literal is quoted.

Decisions, validation and redaction are compiled to SQL text (one text for
DuckDB and Spark), so values and patterns are written into it as literals;
doubling the single quote is the standard SQL escape both engines read. Spark
also reads a backslash in a literal as an escape (DuckDB does not), so a
literal that may hold one (a regex, a Windows path) goes to Spark through
`spark_quote`.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["quote", "quote_regex", "spark_quote"]


def quote(value: str) -> str:
    """`value` as an SQL string literal: O'Brien -> 'O''Brien'."""
    return "'" + value.replace("'", "''") + "'"


def spark_quote(value: str) -> str:
    """`value` as a Spark SQL string literal: backslashes and quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@lru_cache(maxsize=256)
def quote_regex(pattern: str) -> str:
    """A regular expression as an ASCII SQL literal for DuckDB (`quote`):
    each non-ASCII character written as `\\x{hex}`, which RE2 reads as that
    character, in a class or out of it and under `(?i)`. DuckDB's Python client
    maps the tokens of a non-ASCII SQL text back to characters one character
    at a time, holding Python's lock: some 2 ms for a 10-KB query of patterns.
    Kept per pattern: a query's patterns are the same few constants, call
    after call, and rewriting them costs as much as the walk it saves."""
    return quote("".join(c if c.isascii() else f"\\x{{{ord(c):X}}}" for c in pattern))
