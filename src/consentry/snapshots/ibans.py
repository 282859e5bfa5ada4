"""Which IBAN-shaped regions of text hold IBANs, and which of those pass their
check digits, in NumPy over the regions' bytes (`strbytes.py`).

A region (`pii._IBAN_REGION`) is a country code and two digits (glued to the
word "iban" or not) and then letters and digits with at most one separator
between two of them. Inside it, an IBAN starts at a word boundary with a
country code whose IBAN has a known length, two check digits right after,
and then as many letters and digits as that length asks (a separator may
come before each): exactly what `regexp_extract_all(region, pii.IBAN)` takes,
leftmost first, the next one after the end of the one before. ISO 13616's
check: digits 02..98, and with the first four characters moved to the end
and letters read as 10..35, the number mod 97 is 1.

In SQL the exact pattern, one branch per length, took DuckDB some 3 ms to
compile per call and core, and the mod-97 fold ran as a lambda per IBAN.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .strbytes import row_of, slices, spread, view

__all__ = ["iban_matches"]


def _classes(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    digit = (data >= 48) & (data <= 57)
    letter = ((data | 32) >= 97) & ((data | 32) <= 122)
    return digit, letter, digit | letter


def iban_matches(regions: pa.Array, lengths: dict[str, int]) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """(row, value, ok) for each IBAN-shaped match in `regions`: its region's
    position, the text (without a leading "iban"), and whether its check
    digits hold. `lengths`: the IBAN length of each country code."""
    offsets, data = view(regions, pad=10)  # a look up to 8 bytes past a region's start stays inside
    digit, letter, alnum = _classes(data)
    word = alnum | (data == 95)  # RE2's \b: letters, digits and "_"
    body = np.arange(offsets[0], offsets[-1])
    first_byte = np.zeros(len(data) + 1, dtype=bool)
    first_byte[offsets[:-1]] = True
    # Candidate starts: an ASCII letter at a word boundary.
    prev_word = np.r_[False, word[:-1]]
    cand = body[letter[body] & (first_byte[body] | ~prev_word[body])]
    cand_region = row_of(offsets, cand)
    end_of = offsets[1:][cand_region]
    # Letters and digits before each byte, and where the k-th of them is.
    before = np.r_[0, np.cumsum(alnum)]
    where = np.flatnonzero(alnum)
    code_len = np.zeros(26 * 26, dtype=np.int64)
    for cc, n in lengths.items():
        code_len[(ord(cc[0].upper()) - 65) * 26 + ord(cc[1].upper()) - 65] = n

    def attempt(p: np.ndarray) -> np.ndarray:
        """The end of the IBAN whose country code is at `p` (-1: none)."""
        ok = (p + 4 <= end_of) & letter[p] & letter[p + 1] & digit[p + 2] & digit[p + 3]
        c0 = np.clip((data[p] | 32).astype(np.int64) - 97, 0, 25)
        c1 = np.clip((data[p + 1] | 32).astype(np.int64) - 97, 0, 25)
        n = np.where(ok, code_len[c0 * 26 + c1], 0)
        ok &= n > 0
        last = before[p + 4] + n - 5  # the (n - 4)th letter or digit from p + 4, as an index into `where`
        ok &= last < before[end_of]
        return np.where(ok, where[np.clip(last, 0, max(len(where) - 1, 0))] + 1, -1) if len(where) else np.full(len(p), -1)

    # "iban" glued before the country code is part of the match, when what follows it matches.
    lowered = [data[cand + i] | 32 for i in range(4)]
    glued = (cand + 8 <= end_of) & (lowered[0] == 105) & (lowered[1] == 98) & (lowered[2] == 97) & (lowered[3] == 110)
    end_glued = np.where(glued, attempt(cand + 4), -1)
    end_plain = attempt(cand)
    start = np.where(end_glued >= 0, cand + 4, cand)
    end = np.where(end_glued >= 0, end_glued, end_plain)
    hit = end >= 0
    cand, start, end, cand_region = cand[hit], start[hit], end[hit], cand_region[hit]
    # Leftmost first: a match counts if it starts at or after the end of the one taken before it.
    taken = np.zeros(len(cand), dtype=bool)
    cursor = offsets[:-1].copy()
    pending = np.arange(len(cand))
    while len(pending):
        ok = cand[pending] >= cursor[cand_region[pending]]
        pending = pending[ok]
        if not len(pending):
            break
        firsts = pending[np.r_[True, cand_region[pending][1:] != cand_region[pending][:-1]]]
        taken[firsts] = True
        cursor[cand_region[firsts]] = end[firsts]
        pending = pending[~np.isin(pending, firsts)]
    start, end, row = start[taken], end[taken], cand_region[taken]
    return row, slices(data, start, end), _check_ok(data, alnum, start, end)


#: 10 to the power k, mod 97 (the digits an IBAN stands for number at most 2 x 34 + 6).
_POW10_MOD97 = np.array([pow(10, k, 97) for k in range(128)], dtype=np.int64)


def _check_ok(data: np.ndarray, alnum: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """ISO 13616 on each IBAN at bytes `start`..`end` (its first four are the
    country code and check digits, with no separator): the number it stands
    for (letters as 10-35, the first four moved to the end) mod 97, summed at
    once as each character's value times 10 to the power of the digits after
    it (a loop over the characters' positions, one NumPy pass each, took
    twice as long)."""
    iban, at = spread(start, end - start)
    keep = alnum[at] & (at >= start[iban] + 4)
    at, iban = at[keep], iban[keep]
    ch = data[at].astype(np.int64)
    value = np.where(ch <= 57, ch - 48, (ch | 32) - 87)  # 0-9, then a/A = 10 ... z/Z = 35
    digits = np.cumsum(np.where(ch <= 57, 1, 2))  # the digits up to each character, through the last IBAN
    through = np.r_[0, digits][np.cumsum(np.bincount(iban, minlength=len(start)))]  # through each IBAN's last character
    after = through[iban] - digits + 6  # its IBAN's digits after it, the 6 of the moved four included
    body = np.bincount(iban, weights=value * _POW10_MOD97[after], minlength=len(start)).astype(np.int64)
    c0 = (data[start] | 32).astype(np.int64) - 87
    c1 = (data[start + 1] | 32).astype(np.int64) - 87
    check = (data[start + 2].astype(np.int64) - 48) * 10 + data[start + 3].astype(np.int64) - 48
    acc = (body + c0 * _POW10_MOD97[4] + c1 * _POW10_MOD97[2] + check) % 97
    return (acc == 1) & (check >= 2) & (check <= 98)
