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
"0549", Norfolk Island's "3"). The patterns become tables of prefixes
(`prefixes.py`): a number is checked by joins on integers, so no pattern is
compiled per query and thread (DuckDB compiled some 23,000 characters of
patterns for the 19 regions a national number is tried in, about 30 ms of
every call on each core).

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
from .prefixes import cover

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
# What a WhatsApp link (`pii.WHATSAPP_LINK`) leaves before its number, at the end of what precedes the run's digits.
_AFTER_LINK = r"(?i)(?:wa\.me/|whatsapp(?:\.com|:/)/send/?\?phone=)$"
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
    alike), 13,137 characters with the repeats, 5,415 without."""
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
            np = _by_cc()[cc][0]
            if len(np) > 1:
                raise RuntimeError(f"a default region has the national prefix {np!r}; only one digit is supported")
            drops = ["0"] if zero and np == "0" else ["", np] if np and np != "0" else [""]
            out += [(zero, cc, d) for d in drops]
    return tuple(out)


@lru_cache(maxsize=1)
def _tables() -> dict:  # table name -> pyarrow.Table
    """libphonenumber's metadata as the small tables the SQL reads: per
    country code (national prefix, possible lengths), per region its country
    code, and the national dialling rules (`_dial_rules`)."""
    import pyarrow as pa

    by_cc = _by_cc()
    meta = _meta()
    rules = _dial_rules()
    return {
        "consentry_phone_cc": pa.table({"cc": list(by_cc), "np": [v[0] for v in by_cc.values()],
                                        "lengths": pa.array([v[2] for v in by_cc.values()], pa.list_(pa.int32()))}),
        "consentry_phone_region": pa.table({"region": [r for r, *_ in meta], "cc": [c for _, c, *_ in meta]}),
        "consentry_phone_dial": pa.table({"zero": [r[0] for r in rules], "cc": [r[1] for r in rules],
                                          "drop": [r[2] for r in rules]}),
    }


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


@lru_cache(maxsize=64)
def _prefix_tables(ccs: frozenset[str]) -> dict:  # table name -> pyarrow.Table
    """Tables `consentry_phone_{valid,general}` (one `_key` per prefix) and
    `..._ks` (the prefix lengths of each country code and length) for the
    country codes `ccs`; the same few sets come back call after call."""
    import pyarrow as pa

    out = {}
    for kind in ("valid", "general"):
        parts = [_prefix_rows(kind, cc) for cc in sorted(ccs)]
        ks = [r for p in parts for r in p[1]]
        out[f"consentry_phone_{kind}"] = pa.table({"key": pa.array([k for p in parts for k in p[0]], pa.int64())})
        out[f"consentry_phone_{kind}_ks"] = pa.table({
            "cl": pa.array([r[0] for r in ks], pa.int64()), "base": pa.array([r[1] for r in ks], pa.int64()),
            "div": pa.array([r[2] for r in ks], pa.int64())})
    return out


def install(con, *, shared: bool = False) -> None:  # noqa: ANN001 - a duckdb connection
    """libphonenumber's metadata on a connection (`_tables`): Arrow tables
    built once per process and registered (no copy), or with `shared` copied
    into tables of the database, which its cursors see."""
    for name, table in _tables().items():
        if shared:
            con.register("_consentry_arrow", table)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _consentry_arrow")
            con.unregister("_consentry_arrow")
        else:
            con.register(name, table)


def _cl(cc: str, length: int) -> int:
    """A (country code, number length) as one integer: SQL's `cl` in `_member_ids`."""
    return int(cc) * _LENGTHS + length


def _key(cc: str, length: int, prefix: str) -> int:
    """A (country code, number length, prefix) as one integer, for a join on
    one column: DuckDB joined the four columns as strings 4 times slower."""
    return (_cl(cc, length) * (_PREFIX_DIGITS + 1) + len(prefix)) * 10**_PREFIX_DIGITS + int(prefix or 0)


def _member_ids(table: str, checks: str) -> str:
    """SQL: the `id` of each row of `checks` (columns `id`, `cc`, `x`) whose
    digits x are a number of country code cc in prefix table `table`
    (`_prefix_tables`): x starts with one of the prefixes of its length. Two
    joins on integers (`_key`), no pattern compiled; a prefix of k digits is
    the number divided by 10 to the power of the digits after it."""
    return (f"SELECT c.id FROM (SELECT id, CAST(cc AS BIGINT) * {_LENGTHS} + length(x) AS cl, CAST(x AS BIGINT) AS xv "
            f"FROM ({checks})) c JOIN {table}_ks q ON q.cl = c.cl SEMI JOIN {table} v ON v.key = q.base + c.xv // q.div")


def phones_into(con, runs: str, into: str) -> None:  # noqa: ANN001 - a duckdb connection
    """Create temp table `into(k, value)`: the phone numbers in `runs(k, run,
    region)`, where `region` is the author's country (ISO alpha-2) or NULL.
    Staged: the spans of each distinct run first, then the prefix tables of
    only the country codes they need, then one validity join over the spans'
    ids."""
    defaults = "[" + ", ".join(f"'{r}'" for r in DEFAULT_REGIONS) + "]"
    no_zero = "[" + ", ".join(f"'{r}'" for r in NO_TRUNK_ZERO) + "]"
    t = f"_{into}"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {t}_digits AS
    SELECT row_number() OVER () AS sid, * FROM (
    WITH cands AS (SELECT DISTINCT run, upper(region) AS region FROM {runs}),
    parts AS (
      -- what comes before the first digit: a cue word (it stays in the text), then the lead ("+", "(");
      -- after it the run alternates groups of digits and what separates them: t[2i-1] is group i
      -- (the run ends with a digit, so its groups are every other token)
      -- after a WhatsApp link (wa.me/31612345678) a number is written with its country code, without "+"
      SELECT run, region, lead, pre <> lead AS cued, regexp_matches(pre, {quote(_AFTER_LINK)}) AS link, t[1:-1:2] AS g, t FROM (
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
      SELECT run, region, lead, cued, link, i, j, digits,
        CASE WHEN i = 1 THEN lead ELSE '' END || array_to_string(t[2 * i - 1:2 * j - 1], '') AS value,
        i = 1 AND (lead LIKE '%+%' OR lead LIKE '%＋%' OR link) AS plus,
        i = 1 AND lead NOT LIKE '%+%' AND lead NOT LIKE '%＋%' AND NOT link AND starts_with(g[1], '00') AS dial00
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
      AND NOT regexp_matches(value, {quote(_NOT_PHONE_RUN)}))""")
    # Pairs to check against one country code's patterns: numbers written with
    # + or 00, and national numbers read in the author's region when that is
    # not one of the regions every national number is tried in. Spans are
    # carried by their id (`sid`) from here on: the checks are many (every
    # national number in each default region), and their strings were most
    # of what the steps below stored and grouped.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {t}_pairs AS
    SELECT s.sid, m.cc, m.np, substr(s.d, length(m.cc) + 1) AS nsn,
           s.plus AND list_contains(m.lengths, length(s.d) - length(m.cc)) AS possible
    FROM (SELECT *, unnest([left(d, 1), left(d, 2), left(d, 3)]) AS c FROM {t}_digits WHERE plus OR dial00) s
    JOIN consentry_phone_cc m ON m.cc = s.c
    UNION ALL
    SELECT s.sid, m.cc, m.np, s.d, false
    FROM {t}_digits s JOIN consentry_phone_region g ON g.region = s.region JOIN consentry_phone_cc m ON m.cc = g.cc
    WHERE NOT (s.plus OR s.dial00) AND length(s.d) <= 15
      AND NOT list_contains(CASE WHEN s.d[1] = '0' THEN {defaults} ELSE {no_zero} END, s.region)""")
    ccs = {r[0] for r in con.execute(f"SELECT DISTINCT cc FROM {t}_pairs WHERE NOT possible").fetchall()}
    for name, table in _prefix_tables(frozenset(ccs | {cc for _, cc, _ in _dial_rules()})).items():
        con.register(name, table)
    # Pairs checked against a country code's numbers: the national prefix is
    # dropped as libphonenumber drops it, when the number without it is a
    # general number of the country, or the number with it is not ("+49 030
    # ...", "03-1234-5678" in Japan). Each pair has an id stored with it: a
    # row number taken twice over the same query may come in another order
    # when DuckDB scans it on several threads.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {t}_np AS
    SELECT *, row_number() OVER () AS p, np <> '' AND starts_with(nsn, np) AS has_np FROM {t}_pairs WHERE NOT possible""")
    with_np = (f"SELECT 2 * p AS id, cc, nsn AS x FROM {t}_np WHERE has_np "
               f"UNION ALL SELECT 2 * p + 1, cc, substr(nsn, length(np) + 1) FROM {t}_np WHERE has_np")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {t}_general AS {_member_ids('consentry_phone_general', with_np)}")
    # The checks need no id of their own: a span is valid if any of its checks is.
    checks = f"""
      SELECT sid AS id, cc,
             CASE WHEN has_np AND (2 * p NOT IN (SELECT id FROM {t}_general) OR 2 * p + 1 IN (SELECT id FROM {t}_general))
                  THEN substr(nsn, length(np) + 1) ELSE nsn END AS x
      FROM {t}_np
      UNION ALL
      -- national numbers, read in the regions every one is tried in
      SELECT s.sid, m.cc, substr(s.d, length(m.drop) + 1)
      FROM {t}_digits s JOIN consentry_phone_dial m ON m.zero = (s.d[1] = '0') AND starts_with(s.d, m.drop)
      WHERE NOT (s.plus OR s.dial00) AND length(s.d) <= 15"""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {into} AS
    WITH valid AS MATERIALIZED (
      SELECT s.run, s.region, s.i, s.j, s.value FROM {t}_digits s SEMI JOIN (
        SELECT sid FROM {t}_pairs WHERE possible
        UNION ALL
        {_member_ids('consentry_phone_valid', checks)}) v ON v.sid = s.sid),
    chosen AS (
      SELECT v.run, v.region, v.value FROM valid v
      WHERE NOT EXISTS (SELECT 1 FROM valid w WHERE w.run = v.run AND w.region IS NOT DISTINCT FROM v.region
                        AND w.i <= v.i AND v.j <= w.j AND (w.i, w.j) <> (v.i, v.j)))
    SELECT r.k, c.value FROM {runs} r JOIN chosen c ON c.run = r.run AND c.region IS NOT DISTINCT FROM upper(r.region)""")
    con.execute(f"DROP TABLE {t}_digits; DROP TABLE {t}_pairs; DROP TABLE {t}_np; DROP TABLE {t}_general")
