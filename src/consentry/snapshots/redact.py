"""Text redaction as SQL: it runs inside the engine over the whole column, not
item by item in Python.

What is found (`pii.py`: emails, IBANs, cards, phones; `mentions.py`: @handles
of people who may not be used) is replaced by stable placeholders, one kind
after another: emails first (an address has an @), then mentions, IBANs,
cards, phones. Each step is a column expression over the previous one, so a
build can count the rows each step changed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from ..policy import Transforms
from .mentions import MACROS as MENTION_MACROS
from .mentions import hide_sql
from .pii import (KINDS, PLACEHOLDERS, cuts, find_into, find_rows, in_redaction_order, longest_first, replace_each,
                  shared_cursor)

__all__ = ["chain_sql", "find_pii", "redact_texts", "text_steps", "found_lists", "kinds_of", "install_sql"]

_FLAG = {"email": "redact_emails", "iban": "redact_ibans", "card": "redact_cards", "phone": "redact_phones"}
_STEP = {"email": "emails", "iban": "ibans", "card": "cards", "phone": "phones"}


def kinds_of(t: Transforms) -> tuple[str, ...]:
    """The kinds of personal data a policy's transforms redact."""
    return tuple(k for k in KINDS if getattr(t, _FLAG[k]))


def install_sql(con, *, shared: bool = False) -> None:  # noqa: ANN001 - a duckdb connection
    """Everything redaction needs on a connection: the @mention macros.
    `shared`: into the database's main schema, for every cursor of it to use."""
    con.execute(MENTION_MACROS.replace("TEMP MACRO", "MACRO") if shared else MENTION_MACROS)


def found_lists(con, src: str, key: str, text: str, country: str | None, kinds: Sequence[str],  # noqa: ANN001
                into: str = "found") -> pa.Table:
    """Register `into` (the findings are in temp table `into`_pii): one row
    per key with a finding, `k` and a list column `f_<kind>` per kind
    (`pii.longest_first`, so a value inside another is replaced after it),
    for the rows of relation `src`. Returns the table registered."""
    import pyarrow.compute as pc

    find_into(con, src, key, text, country, tuple(kinds), into=f"{into}_pii")
    found = con.sql(f"SELECT k, kind, value FROM {into}_pii").to_arrow_table()
    k, kind, value = (found.column(c).combine_chunks() for c in ("k", "kind", "value"))
    keys = pc.unique(k)
    cols = {"k": keys}
    for c in KINDS:
        of = pc.equal(kind, c)
        cols[f"f_{c}"] = longest_first(k.filter(of), value.filter(of), keys)
    lists = pa.table(cols)
    con.register(into, lists)
    return lists


def text_steps(t: Transforms, bad_mentions: str | None, found: bool = True) -> list[tuple[str, str]]:
    """(name, SQL template) for each enabled step, in order; `{x}` in the
    template is the text after the previous step. `bad_mentions` is a list
    column of the handles to hide; with `found`, the `f_<kind>` columns of
    `found_lists` are in scope."""
    steps: list[tuple[str, str]] = []

    def replace(kind: str) -> tuple[str, str]:
        return _STEP[kind], replace_each("{x}", f"f_{kind}", f"'{PLACEHOLDERS[kind]}'")

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


def _as_array(texts: Sequence[str | None] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(texts, str | bytes):  # a str is a sequence too: each character would be a text
        raise TypeError("texts must be a list (or an Arrow array) of texts, not one text: pass [text]")
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    return texts if isinstance(texts, pa.Array) else pa.array(list(texts), pa.string())


def _parts(n: int) -> list[tuple[int, int]]:
    """Row ranges run side by side, one per core (`pii.cuts`)."""
    return cuts(n, os.cpu_count() or 1)


def _rows(arr: pa.Array, ctry: pa.Array, lo: int, hi: int) -> pa.RecordBatch:
    """Rows `lo`..`hi` as a batch of `(k, text, region)`, `k` their row number in the whole column."""
    import numpy as np

    return pa.RecordBatch.from_pydict({"k": pa.array(np.arange(lo, hi, dtype=np.int64)), "text": arr.slice(lo, hi - lo),
                                       "region": ctry.slice(lo, hi - lo)})


def _side_by_side(texts, countries, work: Callable) -> pa.Table:  # noqa: ANN001
    """`work(con, rows)` on a connection per part of `texts` (`_rows`);
    their tables, concatenated."""
    arr = _as_array(texts)
    n = len(arr)
    ctry = pa.array(list(countries), pa.string()) if countries is not None else pa.nulls(n, pa.string())
    if len(ctry) != n:
        raise ValueError(f"countries has {len(ctry)} values for {n} texts")
    parts = _parts(n)

    def one(lo_hi: tuple[int, int]) -> pa.Table:
        rows = _rows(arr, ctry, *lo_hi)
        con = shared_cursor()
        try:
            return work(con, rows)
        finally:
            con.close()

    if len(parts) == 1:
        return one(parts[0])
    with ThreadPoolExecutor(len(parts), thread_name_prefix="consentry-redact") as pool:
        return pa.concat_tables(list(pool.map(one, parts)))


def find_pii(
    texts: Sequence[str | None] | pa.Array, *, countries: Sequence[str | None] | None = None,
    transforms: Transforms | None = None,
) -> pa.Table:
    """Every email, phone number, IBAN and card number found in `texts`:
    a table of `row` (index into texts), `kind` and `value` (the exact text
    that redaction replaces). `countries` (ISO 3166 alpha-2 per text, the
    author's) is where a number written without a country code is read first."""
    kinds = kinds_of(transforms or Transforms())

    def work(con, rows: pa.RecordBatch) -> pa.Table:  # noqa: ANN001
        found = find_rows(con, rows, kinds).rename_columns(["row", "kind", "value"])
        return found.sort_by([("row", "ascending"), ("kind", "ascending"), ("value", "ascending")])

    return _side_by_side(texts, countries, work)


def redact_texts(
    texts: Sequence[str | None] | pa.Array, *, countries: Sequence[str | None] | None = None,
    transforms: Transforms | None = None,
) -> list[str | None]:
    """`texts` with their personal data replaced by `[email]`, `[phone]`,
    `[iban]` and `[card]`, exactly as a snapshot build does it."""
    import numpy as np
    import pyarrow.compute as pc

    kinds = kinds_of(transforms or Transforms())
    arr = _as_array(texts)
    if not kinds:
        return arr.to_pylist()

    # A list in, a list out: the texts that did not change are handed back as they came, not copied
    # through Arrow; those that did are written in by each part, beside the other parts' work.
    out = None if isinstance(texts, pa.Array | pa.ChunkedArray) else np.empty(len(arr), dtype=object)
    if out is not None:
        out[:] = texts

    def work(con, rows: pa.RecordBatch) -> pa.Table:  # noqa: ANN001
        # The values a build replaces step by step (`text_steps`, without mentions), in one list a row.
        found = find_rows(con, rows, kinds)
        k = found.column("k").combine_chunks()
        keys = pc.unique(k)
        values = in_redaction_order(k, found.column("kind").combine_chunks(), found.column("value").combine_chunks(), keys)
        # Only the rows with a finding are rewritten; the others are handed back as they came.
        con.register("found_x", pa.table({"k": keys, "f": values, "x0": rows.column("text").take(
            pc.index_in(keys, value_set=rows.column("k")))}))  # each one's text, beside its list: no join
        changed = con.sql(f"SELECT k, {replace_each('x0', 'f', 'e.by')} AS text FROM found_x").to_arrow_table()
        if out is not None:
            out[changed.column("k").to_numpy()] = changed.column("text").to_pylist()
        return changed

    changed = _side_by_side(arr, countries, work)
    if out is None:
        order = pc.sort_indices(changed.column("k"))
        mask = np.zeros(len(arr), dtype=bool)
        mask[changed.column("k").to_numpy()] = True
        return pc.replace_with_mask(arr, pa.array(mask), changed.column("text").take(order).combine_chunks()).to_pylist()
    return out.tolist()
