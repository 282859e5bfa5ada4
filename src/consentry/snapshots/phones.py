"""Which runs of digits are phone numbers, decided in SQL from libphonenumber's
own metadata (the `phonenumbers` package): no Python call per candidate.

libphonenumber's metadata gives, for each region, its country code, national
prefix and the patterns of its valid numbers (fixed line, mobile, toll free,
...), and a general pattern every valid number of the region fits. A number
is valid where `phonenumbers.is_valid_number` would say so: the national
significant number (after the country code, or after the national prefix)
fully matches the general pattern and one type pattern of the same country.
Country codes without a region (+800, +882) count too. Not done: the
rewriting rules a few regions apply to short local numbers (San Marino's
"0549", Norfolk Island's "3"). The patterns become
constant regexes in SQL, so DuckDB compiles each once per query.

A run of digit groups may hold a number and more (`617-653-3040 2`, a number
followed by a time, two numbers): the spans of groups that start or end the
run at a space are tried, and a valid span inside a longer valid one gives way
to it. Spans that look like dates, times, IP addresses, versions,
counts with thousands separators or year ranges are never numbers. A run
written with `+` whose length is possible for its country code counts even in
a range not yet allocated.
"""

from __future__ import annotations

from functools import lru_cache

from ..sqltext import quote

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
_NOT_PHONE = "|".join([
    r"^\(?\d{1,2}[./\-]\d{1,2}[./\-](\d{4}|\d{2})\)?$",  # dates
    r"^\(?\d{4}[./\-]\d{1,2}[./\-]\d{1,2}\)?$",
    r"(^|[^0-9])((19|20)\d\d[./\-](0?[1-9]|1[0-2])[./\-](0?[1-9]|[12]\d|3[01])|(0?[1-9]|[12]\d|3[01])[./\-](0?[1-9]|1[0-2])[./\-](19|20)\d\d|(0?[1-9]|1[0-2])[./\-](0?[1-9]|[12]\d|3[01])[./\-](19|20)\d\d)([^0-9]|$)",
    r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$",  # IPv4 addresses
    r"^[1-9]\d{0,2}\.\d+$",  # decimals: 161.9607 (not 0800.152994 or 01512.3467129)
    r"^\d+(\.\d+)*\.\d(\.\d+)*$",  # versions: a one-digit group after a dot (10.0.19041.1)
    r"^\(?(1[5-9]|20)\d\d\s?[\-/]\s?(1[5-9]|20)\d\d\)?$",  # year ranges: (1694-1778)
    r"^000",  # order numbers padded with zeros
])
# Counts with thousands separators (359.829.232) are no phone number, unless a word
# before the run says one follows ("mój numer to 512.388.455": `pii.PHONE_CUE`).
_COUNT = r"^\d{1,3}(\.\d{3}){2,}$"
# Never a span holding a phone number: one with a date, an expiry, a year range,
# a year-numbered reference (1997-12358, 1984/675598) or dots mixed with other
# separators. Checked on each span, so "+41 78 143 07 13 - (1895-1974)" keeps its number.
_NOT_PHONE_RUN = "|".join([
    r"(^|[^0-9.])((0?[1-9]|[12]\d|3[01])[./](0?[1-9]|1[0-2])|(0?[1-9]|1[0-2])[./](0?[1-9]|[12]\d|3[01]))[./](\d{2}|\d{4})([^0-9.]|$)",
    r"(^|[^0-9])(0?[1-9]|1[0-2])/(\d{2}|(19|20)\d\d)([^0-9]|$)",
    r"(^|[\s(])(1[5-9]|20)\d\d\s?[\-/]\s?(1[5-9]|20)?\d\d([^0-9]|$)",
    r"^\(?(19|20)\d\d\s?[\-/]\s?\d{4,}",
    r"^[^+＋].*(\d\.\d.*[ \-/]\d|\d[ \-/]\d.*\d\.\d)",  # (with "+", "+687 75.12.34" is a number)
])




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
    alike), and RE2 compiles a pattern per query in about 1 ms per 1,000
    characters (13,137 characters for NANP with the repeats, 5,415 without)."""
    out: dict[str, tuple[str, set[int]]] = {}
    for _, cc, np, lens in _meta():
        got = out.setdefault(cc, (np, set()))
        if got[0] != np:
            raise RuntimeError(f"libphonenumber gives country code {cc} two national prefixes: {got[0]!r}, {np!r}")
        got[1].update(lens)
    parts = _cc_parts()
    return {cc: (np, "(?:" + "|".join(parts[cc]) + ")", sorted(lens)) for cc, (np, lens) in out.items()}


def _cc_of(region: str) -> str:
    return next(cc for r, cc, *_ in _meta() if r == region)


_DIGITS = frozenset("0123456789")


def _first_digits(pattern: str) -> frozenset[str]:
    """The digits a full match of `pattern` can start with (all ten when in doubt)."""
    from re import _parser  # the stdlib's own regex parser: libphonenumber's patterns are plain

    def seq(items) -> tuple[set[str], bool]:  # noqa: ANN001 - (first digits, can be empty)
        out: set[str] = set()
        for op, av in items:
            first, empty = one(str(op), av)
            out |= first
            if not empty:
                return out, False
        return out, True

    def one(op: str, av) -> tuple[set[str], bool]:  # noqa: ANN001
        if op == "LITERAL":
            return {chr(av)}, False
        if op == "IN" and all(str(o) in ("LITERAL", "RANGE") for o, _ in av):
            return {chr(c) for o, a in av for c in ((a,) if str(o) == "LITERAL" else range(a[0], a[1] + 1))}, False
        if op == "SUBPATTERN":
            return seq(av[-1])
        if op == "BRANCH":
            parts = [seq(b) for b in av[1]]
            return set().union(*(f for f, _ in parts)), any(e for _, e in parts)
        if op in ("MAX_REPEAT", "MIN_REPEAT"):
            first, empty = seq(av[2])
            return first, empty or av[0] == 0
        return set(_DIGITS), False

    try:
        first, empty = seq(_parser.parse(pattern))
    except Exception:  # noqa: BLE001 - a pattern Python cannot read is kept whole
        return _DIGITS
    return _DIGITS if empty else frozenset(first) & _DIGITS


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


@lru_cache(maxsize=2)
def _dialled_by_cc(zero: bool) -> tuple[tuple[str, str, str], ...]:
    """(country code, type pattern, general pattern) per country code tried for a national
    number that starts (`zero`) or does not start with 0, each over the digits
    as dialled: a national prefix of one digit is stripped where the number
    starts with it; NANP's "1" is optional ("1 617 ..." or "617 ..."). Only
    the parts of a country's type patterns that can start as the number does
    are kept: every pattern is compiled for every query."""
    regions = DEFAULT_REGIONS if zero else NO_TRUNK_ZERO
    starts = frozenset("0") if zero else _DIGITS - {"0"}
    out: list[tuple[str, str, str]] = []
    for cc in dict.fromkeys(_cc_of(r) for r in regions):
        np = _by_cc()[cc][0]
        if len(np) > 1:
            raise RuntimeError(f"a default region has the national prefix {np!r}; only one digit is supported")
        strip = zero and np == "0"  # the number starts with 0: a "0" prefix is stripped, a "1" cannot be there
        parts = [p for p in _cc_parts()[cc] if strip or _first_digits(p) & starts]
        if not parts:
            continue

        def dialled(body: str, strip: bool = strip, np: str = np) -> str:
            return f"0{body}" if strip else f"{np}?{body}" if np and np != "0" else body

        out.append((cc, dialled("(?:" + "|".join(parts) + ")"), dialled(_general()[cc])))
    return tuple(out)


def _dialled_valid(x: str, zero: bool) -> str:
    """SQL condition: digits `x` are a valid national number in one of the
    regions tried: a type pattern and the general pattern of the same
    country. One union of each is not the same: 049705590660 passes
    Germany's fixed-line pattern and Brazil's general one, and is valid in
    neither. A condition for a WHERE clause, not a value: DuckDB evaluates a
    filter's ANDs and ORs on the rows still undecided, so a number stops at the
    first country that takes it and meets a general pattern only after a type
    pattern took it. As a value (inside a `CASE`) every pattern ran on every
    number: twice the time (on 10,000 texts 38 ms against 19 ms). For
    `_cc_case` the `CASE` is faster: it sends each row to one country."""
    return "(" + " OR ".join(f"({full_match(x, t)} AND {full_match(x, g)})" for _, t, g in _dialled_by_cc(zero)) + ")"


@lru_cache(maxsize=1)
def _tables():  # noqa: ANN202 - (per country code, per region) as Arrow tables
    import pyarrow as pa

    by_cc = _by_cc()
    meta = _meta()
    cc = pa.table({"cc": list(by_cc), "np": [v[0] for v in by_cc.values()],
                   "lengths": pa.array([v[2] for v in by_cc.values()], pa.list_(pa.int32()))})
    region = pa.table({"region": [r for r, *_ in meta], "cc": [c for _, c, *_ in meta]})
    return cc, region


def install(con, *, shared: bool = False) -> None:  # noqa: ANN001 - a duckdb connection
    """libphonenumber's metadata on a connection, per country code and per
    region: Arrow tables built once per process and registered (no copy), or
    with `shared` copied into tables of the database, which its cursors see."""
    cc, region = _tables()
    if shared:
        for name, table in (("consentry_phone_cc", cc), ("consentry_phone_region", region)):
            con.register("_consentry_arrow", table)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _consentry_arrow")
            con.unregister("_consentry_arrow")
        return
    con.register("consentry_phone_cc", cc)
    con.register("consentry_phone_region", region)


def full_match(x: str, pattern: str) -> str:
    """SQL: whether the whole of `x` matches `pattern`. The same answer as
    `regexp_full_match`, which DuckDB compiles twice per query (once to bind,
    once per thread): `regexp_extract_all` compiles only per thread, and
    libphonenumber's patterns take some 8 ms each to compile."""
    return f"len(regexp_extract_all({x}, {quote('^(?:' + pattern + ')$')})) > 0"


def _cc_case(ccs: list[str], x: str) -> str:
    """`CASE cc WHEN ... THEN x is valid there END`, over the country codes
    given only: each WHEN is a regex DuckDB compiles for the query."""
    if not ccs:
        return "false"
    whens = " ".join(f"WHEN '{cc}' THEN {full_match(x, _by_cc()[cc][1])} AND {full_match(x, _general()[cc])}"
                     for cc in sorted(ccs))
    return f"CASE cc {whens} ELSE false END"


def _stripped_case(ccs: list[str]) -> str:
    """SQL: the national significant number of `nsn` (the digits after a country
    code, or a national number read in its author's region) as libphonenumber
    parses it. A national prefix ("+49 030 ...", "03-1234-5678" in Japan) is
    dropped when the number without it fits the country's general pattern, or
    the number with it does not."""
    whens = []
    for cc in sorted(ccs):
        np = _by_cc()[cc][0]
        if np:
            rest = f"substr(nsn, {len(np) + 1})"
            whens.append(f"WHEN '{cc}' THEN CASE WHEN starts_with(nsn, {quote(np)}) AND (NOT {full_match('nsn', _general()[cc])}"
                         f" OR {full_match(rest, _general()[cc])}) THEN {rest} ELSE nsn END")
    return f"CASE cc {' '.join(whens)} ELSE nsn END" if whens else "nsn"


def phones_into(con, runs: str, into: str) -> None:  # noqa: ANN001 - a duckdb connection
    """Create temp table `into(k, value)`: the phone numbers in `runs(k, run,
    region)`, where `region` is the author's country (ISO alpha-2) or NULL.
    Staged: the spans of each distinct run first, then only the country codes
    they need are compiled."""
    defaults = "[" + ", ".join(f"'{r}'" for r in DEFAULT_REGIONS) + "]"
    no_zero = "[" + ", ".join(f"'{r}'" for r in NO_TRUNK_ZERO) + "]"
    t = f"_{into}"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {t}_digits AS
    WITH cands AS (SELECT DISTINCT run, upper(region) AS region FROM {runs}),
    parts AS (
      -- what comes before the first digit: a cue word (it stays in the text), then the lead ("+", "(");
      -- after it the run alternates groups of digits and what separates them: t[2i-1] is group i
      -- (the run ends with a digit, so its groups are every other token)
      SELECT run, region, lead, pre <> lead AS cued, t[1:-1:2] AS g, t FROM (
        SELECT *, regexp_extract(pre, '(?:[+＋]\\s?|\\()?$') AS lead,
               regexp_extract_all(substr(run, length(pre) + 1), '[0-9]+|[^0-9]+') AS t FROM (
          SELECT run, region, regexp_extract(run, '^[^0-9]*') AS pre FROM cands))),
    ends AS (
      -- the spans of groups tried: those that start the run (1, m), and those that end it (m - n + 1, n),
      -- as one unnest; a run without a space has one span, itself
      SELECT *, CASE WHEN m <= len(g) THEN 1 ELSE m - len(g) + 1 END AS i,
                CASE WHEN m <= len(g) THEN m ELSE len(g) END AS j FROM (
        SELECT *, unnest(CASE WHEN contains(array_to_string(t, ''), ' ') THEN range(1, 2 * len(g)) ELSE [len(g)] END) AS m
        FROM parts)),
    spans AS (
      -- slices, no lambdas: a span's text is the run's tokens from its first group to its last
      SELECT run, region, lead, cued, i, j, digits,
        CASE WHEN i = 1 THEN lead ELSE '' END || array_to_string(t[2 * i - 1:2 * j - 1], '') AS value,
        i = 1 AND (lead LIKE '%+%' OR lead LIKE '%＋%') AS plus,
        i = 1 AND lead NOT LIKE '%+%' AND lead NOT LIKE '%＋%' AND starts_with(g[1], '00') AS dial00
      FROM (SELECT *, array_to_string(g[i:j], '') AS digits FROM ends
      -- a part of a run ends where the run has a space (an ASCII one: RE2's \\s is no wider, and the
      -- no-break spaces group digits): "617-653-3040 2", never inside "6448-6261-0000"
            WHERE (i = 1 OR contains(t[2 * i - 2], ' ')) AND (j = len(g) OR contains(t[2 * j], ' ')))
      WHERE length(digits) >= 7)
    SELECT *, CASE WHEN dial00 THEN substr(d0, 3) ELSE d0 END AS d FROM (
      SELECT *, CASE WHEN contains(value, '(0)') THEN regexp_replace(replace(value, '(0)', ''), '[^0-9]', '', 'g')
                     ELSE digits END AS d0 FROM spans)
    WHERE length(d0) BETWEEN 7 AND 17 AND NOT regexp_matches(trim(value, '()'), {quote(_NOT_PHONE)})
      AND (cued OR NOT regexp_matches(trim(value, '()'), {quote(_COUNT)}))
      AND NOT regexp_matches(value, {quote(_NOT_PHONE_RUN)})""")
    # Pairs to check against one country code's patterns: numbers written with
    # + or 00, and national numbers read in the author's region when that is
    # not one of the regions every national number is tried in. Either way a
    # national prefix is dropped as libphonenumber drops it (`_stripped_case`).
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {t}_pairs AS
    SELECT s.run, s.region, s.i, s.j, s.value, m.cc, substr(s.d, length(m.cc) + 1) AS nsn,
           s.plus AND list_contains(m.lengths, length(s.d) - length(m.cc)) AS possible
    FROM (SELECT *, unnest([left(d, 1), left(d, 2), left(d, 3)]) AS c FROM {t}_digits WHERE plus OR dial00) s
    JOIN consentry_phone_cc m ON m.cc = s.c
    UNION ALL
    SELECT s.run, s.region, s.i, s.j, s.value, m.cc, s.d, false
    FROM {t}_digits s JOIN consentry_phone_region g ON g.region = s.region JOIN consentry_phone_cc m ON m.cc = g.cc
    WHERE NOT (s.plus OR s.dial00) AND length(s.d) <= 15
      AND NOT list_contains(CASE WHEN s.d[1] = '0' THEN {defaults} ELSE {no_zero} END, s.region)""")
    ccs = [r[0] for r in con.execute(f"SELECT DISTINCT cc FROM {t}_pairs WHERE NOT possible").fetchall()]
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {into} AS
    WITH valid AS MATERIALIZED (
      SELECT run, region, i, j, value FROM {t}_pairs WHERE possible
      UNION
      SELECT run, region, i, j, value FROM (SELECT *, {_stripped_case(ccs)} AS n FROM {t}_pairs WHERE NOT possible)
      WHERE {_cc_case(ccs, 'n')}
      UNION
      SELECT run, region, i, j, value FROM {t}_digits
      WHERE NOT (plus OR dial00) AND length(d) <= 15
        AND ((d[1] = '0' AND {_dialled_valid('d', True)}) OR (d[1] <> '0' AND {_dialled_valid('d', False)}))),
    chosen AS (
      SELECT v.run, v.region, v.value FROM valid v
      WHERE NOT EXISTS (SELECT 1 FROM valid w WHERE w.run = v.run AND w.region IS NOT DISTINCT FROM v.region
                        AND w.i <= v.i AND v.j <= w.j AND (w.i, w.j) <> (v.i, v.j)))
    SELECT r.k, c.value FROM {runs} r JOIN chosen c ON c.run = r.run AND c.region IS NOT DISTINCT FROM upper(r.region)""")
    con.execute(f"DROP TABLE {t}_digits; DROP TABLE {t}_pairs")
