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

RE_ESCAPE = r"""
CREATE OR REPLACE TEMP MACRO consentry_re_escape(s) AS regexp_replace(s, '([.\\^$|?*+()\[\]{}\-])', '\\\1', 'g');
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
    pattern = f"'(?i)(^|[^\\p{{L}}\\p{{N}}\\p{{M}}_]){AT}' || consentry_re_escape(h) || '([^\\p{{L}}\\p{{N}}\\p{{M}}_]|$)'"
    once = f"regexp_replace(acc, {pattern}, '\\1@[person]\\2', 'g')"
    # Twice: a match takes the character after the handle, which may be where the next mention starts (`@ben.@ben`).
    twice = once.replace("acc", once, 1)
    return (
        f"CASE WHEN {bad} IS NULL THEN {x} ELSE "
        f"list_reduce({bad}, lambda acc, h: {twice}, nfc_normalize({x})) END"
    )


def handles_sql(users: str) -> str:
    """Every handle of `users`, as `mentioned_sql` compares them."""
    return f"SELECT DISTINCT lower(nfc_normalize(handle)) AS h FROM {users} WHERE handle IS NOT NULL"
