"""Text redaction as SQL: it runs inside the engine over the whole column, not
item by item in Python.

What is found (`pii.py`: emails, IBANs, cards, phones; `mentions.py`: @handles
of people who may not be used) is replaced by stable placeholders, one kind
after another: emails first (an address has an @), then mentions, IBANs,
cards, phones. Each step is a column expression over the previous one, so a
build can count the rows each step changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from ..policy import Transforms
from .mentions import MACROS as MENTION_MACROS
from .mentions import hide_sql
from .pii import KINDS, PLACEHOLDERS, findings_sql, install

__all__ = ["chain_sql", "find_pii", "redact_texts", "text_steps", "found_lists_sql", "kinds_of", "install_sql"]

_FLAG = {"email": "redact_emails", "iban": "redact_ibans", "card": "redact_cards", "phone": "redact_phones"}
_STEP = {"email": "emails", "iban": "ibans", "card": "cards", "phone": "phones"}


def kinds_of(t: Transforms) -> tuple[str, ...]:
    """The kinds of personal data a policy's transforms redact."""
    return tuple(k for k in KINDS if getattr(t, _FLAG[k]))


def install_sql(con) -> None:  # noqa: ANN001 - a duckdb connection
    """Everything redaction needs on a connection: macros and the phone validator."""
    install(con)
    con.execute(MENTION_MACROS)


def found_lists_sql(src: str, key: str, text: str, country: str | None, kinds: Sequence[str]) -> str:
    """One row per key with a finding: `k` and a list column `f_<kind>` per
    kind (longest first, so a value inside another is replaced after it)."""
    cols = ", ".join(
        f"list(value ORDER BY length(value) DESC, value) FILTER (WHERE kind = '{k}') AS f_{k}" for k in KINDS
    )
    return f"SELECT k, {cols} FROM ({findings_sql(src, key, text, country, tuple(kinds))}) GROUP BY k"


def text_steps(t: Transforms, bad_mentions: str | None, found: bool = True) -> list[tuple[str, str]]:
    """(name, SQL template) for each enabled step, in order; `{x}` in the
    template is the text after the previous step. `bad_mentions` is a list
    column of the handles to hide; with `found`, the `f_<kind>` columns of
    `found_lists_sql` are in scope."""
    steps: list[tuple[str, str]] = []

    def replace(kind: str) -> tuple[str, str]:
        col, ph = f"f_{kind}", PLACEHOLDERS[kind]
        return _STEP[kind], (
            f"CASE WHEN {col} IS NULL THEN {{x}} ELSE list_reduce({col}, lambda acc, v: replace(acc, v, '{ph}'), {{x}}) END"
        )

    kinds = kinds_of(t) if found else ()
    if "email" in kinds:
        steps.append(replace("email"))
    if t.mentions and bad_mentions is not None:
        steps.append(("mentions", hide_sql(bad_mentions, "{x}")))
    steps += [replace(k) for k in kinds if k != "email"]
    return steps


def chain_sql(inner: str, steps: list[tuple[str, str]]) -> str:
    """`inner` (which has `x0`, the text) with a column `x{i+1}` per step, each
    step reading the previous one's column."""
    for i, (_, tpl) in enumerate(steps):
        inner = f"SELECT *, {tpl.replace('{x}', f'x{i}')} AS x{i + 1} FROM ({inner})"
    return inner


def _connect_with(texts: Sequence[str | None] | pa.Array, countries: Sequence[str | None] | None):  # noqa: ANN202
    import duckdb

    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(list(texts), pa.string())
    n = len(arr)
    ctry = pa.array(list(countries) if countries is not None else [None] * n, pa.string())
    if len(ctry) != n:
        raise ValueError(f"countries has {len(ctry)} values for {n} texts")
    con = duckdb.connect()
    install_sql(con)
    con.register("texts_in", pa.table({"k": pa.array(range(n), pa.int64()), "text": arr, "country": ctry}))
    return con


def find_pii(
    texts: Sequence[str | None] | pa.Array, *, countries: Sequence[str | None] | None = None,
    transforms: Transforms | None = None,
) -> pa.Table:
    """Every email, phone number, IBAN and card number found in `texts`:
    a table of `row` (index into texts), `kind` and `value` (the exact text
    that redaction replaces). `countries` (ISO 3166 alpha-2 per text, the
    author's) is where a number written without a country code is read first."""
    kinds = kinds_of(transforms or Transforms())
    con = _connect_with(texts, countries)
    try:
        return con.sql(
            f"SELECT k AS row, kind, value FROM ({findings_sql('texts_in', 'k', 'text', 'country', kinds)}) ORDER BY 1, 2, 3"
        ).to_arrow_table()
    finally:
        con.close()


def redact_texts(
    texts: Sequence[str | None] | pa.Array, *, countries: Sequence[str | None] | None = None,
    transforms: Transforms | None = None,
) -> list[str | None]:
    """`texts` with their personal data replaced by `[email]`, `[phone]`,
    `[iban]` and `[card]`, exactly as a snapshot build does it."""
    t = transforms or Transforms()
    steps = text_steps(t, None)
    con = _connect_with(texts, countries)
    try:
        inner = f"""SELECT s.k, s.text AS x0, f.* EXCLUDE (k) FROM texts_in s
            LEFT JOIN ({found_lists_sql('texts_in', 'k', 'text', 'country', kinds_of(t))}) f ON f.k = s.k"""
        q = f"SELECT x{len(steps)} AS text FROM ({chain_sql(inner, steps)}) ORDER BY k"
        return con.sql(q).to_arrow_table().column("text").to_pylist()
    finally:
        con.close()
