"""Which runs of digits are phone numbers, decided from libphonenumber's own
metadata (the `phonenumbers` package): no Python call per candidate. The runs
are cut into spans and the spans checked in NumPy, their digits held as
integers.

libphonenumber's metadata gives, for each region, its country code, national
prefix and the patterns of its valid numbers (fixed line, mobile, toll free,
...), and a general pattern every valid number of the region fits. A number
is valid where `phonenumbers.is_valid_number` would say so: the national
significant number (after the country code, or after the national prefix)
fully matches the general pattern and one type pattern of the same country.
Country codes without a region (+800, +882) count too. Not done: the
rewriting rules a few regions apply to short local numbers (San Marino's
"0549", Norfolk Island's "3"). The patterns become tables of prefixes
(`prefixes.py`): a number is checked by looking up integer keys, so no
pattern is compiled per call (DuckDB compiled some 23,000 characters of
patterns for the 19 regions a national number is tried in, about 30 ms of
every call on each core). The lookups were SQL joins until 2026-12-06: on
10,000 texts their planning and hash tables cost some 20 ms a call and core,
the same lookups in NumPy about 5 ms.

A run of digit groups may hold a number and more (`617-653-3040 2`, a number
followed by a time, two numbers): the spans of groups that start or end the
run at a space are tried, and a valid span inside a longer valid one gives way
to it. Spans that look like dates, times, IP addresses, versions,
counts with thousands separators or year ranges are never numbers. A run
written with `+` whose length is possible for its country code counts even in
a range not yet allocated.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .prefixes import cover
from .strbytes import Groups, digit_groups, owners, slices, spread, view

#: Regions tried for a number written without a country code, after the author's own.
DEFAULT_REGIONS = ("US", "CA", "GB", "DE", "FR", "IT", "ES", "NL", "BE", "PL", "PT", "AT", "CH", "SE", "IE", "IN", "BR", "IL",
                   "MX")
#: Of those, where people write national numbers without a leading 0 (no trunk
#: prefix, or mobiles usually written without it). A run that does not start
#: with 0 is read only there: "30 1234567" is not a Berlin number.
NO_TRUNK_ZERO = ("US", "CA", "IT", "ES", "PL", "PT", "IN", "BR", "MX")

_TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number", "voip", "pager", "uan",
          "voicemail")

# Never a phone number, whatever libphonenumber says of the digits.
# Each a pair of patterns, the anchored ones joined apart from the others: RE2 reads the spans (a
# dozen bytes each) so in about half the time it took one pattern of them all (`_any_match`).
_NOT_PHONE = ("|".join([
    r"^\(?\d{1,2}[./\-]\d{1,2}[./\-](\d{4}|\d{2})\)?$",  # dates
    r"^\(?\d{4}[./\-]\d{1,2}[./\-]\d{1,2}\)?$",
    r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$",  # IPv4 addresses
    r"^[1-9]\d{0,2}\.\d+$",  # decimals: 161.9607 (not 0800.152994 or 01512.3467129)
    r"^\d+(\.\d+)*\.\d(\.\d+)*$",  # versions: a one-digit group after a dot (10.0.19041.1)
    r"^\(?(1[5-9]|20)\d\d\s?[\-/]\s?(1[5-9]|20)\d\d\)?$",  # year ranges: (1694-1778)
    r"^000",  # order numbers padded with zeros
]), "|".join([
    r"(^|[^0-9])((19|20)\d\d[./\-](0?[1-9]|1[0-2])[./\-](0?[1-9]|[12]\d|3[01])|(0?[1-9]|[12]\d|3[01])[./\-](0?[1-9]|1[0-2])[./\-](19|20)\d\d|(0?[1-9]|1[0-2])[./\-](0?[1-9]|[12]\d|3[01])[./\-](19|20)\d\d)([^0-9]|$)",
]))
# Counts with thousands separators (359.829.232) are no phone number, unless a word
# before the run says one follows ("mój numer to 512.388.455": `pii.PHONE_CUE`).
_COUNT = r"^\d{1,3}(\.\d{3}){2,}$"
# What a WhatsApp link (`pii.WHATSAPP_LINK`) leaves before its number, at the end of what precedes the run's digits.
_AFTER_LINK = r"(?i)(?:wa\.me/|whatsapp(?:\.com|:/)/send/?\?phone=)$"
# Never a span holding a phone number: one with a date, an expiry, a year range,
# a year-numbered reference (1997-12358, 1984/675598) or dots mixed with other
# separators. Checked on each span, so "+41 78 143 07 13 - (1895-1974)" keeps its number.
_NOT_PHONE_RUN = ("|".join([
    r"(^|[^0-9.])((0?[1-9]|[12]\d|3[01])[./](0?[1-9]|1[0-2])|(0?[1-9]|1[0-2])[./](0?[1-9]|[12]\d|3[01]))[./](\d{2}|\d{4})([^0-9.]|$)",
    r"(^|[^0-9])(0?[1-9]|1[0-2])/(\d{2}|(19|20)\d\d)([^0-9]|$)",
    r"(^|[\s(])(1[5-9]|20)\d\d\s?[\-/]\s?(1[5-9]|20)?\d\d([^0-9]|$)",
]), "|".join([
    r"^\(?(19|20)\d\d\s?[\-/]\s?\d{4,}",
    r"^[^+＋].*(\d\.\d.*[ \-/]\d|\d[ \-/]\d.*\d\.\d)",  # (with "+", "+687 75.12.34" is a number)
]))


def _metadata():  # noqa: ANN202 - (region, PhoneMetadata) pairs
    """libphonenumber's metadata of every region, then of every country code
    that has no region (region "001": +800 freephone, +882 and +883 networks)."""
    import phonenumbers
    from phonenumbers import PhoneMetadata

    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        yield region, PhoneMetadata.metadata_for_region(region)
    for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        if (md := PhoneMetadata.metadata_for_nongeo_region(cc)) is not None:
            yield "001", md


@lru_cache(maxsize=1)
def _meta() -> list[tuple[str, str, str, list[int]]]:
    """(region, country code, national prefix, possible lengths) per region that has valid-number patterns."""
    rows = []
    for region, md in _metadata():
        if not any((d := getattr(md, t)) is not None and d.national_number_pattern for t in _TYPES):
            continue
        rows.append((region, str(md.country_code), md.national_prefix or "", sorted(md.general_desc.possible_length or ())))
    return rows


@lru_cache(maxsize=1)
def _by_cc() -> dict[str, tuple[str, str, list[int]]]:
    """Per country code: (national prefix, the valid-number pattern of all its
    regions, their possible lengths). libphonenumber says a number dialled in
    one region of a country code is valid if it is valid in any of them (1-809
    dialled in the US is the Dominican Republic's), and the regions of a
    country code share their national prefix. The pattern names each distinct
    type pattern once: NANP's 25 regions repeat theirs (fixed line and mobile
    alike), 13,137 characters with the repeats, 5,415 without."""
    out: dict[str, tuple[str, set[int]]] = {}
    for _, cc, prefix, lens in _meta():
        got = out.setdefault(cc, (prefix, set()))
        if got[0] != prefix:
            raise RuntimeError(f"libphonenumber gives country code {cc} two national prefixes: {got[0]!r}, {prefix!r}")
        got[1].update(lens)
    parts = _cc_parts()
    return {cc: (prefix, "(?:" + "|".join(parts[cc]) + ")", sorted(lens)) for cc, (prefix, lens) in out.items()}


def _cc_of(region: str) -> str:
    return next(cc for r, cc, *_ in _meta() if r == region)


def _distinct_by_cc(patterns) -> dict[str, list[str]]:  # noqa: ANN001 - PhoneMetadata -> its patterns
    """Per country code, the distinct patterns `patterns(md)` gives for its regions, in region order."""
    out: dict[str, list[str]] = {}
    for _, md in _metadata():
        parts = out.setdefault(str(md.country_code), [])
        parts.extend(p for p in dict.fromkeys(patterns(md)) if p and p not in parts)
    return out


@lru_cache(maxsize=1)
def _cc_parts() -> dict[str, list[str]]:
    """Per country code, the pattern of each number type of each of its regions."""
    return _distinct_by_cc(lambda md: [d.national_number_pattern for t in _TYPES if (d := getattr(md, t)) is not None])


@lru_cache(maxsize=1)
def _general() -> dict[str, str]:
    """Per country code, the pattern every valid number of one of its regions
    matches besides its type's (libphonenumber's `general_desc`). It is not
    always looser than the types': Germany's fixed-line pattern takes
    49707580507, its general pattern does not, and the number is invalid."""
    general = _distinct_by_cc(lambda md: [md.general_desc.national_number_pattern if md.general_desc else None])
    return {cc: "(?:" + "|".join(parts) + ")" if parts else "(?:)" for cc, parts in general.items()}


@lru_cache(maxsize=1)
def _dial_rules() -> tuple[tuple[bool, str, str], ...]:
    """(starts with 0, country code, digits dropped) for a national number
    written without a country code: read in every region `DEFAULT_REGIONS`
    names if it starts with 0, else in those of `NO_TRUNK_ZERO`. A national
    prefix "0" is dropped ("030 1234567" in Germany); NANP's "1" may be there
    or not ("1 617 ..." or "617 ..."); else the digits are the number."""
    out = []
    for zero, regions in ((True, DEFAULT_REGIONS), (False, NO_TRUNK_ZERO)):
        for cc in dict.fromkeys(_cc_of(r) for r in regions):
            prefix = _by_cc()[cc][0]
            if len(prefix) > 1:
                raise RuntimeError(f"a default region has the national prefix {prefix!r}; only one digit is supported")
            drops = ["0"] if zero and prefix == "0" else ["", prefix] if prefix and prefix != "0" else [""]
            out += [(zero, cc, d) for d in drops]
    return tuple(out)


#: The bounds of `_key`'s fields: a number has at most 17 digits, and
#: `prefixes.cover` gives prefixes of at most 8 (Colombia's valid numbers;
#: 7 for NANP, the UK, Greece, Georgia and Myanmar), checked as they are made.
_LENGTHS, _PREFIX_DIGITS = 18, 9


@lru_cache(maxsize=None)
def _prefix_rows(kind: str, cc: str) -> tuple[tuple[int, ...], tuple[tuple[int, int, int], ...]]:
    """One country code's `valid` numbers (a type pattern and the general
    pattern) or `general` ones, as (`_key`s, (length key, base key, divisor)
    per prefix length): `prefixes.cover`, made the first time a call needs
    this country code (the 18 of the national rules take 0.3 s, all 215
    take 1.0 s) and kept for the process, as the patterns were."""
    patterns = (_by_cc()[cc][1], _general()[cc]) if kind == "valid" else (_general()[cc],)
    rows = cover(*patterns)
    if any(len(p) > _PREFIX_DIGITS for _, p in rows):
        raise RuntimeError(f"libphonenumber's patterns for +{cc} need prefixes longer than {_PREFIX_DIGITS} digits")
    ks = sorted({(n, len(p)) for n, p in rows})
    return (tuple(sorted({_key(cc, n, p) for n, p in rows})),
            tuple((_cl(cc, n), _key(cc, n, "0" * k), 10 ** (n - k)) for n, k in ks))


_MAKING = threading.Lock()


def _prefix_arrays(kind: str, ccs: frozenset[str]) -> tuple[_KeySet, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`_made_prefix_arrays`, made once when parts side by side ask at once
    (a country code's prefixes take up to a second to make, the first time)."""
    with _MAKING:
        return _made_prefix_arrays(kind, ccs)


class _KeySet:
    """Non-negative int64 keys as an open-addressing hash table in NumPy
    (linear probing), built once and looked up call after call: Arrow's
    `is_in` built its hash set of some 30,000 keys on every call, most of the
    1.8 ms that 80,000 lookups took per 10,000 texts."""

    def __init__(self, keys: np.ndarray) -> None:
        keys = np.unique(np.asarray(keys, dtype=np.int64))
        bits = max(4, int(len(keys) * 4).bit_length())  # a quarter full at most
        self._shift, self._mask = np.uint64(64 - bits), (1 << bits) - 1
        self._table = np.full(1 << bits, -1, dtype=np.int64)
        home, pending, self._longest = self._home(keys), np.arange(len(keys)), 0
        while True:  # round d: each key not yet placed tries the d-th slot after its home
            slot = (home[pending] + self._longest) & self._mask
            free = np.flatnonzero(self._table[slot] == -1)
            _, first = np.unique(slot[free], return_index=True)  # one key a free slot
            taken = free[first]
            self._table[slot[taken]] = keys[pending[taken]]
            pending = np.delete(pending, taken)
            if not len(pending):
                break
            self._longest += 1

    def _home(self, x: np.ndarray) -> np.ndarray:
        return ((x.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> self._shift).astype(np.int64)

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Which of `x` are keys."""
        home, todo = self._home(x), np.arange(len(x))
        out = np.zeros(len(x), dtype=bool)
        for d in range(self._longest + 1):
            at = self._table[(home[todo] + d) & self._mask]
            hit = at == x[todo]
            out[todo[hit]] = True
            todo = todo[~hit & (at != -1)]  # an empty slot ends the search
            if not len(todo):
                break
        return out


@lru_cache(maxsize=64)
def _made_prefix_arrays(kind: str, ccs: frozenset[str]) -> tuple[_KeySet, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The `valid` or `general` numbers of the country codes `ccs`: their
    `_key`s; per (country code, length) key `cl` where its prefix lengths
    start and how many there are; per prefix length its base key and divisor.
    The same few sets come back call after call."""
    parts = [_prefix_rows(kind, cc) for cc in sorted(ccs)]
    keys = _KeySet(np.array([k for part in parts for k in part[0]], dtype=np.int64))
    ks = sorted(r for part in parts for r in part[1])
    cl, base, div = (np.array([r[n] for r in ks], dtype=np.int64).reshape(-1) for n in range(3))
    size = 1000 * _LENGTHS
    start = np.searchsorted(cl, np.arange(size), "left")
    count = np.searchsorted(cl, np.arange(size), "right") - start
    return keys, start, count, base, div


@lru_cache(maxsize=1)
def _codes() -> dict[str, np.ndarray]:
    """Per country code, as arrays indexed by its position (`at` maps the code
    to it, -1 where no code): the code as a number, its national prefix (number
    and digits; 0 digits where none), and the possible lengths of its national
    numbers as a bit mask."""
    by_cc = _by_cc()
    ccs = list(by_cc)
    at = np.full(1000, -1, dtype=np.int64)
    at[[int(c) for c in ccs]] = np.arange(len(ccs))
    return {
        "at": at, "cc": np.array([int(c) for c in ccs], dtype=np.int64),
        "np": np.array([int(v[0] or 0) for v in by_cc.values()], dtype=np.int64),
        "np_len": np.array([len(v[0]) for v in by_cc.values()], dtype=np.int64),
        "lengths": np.array([sum(1 << n for n in v[2]) for v in by_cc.values()], dtype=np.int64),
    }


@lru_cache(maxsize=1)
def _regions() -> dict[str, tuple[int, ...]]:
    """Per region (ISO alpha-2; "001" for the codes without one), the positions of its country codes."""
    at = _codes()["at"]
    out: dict[str, list[int]] = {}
    for region, cc, *_ in _meta():
        out.setdefault(region, []).append(int(at[int(cc)]))
    return {r: tuple(v) for r, v in out.items()}


@lru_cache(maxsize=1)
def _dial_ways() -> dict[tuple[bool, str], np.ndarray]:
    """`_dial_rules` by (starts with 0, digits dropped): the positions of their country codes."""
    out: dict[tuple[bool, str], list[int]] = {}
    for zero, cc, dropped in _dial_rules():
        out.setdefault((zero, dropped), []).append(int(_codes()["at"][int(cc)]))
    return {k: np.array(v, dtype=np.int64) for k, v in out.items()}


_POW10 = 10 ** np.arange(19, dtype=np.int64)


def _lead(val: np.ndarray, n: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """The first `k` of the `n` digits of `val` (digit strings held as numbers and lengths), as a number."""
    return val // _POW10[np.maximum(n - k, 0)]


def _members(kind: str, ccs: frozenset[str], code: np.ndarray, val: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Which digit strings (`val`, `n` digits) are numbers of the country code at
    position `code`, by `kind`'s prefix table: one starts with one of the
    prefixes of its length. Each string is tried with every prefix length its
    (code, length) has; a prefix of k digits is the number divided by 10 to the
    power of the digits after it."""
    keys, start, counts, ks_base, ks_div = _prefix_arrays(kind, ccs)
    cl = _codes()["cc"][code] * _LENGTHS + n
    row, k = spread(start[cl], counts[cl])
    key = ks_base[k] + val[row] // ks_div[k]
    # A hash set (built once per set of country codes) and not a binary search: the keys
    # are some 30,000, the lookups 80,000 per 10,000 texts, in no order.
    hit = keys.contains(key)
    out = np.zeros(len(cl), dtype=bool)
    out[row[hit]] = True
    return out


def _valid_spans(val: np.ndarray, n: np.ndarray, plus: np.ndarray, dial00: np.ndarray, region: pa.Array) -> np.ndarray:
    """Which spans are valid phone numbers, as libphonenumber decides (see the
    module's docstring): their digits (`val`, `n` of them; after "00" where
    `dial00`), written with "+" or not, the author's `region` (NULL if not
    known). Numbers written with + or 00 are read after their country code;
    national ones in the author's region and under the national dialling rules
    (`_dial_rules`)."""
    codes = _codes()
    zero = _lead(val, n, 1) == 0
    national = ~(plus | dial00) & (n <= 15)
    sids = np.arange(len(val))
    # Pairs (span, country code) with the national number after the code:
    # after "+" or "00", the code is the first 1-3 digits.
    pair_sid, pair_code, pair_val, pair_n, possible = [], [], [], [], []
    for k in (1, 2, 3):
        c = _lead(val, n, k)
        code = codes["at"][np.minimum(c, 999)]
        ok = (plus | dial00) & (c >= _POW10[k - 1]) & (code >= 0)
        rest = n[ok] - k
        pair_sid.append(sids[ok]), pair_code.append(code[ok]), pair_n.append(rest)
        pair_val.append(val[ok] % _POW10[rest])
        possible.append(plus[ok] & ((codes["lengths"][code[ok]] >> rest) & 1).astype(bool))
    # National numbers read in the author's region, when it is not one of those every national number is tried in.
    if region.null_count < len(region):
        enc = pc.dictionary_encode(region)
        names = enc.dictionary.to_pylist()
        idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64) if enc.indices.null_count else \
            enc.indices.to_numpy().astype(np.int64)
        for r, name in enumerate(names):
            for code in _regions().get(name, ()):
                ok = national & (idx == r) & ~np.where(zero, name in DEFAULT_REGIONS, name in NO_TRUNK_ZERO)
                pair_sid.append(sids[ok]), pair_code.append(np.full(ok.sum(), code)), pair_val.append(val[ok])
                pair_n.append(n[ok]), possible.append(np.zeros(ok.sum(), dtype=bool))
    pair_sid, pair_code, pair_val, pair_n, possible = (np.concatenate(a) for a in
                                                       (pair_sid, pair_code, pair_val, pair_n, possible))
    rules = _dial_rules()
    ccs = frozenset(str(c) for c in codes["cc"][np.unique(pair_code[~possible])]) | {cc for _, cc, _ in rules}
    # The national prefix is dropped as libphonenumber drops it: when the number
    # without it is a general number of the country, or the number with it is not
    # ("+49 030 ...", "03-1234-5678" in Japan).
    check = ~possible
    c_sid, c_code, c_val, c_n = pair_sid[check], pair_code[check], pair_val[check], pair_n[check]
    np_len = codes["np_len"][c_code]
    has_np = (np_len > 0) & (c_n >= np_len) & (_lead(c_val, c_n, np_len) == codes["np"][c_code])
    h = np.flatnonzero(has_np)
    s_n = c_n[h] - np_len[h]
    s_val = c_val[h] % _POW10[s_n]
    drop = ~_members("general", ccs, c_code[h], c_val[h], c_n[h]) | _members("general", ccs, c_code[h], s_val, s_n)
    c_val[h[drop]], c_n[h[drop]] = s_val[drop], s_n[drop]
    checks = [(c_sid, c_code, c_val, c_n)]
    # National numbers, read in the regions every one is tried in: per way of
    # dialling (starts with 0 or not, a digit dropped or not), every country code it applies to.
    for (z, dropped), codes_of in _dial_ways().items():
        ok = national & (zero == z)
        if dropped:
            ok &= _lead(val, n, len(dropped)) == int(dropped)
        rest = n[ok] - len(dropped)
        m = len(codes_of)
        checks.append((np.tile(sids[ok], m), np.repeat(codes_of, ok.sum()), np.tile(val[ok] % _POW10[rest], m), np.tile(rest, m)))
    c_sid, c_code, c_val, c_n = (np.concatenate(a) for a in zip(*checks))
    valid = np.zeros(len(val), dtype=bool)
    valid[pair_sid[possible]] = True
    valid[c_sid[_members("valid", ccs, c_code, c_val, c_n)]] = True
    return valid


def _outermost(group: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Which spans (groups i..j of a run; `group` names the run and region) lie
    inside no other span of theirs: a valid span inside a longer valid one gives
    way to it."""
    order = np.argsort(group, kind="stable")
    g, i, j = group[order], i[order], j[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    size = np.diff(np.r_[starts, len(g)])
    each = owners(size)
    a, b = spread(starts[each], size[each])  # every span beside every span of its run
    inside = (i[b] <= i[a]) & (j[a] <= j[b]) & ((i[b] != i[a]) | (j[b] != j[a]))
    keep = np.ones(len(g), dtype=bool)
    keep[a[inside]] = False
    out = np.empty(len(g), dtype=bool)
    out[order] = keep
    return out


def _number(data: np.ndarray, g: Groups, gi: np.ndarray, gj: np.ndarray, start: np.ndarray,
            end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The digits of each span, groups `gi`..`gj` of `g` at bytes
    `start`..`end` of `data`, as a number and their count (a number has at
    most 17), less a lone 0 in brackets ("+49 (0)30 ...": not dialled from
    abroad) whose brackets are inside the span too. Each group's digits are
    read as a number once (Arrow's cast), and a span's number is its groups'
    numbers, each times 10 to the power of the digits after it: a span has a
    few groups and a dozen bytes or more (byte by byte, this took three
    times as long)."""
    size = gj - gi + 1
    if not len(size):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    glen = g.end - g.start
    gval = np.zeros(len(glen), dtype=np.int64)
    short = np.flatnonzero(glen <= 18)  # a longer group is in no span of 17 digits or fewer
    gval[short] = pc.cast(slices(data, g.start[short], g.end[short]), pa.int64()).to_numpy()
    span, gg = spread(gi, size)
    at = g.start[gg]
    dropped = (glen[gg] == 1) & (data[at] == 48) & (data[at - 1] == 40) & (data[at + 1] == 41) & \
        (at - 1 >= start[span]) & (at + 1 < end[span])
    kept = np.where(dropped, 0, glen[gg])
    begin = np.cumsum(size) - size
    count = np.add.reduceat(kept, begin)
    through = np.cumsum(kept)
    after = through[begin + size - 1][span] - through  # the digits kept after the group, in its span
    term = np.where(dropped | (count[span] > 17), 0, gval[gg] * _POW10[np.minimum(after, 18)])
    return np.add.reduceat(term, begin), count


def _any_match(strings: pa.Array, patterns: tuple[str, ...]) -> pa.Array:
    """Whether each string matches one of `patterns`."""
    out = pc.match_substring_regex(strings, patterns[0])
    for p in patterns[1:]:
        out = pc.or_(out, pc.match_substring_regex(strings, p))
    return out


_LEAD = "(?P<lead>(?:[+＋]\\s?|\\()?)$"  # what is left of "+", "+ " or "(" at the end of what comes before the digits


def _spans(runs: pa.Array) -> dict[str, np.ndarray | pa.Array]:
    """The spans of groups of digits tried in each run, as columns (`row`: the
    run's position). What comes before a run's first digit is a cue word (it
    stays in the text), then the lead ("+", "(") that the first span carries;
    after a WhatsApp link (wa.me/31612345678) a number is written with its
    country code, without "+". Tried are the spans that start the run and
    those that end it, each cut where the run has a space (an ASCII one: RE2's
    \\s is no wider, and the no-break spaces group digits): "617-653-3040 2",
    never inside "6448-6261-0000". Spans with fewer than 7 or more than 17
    digits, or that look like dates, times, IP addresses, versions, counts
    (unless cued) or year ranges (`_NOT_PHONE`, `_COUNT`, `_NOT_PHONE_RUN`) are
    left out."""
    offsets, data = view(runs)
    g = digit_groups(offsets, data)
    starts, ends, g_row, first, last = g.start, g.end, g.row, g.first, g.last
    pre = slices(data, offsets[:-1], starts[first])
    lead = pc.struct_field(pc.extract_regex(pre, _LEAD), "lead")
    lead_len = pc.binary_length(lead).to_numpy().astype(np.int64)
    cued = pc.binary_length(pre).to_numpy() > lead_len
    link = pc.match_substring_regex(pre, _AFTER_LINK).to_numpy(zero_copy_only=False)
    has_plus = (lead_len > 0) & ~pc.equal(lead, "(").to_numpy(zero_copy_only=False)
    spaces = np.r_[0, np.cumsum(data == 32)]
    m = np.arange(len(starts))
    inner = m < last[g_row]  # a group with a separator after it, in its run
    space_after = np.zeros(len(starts), dtype=bool)
    space_after[inner] = spaces[starts[m[inner] + 1]] > spaces[ends[m[inner]]]
    # (1, j) for every j that ends the run or has a space after it; (i, last) for every i after a space
    pre_j = m[(m == last[g_row]) | space_after]
    suf_i = m[(m != first[g_row]) & np.r_[False, space_after[:-1]]]
    gi = np.r_[first[g_row[pre_j]], suf_i]
    gj = np.r_[pre_j, last[g_row[suf_i]]]
    row = g_row[gi]
    lengths = np.r_[0, np.cumsum(ends - starts)]
    ok = lengths[gj + 1] - lengths[gi] >= 7
    gi, gj, row = gi[ok], gj[ok], row[ok]
    is_first = gi == first[row]
    vstart = starts[gi] - np.where(is_first, lead_len[row], 0)
    vend = ends[gj]
    plus = is_first & (has_plus[row] | link[row])
    dial00 = is_first & ~has_plus[row] & ~link[row] & (data[starts[gi]] == 48) & (data[starts[gi] + 1] == 48) & \
        (ends[gi] - starts[gi] >= 2)
    val, n = _number(data, g, gi, gj, vstart, vend)
    ok = (n >= 7) & (n <= 17)
    idx = np.flatnonzero(ok)
    value = slices(data, vstart[idx], vend[idx])
    # Look-alikes: every pattern of them needs a dot, a slash or a dash, or a leading 0 ("000...").
    marks = np.r_[0, np.cumsum((data == 46) | (data == 47) | (data == 45))]
    maybe = np.flatnonzero((marks[vend[idx]] > marks[vstart[idx]]) | (data[starts[gi[idx]]] == 48))
    looks = np.zeros(len(idx), dtype=bool)
    if len(maybe):
        some = value.take(pa.array(maybe, pa.int64()))
        trimmed = pc.utf8_trim(some, "()")
        looks[maybe] = pc.or_(_any_match(trimmed, _NOT_PHONE), _any_match(some, _NOT_PHONE_RUN)).to_numpy(zero_copy_only=False) | (
            ~cued[row[idx[maybe]]] & pc.match_substring_regex(trimmed, _COUNT).to_numpy(zero_copy_only=False))
    keep = ~looks
    idx = idx[keep]
    val, n, dial00 = val[idx], n[idx], dial00[idx]
    return {"row": row[idx], "i": gi[idx] - first[row[idx]] + 1, "j": gj[idx] - first[row[idx]] + 1,
            "value": value.filter(pa.array(keep)), "plus": plus[idx], "dial00": dial00,
            "val": np.where(dial00, val % _POW10[np.maximum(n - 2, 0)], val), "n": np.where(dial00, n - 2, n)}


def phone_values(runs: pa.Array, region: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """The phone numbers in `runs`, where `region` is each run's author's
    country (ISO alpha-2, any case) or null: (row of `runs`, value). Each
    distinct (run, country) is cut into spans (`_spans`) and its spans checked
    (`_valid_spans`) in NumPy over the runs' bytes, digits held as integers;
    a valid span inside a longer valid one gives way to it (`_outermost`).
    Arrow in, Arrow out: the SQL this replaced (a DISTINCT, then a join back to
    the runs) cost two statements' planning per call and core, and a join in
    SQL some 40 ms before it."""
    region = pc.utf8_upper(region.cast(pa.string()))
    runs = runs.cast(pa.string())
    key = pc.binary_join_element_wise(runs, pc.fill_null(region, "\x00"), "\x00")  # null: a country of its own
    uniq = pc.unique(key)
    first = pc.index_in(uniq, value_set=key)  # where each distinct (run, country) first occurs
    of = pc.index_in(key, value_set=uniq).to_numpy()
    u_region = region.take(first)
    cut = _spans(runs.take(first))
    valid = _valid_spans(cut["val"], cut["n"], cut["plus"], cut["dial00"], u_region.take(pa.array(cut["row"], pa.int64())))
    at = np.flatnonzero(valid)
    keep = at[_outermost(cut["row"][at], cut["i"][at], cut["j"][at])]
    u = cut["row"][keep]
    # Back to every run that is this (run, country): the runs of each distinct one, in a row of their own.
    by = np.argsort(of, kind="stable")
    count = np.bincount(of, minlength=len(uniq))
    owner, at_by = spread((np.cumsum(count) - count)[u], count[u])
    return by[at_by], cut["value"].take(pa.array(keep[owner], pa.int64()))


def _cl(cc: str, length: int) -> int:
    """A (country code, number length) as one integer: `_members`' `cl`."""
    return int(cc) * _LENGTHS + length


def _key(cc: str, length: int, prefix: str) -> int:
    """A (country code, number length, prefix) as one integer: one key to look
    up (DuckDB joined the four columns as strings 4 times slower)."""
    return (_cl(cc, length) * (_PREFIX_DIGITS + 1) + len(prefix)) * 10**_PREFIX_DIGITS + int(prefix or 0)


