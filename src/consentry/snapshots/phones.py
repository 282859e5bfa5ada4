"""Which runs of digits are phone numbers, decided in SQL from libphonenumber's
own metadata (the `phonenumbers` package): no Python call per candidate.

libphonenumber's metadata gives, for each region, its country code, national
prefix and the patterns of its valid numbers (fixed line, mobile, toll free,
...). A number is valid where `phonenumbers.is_valid_number` would say so: the
national significant number (after the country code, or after the national
prefix) fully matches one of its region's patterns. The patterns become one
`CASE` with constant regexes, so DuckDB compiles each once per query.

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
    r"^\d{1,3}(\.\d{3}){2,}$",  # counts: 359.829.232
    r"^\(?(1[5-9]|20)\d\d\s?[\-/]\s?(1[5-9]|20)\d\d\)?$",  # year ranges: (1694-1778)
    r"^000",  # order numbers padded with zeros
])
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


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


@lru_cache(maxsize=1)
def _meta() -> list[tuple[str, str, str, str, list[int]]]:
    """(region, country code, national prefix, valid-number pattern, possible lengths) per region."""
    import phonenumbers
    from phonenumbers import PhoneMetadata

    rows = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        md = PhoneMetadata.metadata_for_region(region)
        pats = [d.national_number_pattern for t in _TYPES if (d := getattr(md, t)) is not None and d.national_number_pattern]
        if not pats:
            continue
        rows.append((region, str(md.country_code), md.national_prefix or "", "(?:" + "|".join(pats) + ")",
                     sorted(md.general_desc.possible_length or ())))
    return rows


def meta_sql() -> str:
    """The metadata as a VALUES relation: region, cc, np, lengths."""
    vals = ", ".join(f"('{r}', '{cc}', '{np}', {lens!r})" for r, cc, np, _, lens in _meta())
    return f"(SELECT * FROM (VALUES {vals}) m(region, cc, np, lengths))"


@lru_cache(maxsize=1)
def valid_case() -> str:
    """`CASE r WHEN region THEN nsn matches its patterns ... END` over every region."""
    # The regions tried most come first: DuckDB tries the WHENs in order on the rows left.
    rows = sorted(_meta(), key=lambda m: (m[0] not in DEFAULT_REGIONS, m[0]))
    whens = " ".join(f"WHEN '{r}' THEN regexp_full_match(nsn, {_q(p)})" for r, _, _, p, _ in rows)
    return f"CASE r {whens} ELSE false END"


def phones_sql(runs: str) -> str:
    """SQL for `(k, value)`: the phone numbers in `runs(k, run, region)`, where
    `region` is the author's country (ISO alpha-2) or NULL."""
    defaults = "[" + ", ".join(f"'{r}'" for r in DEFAULT_REGIONS) + "]"
    no_zero = "[" + ", ".join(f"'{r}'" for r in NO_TRUNK_ZERO) + "]"
    case = valid_case()
    return f"""
    WITH meta AS {meta_sql()},
    cands AS (SELECT DISTINCT run, upper(region) AS region FROM {runs}),
    parts AS (
      SELECT run, region, lead, g, CASE WHEN lead = '' THEN sep ELSE sep[2:] END AS between FROM (
        SELECT run, region, regexp_extract(run, '^[^0-9]*') AS lead,
               regexp_extract_all(run, '[0-9]+') AS g, regexp_extract_all(run, '[^0-9]+') AS sep
        FROM cands)),
    spans AS (
      SELECT run, region, lead, sp[1] AS i, sp[2] AS j, len(g) AS n,
        CASE WHEN sp[1] = 1 THEN lead ELSE '' END || array_to_string(list_transform(range(sp[1], sp[2] + 1),
          lambda x: g[x] || CASE WHEN x < sp[2] THEN between[x] ELSE '' END), '') AS value,
        sp[1] = 1 AND (lead LIKE '%+%' OR lead LIKE '%＋%') AS plus,
        sp[1] = 1 AND lead NOT LIKE '%+%' AND lead NOT LIKE '%＋%' AND starts_with(g[1], '00') AS dial00
      FROM (SELECT *, unnest(list_distinct(list_concat(list_transform(range(1, len(g) + 1), lambda j: [1, j]),
              list_transform(range(2, len(g) + 1), lambda i: [i, len(g)])))) AS sp FROM parts)
      -- a part of a run ends where the run has a space: "617-653-3040 2", never inside "6448-6261-0000"
      WHERE (sp[1] = 1 OR regexp_matches(between[sp[1] - 1], '\\s'))
        AND (sp[2] = len(g) OR regexp_matches(between[sp[2]], '\\s'))),
    digits AS (
      SELECT *, CASE WHEN dial00 THEN substr(d0, 3) ELSE d0 END AS d FROM (
        SELECT *, regexp_replace(regexp_replace(value, '\\(0\\)', ''), '[^0-9]', '', 'g') AS d0 FROM spans)
      WHERE length(d0) BETWEEN 7 AND 17 AND NOT regexp_matches(trim(value, '()'), {_q(_NOT_PHONE)})
        AND NOT regexp_matches(value, {_q(_NOT_PHONE_RUN)})),
    intl AS (
      SELECT s.run, s.region, s.i, s.j, s.value, s.plus, m.region AS r, substr(s.d, length(m.cc) + 1) AS nsn, m.lengths
      FROM (SELECT *, unnest([left(d, 1), left(d, 2), left(d, 3)]) AS cc FROM digits WHERE plus OR dial00) s
      JOIN meta m ON m.cc = s.cc),
    national AS (
      -- read as dialled in region `dialled`; valid in any region of its country code (809 is NANP's Dominican Republic)
      SELECT DISTINCT x.run, x.region, x.i, x.j, x.value, same.region AS r,
        CASE WHEN m.np <> '' AND starts_with(x.d, m.np) THEN substr(x.d, length(m.np) + 1) ELSE x.d END AS nsn
      FROM (
        SELECT s.*, unnest(list_distinct(list_filter(
          [s.region] || CASE WHEN s.d[1] = '0' THEN {defaults} ELSE {no_zero} END, lambda x: x IS NOT NULL))) AS dialled
        FROM digits s WHERE NOT (s.plus OR s.dial00) AND length(s.d) <= 15) x
      JOIN meta m ON m.region = x.dialled
      JOIN meta same ON same.cc = m.cc),
    pairs AS (
      SELECT run, region, i, j, value, r, nsn, plus AND list_contains(lengths, length(nsn)) AS possible FROM intl
      UNION ALL
      SELECT run, region, i, j, value, r, nsn, false FROM national WHERE nsn IS NOT NULL),
    valid AS MATERIALIZED (SELECT DISTINCT run, region, i, j, value FROM pairs WHERE possible OR ({case})),
    chosen AS (
      SELECT v.run, v.region, v.value FROM valid v
      WHERE NOT EXISTS (SELECT 1 FROM valid w WHERE w.run = v.run AND w.region IS NOT DISTINCT FROM v.region
                        AND w.i <= v.i AND v.j <= w.j AND (w.i, w.j) <> (v.i, v.j)))
    SELECT r.k, c.value FROM {runs} r JOIN chosen c ON c.run = r.run AND c.region IS NOT DISTINCT FROM upper(r.region)"""
