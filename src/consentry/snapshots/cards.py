"""Which runs of digit groups hold card numbers, decided in NumPy over the
runs' bytes (`strbytes.py`): every span of groups is tried, and a span is a
card number if its digits have an issuer's prefix and length and pass the
Luhn check.

A run (`pii.CARD_RUN`) may be glued to letters. A card may be glued to a word
in lower case or capitalised ("ref4111...", "Card4111...", "4111...x"), not to
letters in capitals (a tracking number's "JJD", the "C" of "1Z06C", the "P"
that ends an alphanumeric IBAN-shaped "...3956-38P"), nor, before it, to a
country code (the "ES" of an IBAN-shaped "ES36 8932 ...", whose check digits
would start a card-like run). A group glued to other letters is left out,
with its separator. Groups split by dots or underscores are a card's only if
each has 3 digits or more (4111.1111.1111.1111; not a version or an OID,
1.2.840.113549.1).

In SQL this was lists of groups unnested twice (DuckDB copied both lists into
every span it made) and an issuer pattern matched per span: some 15 ms per
10,000 texts and core.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .strbytes import digit_groups, owners, slices, spread, view

__all__ = ["brand_ok", "card_spans", "luhn_ok"]

#: The longest card number; a span of more digits is no card.
LONGEST = 19


def luhn_ok(digits: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Luhn, per row of `digits` (the first `count` columns): from the right,
    every second digit doubled (its digit sum), the total a multiple of 10."""
    pos = np.arange(digits.shape[1])
    from_right = count[:, None] - 1 - pos[None, :]
    doubled = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int64)[digits]
    value = np.where(from_right % 2 == 1, doubled, digits)
    return np.where(from_right >= 0, value, 0).sum(axis=1) % 10 == 0


def brand_ok(digits: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The issuer ranges and lengths (Visa; Mastercard 51-55 and 2221-2720;
    Amex; Discover, JCB, UnionPay and Mir, 6011, 65, 644-649, 3528-3589, 62,
    2200-2204; Diners 300-305, 36, 38, 39; Maestro 50, 56-69), by the first
    four digits and the count."""
    d = digits[:, :4].astype(np.int64)
    d1, d2 = d[:, 0], d[:, 1]
    p4 = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    n = count
    wide = (n >= 13) & (n <= 19)
    return (
        ((d1 == 4) & ((n == 13) | (n == 16) | (n == 19)))
        | ((d1 == 5) & (((d2 >= 1) & (d2 <= 5) & (n == 16)) | (((d2 == 0) | (d2 >= 6)) & wide)))
        | ((d1 == 6) & wide)
        | ((d1 == 2) & ((((p4 >= 2200) & (p4 <= 2204)) & (n >= 16) & (n <= 19)) | ((p4 >= 2221) & (p4 <= 2720) & (n == 16))))
        | ((d1 == 3) & ((((p4 >= 3000) & (p4 <= 3059)) | (d2 == 6) | (d2 == 8) | (d2 == 9)) & (n >= 14) & (n <= 19)
                        | (((d2 == 4) | (d2 == 7)) & (n == 15))
                        | ((p4 >= 3528) & (p4 <= 3589) & (n >= 16) & (n <= 19))))
    )


def _glued_word(lower: np.ndarray, upper: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Whether bytes `start`..`end` are a word in lower case or capitalised
    (`[a-z]+|[A-Z][a-z]+`); `lower`, `upper`: running counts of such bytes."""
    size = end - start
    all_lower = (size > 0) & (lower[end] - lower[start] == size)
    capital = (size > 1) & (upper[np.minimum(start + 1, len(upper) - 1)] - upper[start] == 1) & \
        (lower[end] - lower[np.minimum(start + 1, len(lower) - 1)] == size - 1)
    return all_lower | capital


def card_spans(runs: pa.Array, iban_codes: frozenset[str]) -> tuple[np.ndarray, pa.Array]:
    """(row, value) for each card number in `runs` (matches of
    `pii.CARD_RUN`, none starting with "+"): its position in `runs`, and the
    text that redaction replaces. `iban_codes`: the countries an IBAN starts
    with, in lower case."""
    offsets, data = view(runs)
    g = digit_groups(offsets, data)
    has = g.count > 0
    rows = np.flatnonzero(has)
    first, last = g.first[rows], g.last[rows]
    lower = np.r_[0, np.cumsum((data >= 97) & (data <= 122))]
    upper = np.r_[0, np.cumsum((data >= 65) & (data <= 90))]
    # Letters before the first group: a glued word (dropped), else the first group goes with them.
    p_start, p_end = offsets[rows], g.start[first]
    code = np.zeros(len(rows), dtype=bool)
    two = np.flatnonzero(p_end - p_start == 2)
    if len(two):
        pair = (data[p_start[two]] | 32).astype(np.int64) * 256 + (data[p_start[two] + 1] | 32)
        code[two] = np.isin(pair, [ord(c[0]) * 256 + ord(c[1]) for c in iban_codes])
    keep_first = (p_end == p_start) | (_glued_word(lower, upper, p_start, p_end) & ~code)
    # After the last group, letters (and one character that is neither a letter nor a digit): the same.
    s_start = g.end[last]
    s_letters = s_start + (lower[offsets[rows + 1]] - lower[s_start]) + (upper[offsets[rows + 1]] - upper[s_start])
    keep_last = (offsets[rows + 1] == s_start) | _glued_word(lower, upper, s_start, s_letters)
    lo, hi = first + (~keep_first).astype(np.int64), last - (~keep_last).astype(np.int64)
    # Every span (i, j) of the groups lo..hi whose first digit is 2 to 6 (every issuer's numbers start so).
    row_of_group = owners(g.count[rows])
    gi = np.arange(len(g.start))
    gi = gi[(gi >= lo[row_of_group]) & (gi <= hi[row_of_group]) & (data[g.start[gi]] >= 50) & (data[g.start[gi]] <= 54)]
    owner, j = spread(gi, hi[row_of_group[gi]] - gi + 1)
    i = gi[owner]
    digits_before = np.r_[0, np.cumsum(g.end - g.start)]
    n = digits_before[j + 1] - digits_before[i]
    ok = (n >= 13) & (n <= LONGEST)
    i, j, n = i[ok], j[ok], n[ok]
    # The span's digits as a matrix, a row per span.
    span, at = spread(g.start[i], g.end[j] - g.start[i])
    is_digit = (data[at] >= 48) & (data[at] <= 57)
    span, at = span[is_digit], at[is_digit]
    _, pos = spread(np.zeros_like(n), n)
    digits = np.zeros((len(i), LONGEST), dtype=np.int64)
    digits[span, pos] = data[at] - 48
    ok = brand_ok(digits, n) & luhn_ok(digits, n)
    # Groups split by dots or underscores: each must have 3 digits or more.
    dots = np.r_[0, np.cumsum((data == 46) | (data == 95))]
    short = np.r_[0, np.cumsum(g.end - g.start <= 2)]
    ok &= ~((dots[g.end[j]] > dots[g.start[i]]) & (short[j + 1] > short[i]))
    i, j = i[ok], j[ok]
    return g.row[i], slices(data, g.start[i], g.end[j])
