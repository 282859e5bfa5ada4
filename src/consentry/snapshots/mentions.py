"""@mentions matched to the export's handles, as SQL.

A handle is whatever the platform allows (`zoë`, `anne-marie`, `ben.smith`),
so a character class cannot say where a mention ends: `@ben.Thanks` mentions
`ben` unless `ben.thanks` is a handle too. So each `@` (also the full-width
`＠` and the small `﹫`) is followed by its longest run of handle-like
characters, and the mention is the longest prefix of that run, cut at a `.` or
`-` or whole, that is a handle in the export. An `@` right after a letter or
digit is part of an email address, not a mention.
"""

from __future__ import annotations

AT = "[@＠﹫]"
_TOKEN = r"^[\p{L}\p{N}\p{M}_.\-]+"

_WORD = r"[\p{L}\p{N}\p{M}_]"

# Hiding works on the same pieces as finding, with constant patterns only (a
# pattern built per row and handle costs a regex compilation each time).
MACROS = rf"""
CREATE OR REPLACE TEMP MACRO consentry_hidden(piece, bad) AS list_reduce(
  list_filter(bad, lambda h: starts_with(lower(piece), h) AND NOT regexp_matches(substr(piece, length(h) + 1, 1), '{_WORD}')),
  lambda a, b: CASE WHEN length(b) > length(a) THEN b ELSE a END, '');
CREATE OR REPLACE TEMP MACRO consentry_hide(x, bad) AS (
  WITH parts AS (SELECT string_split_regex(x, '{AT}') AS p, regexp_extract_all(x, '{AT}') AS sep)
  SELECT p[1] || array_to_string(list_transform(range(2, len(p) + 1), lambda i:
    CASE WHEN NOT regexp_matches(right(p[i - 1], 1), '{_WORD}') AND consentry_hidden(p[i], bad) <> ''
      THEN '@[person]' || substr(p[i], length(consentry_hidden(p[i], bad)) + 1)
      ELSE sep[i - 1] || p[i] END), '')
  FROM parts);
"""


def mentioned_sql(src: str, key: str, text: str, handles: str) -> str:
    """SQL for `(k, h)`: each handle (lower case, NFC) mentioned in `text` of
    `src`; `handles` is a relation with a column `h` of every handle in lower
    case NFC."""
    return f"""
    WITH pieces AS (
      SELECT {key} AS k, string_split_regex(nfc_normalize({text}), '{AT}') AS p
      FROM {src} WHERE regexp_matches({text}, '{AT}')),
    tokens AS (
      SELECT DISTINCT k, lower(t) AS t FROM (
        SELECT k, unnest(list_transform(range(2, len(p) + 1), lambda i:
          CASE WHEN regexp_matches(right(p[i - 1], 1), '[\\p{{L}}\\p{{N}}\\p{{M}}_]') THEN NULL
               ELSE regexp_extract(p[i], '{_TOKEN}') END)) AS t
        FROM pieces)
      WHERE t IS NOT NULL AND t <> ''),
    prefixes AS (
      SELECT k, t, unnest(list_concat([t], list_transform(
        list_filter(range(2, length(t) + 1), lambda i: substr(t, i, 1) IN ('.', '-')),
        lambda i: left(t, i - 1)))) AS c
      FROM tokens)
    SELECT DISTINCT k, h FROM (
      SELECT p.k, p.t, arg_max(hs.h, length(hs.h)) AS h
      FROM prefixes p JOIN {handles} hs ON hs.h = p.c
      GROUP BY p.k, p.t)"""


def hide_sql(bad: str, x: str) -> str:
    """SQL that rewrites each `@handle` of the list column `bad` in text `x` to `@[person]`."""
    return f"CASE WHEN {bad} IS NULL THEN {x} ELSE consentry_hide(nfc_normalize({x}), {bad}) END"


def handles_sql(users: str) -> str:
    """Every handle of `users`, as `mentioned_sql` compares them."""
    return f"SELECT DISTINCT lower(nfc_normalize(handle)) AS h FROM {users} WHERE handle IS NOT NULL"
