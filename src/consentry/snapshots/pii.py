"""Finding personal data in text, as set operations over the whole column.

Each kind has two halves: a pattern that finds *candidates* over the whole
column (RE2 inside DuckDB, one pass, no Python per item), and a *validation*
that keeps only real ones, in NumPy over the candidates' bytes: IBANs by
their country's length and mod 97 (`ibans.py`), cards by the issuer ranges and
Luhn over every span of a run's digit groups (`cards.py`), phone numbers by
libphonenumber's own metadata, turned into tables of integer keys and read in
the author's country first (`phones.py`). What comes out is `(key, kind, value)`: `value` is the exact text
to replace.

Why candidates then validation: a pattern alone cannot tell `02.27.2015` or an
order number from a phone number, or a tracking number from an IBAN, and a
pattern that stops at a fixed length swallows a card's expiry date.

Numbers are found where people glue them to words (`ref4111111111111111`,
`IBANDE89...`, `+31612345678abc`: a word boundary does not separate a digit from
a letter), with dots or underscores between a card's or an IBAN's groups, after
a WhatsApp link, and written in full-width characters (`０６１２３４５６７８`,
`john＠example.com`: read in an ASCII copy of the text, reported as written).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..sqltext import quote, quote_regex
from .cards import card_spans
from .ibans import iban_matches
from .phones import DEFAULT_REGIONS, phone_values

__all__ = ["DEFAULT_REGIONS", "KINDS", "MIN_PART", "PLACEHOLDERS", "cuts", "find_into", "find_rows",
           "in_redaction_order", "longest_first", "replace_each", "shared_cursor"]

KINDS = ("email", "iban", "card", "phone")  # also the order in which overlaps are settled
PLACEHOLDERS = {"email": "[email]", "phone": "[phone]", "iban": "[iban]", "card": "[card]"}

# Characters people put between groups of digits: space, no-break spaces, thin and figure spaces, dash.
_SP = r" \x{00A0}\x{2007}\x{2009}\x{202F}"
# Between a card's or an IBAN's groups also a dot or an underscore ("4111.1111.1111.1111", "DE89_3704_...").
_GROUP_SEP = rf"{_SP}\-._"

# Full-width forms (U+FF01-FF5E: "０６１２", "＠", "．"), the ideographic space and the small commercial at
# are, under NFKC, the ASCII characters they look like. Text that has one is read with each replaced by its
# ASCII twin, one character for one ("translate"), so a value found in that copy is at the same place in the
# text: the value reported is the text's own characters there (`find_into`).
FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000\ufe6b"
FULL_WIDTH_ASCII = "".join(chr(c) for c in range(0x21, 0x7F)) + " @"
# A text is read as its twin when it has a full-width digit or at sign: without one there is nothing to
# find in full width. The rows `_any_like` lets through are tested with `contains`, one character at a
# time: DuckDB runs that as a byte search, some ten times faster than RE2 reads a class of characters.
_FULL_WIDTH_TRIGGERS = "０１２３４５６７８９＠﹫"
# Letters, digits and combining marks of any script, as ranges: every non-ASCII block but
# Latin-1's symbols, general punctuation, arrows to dingbats, CJK punctuation, specials and emoji.
# RE2 compiles \p{L}\p{N}\p{M} into hundreds of ranges, 1-3 ms each time a class appears, per
# query and thread (the e-mail pattern took 15 ms to compile, the spelled-out one 38 ms; now 1 and 3).
_NON_ASCII_LETTERS = (r"\x{AA}\x{B5}\x{BA}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1FFF}\x{2070}-\x{218F}\x{2C00}-\x{2FFF}"
                      r"\x{3040}-\x{FE2F}\x{FE70}-\x{FEFE}\x{FF10}-\x{FF19}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{FF66}-\x{FFDC}"
                      r"\x{10000}-\x{1EFFF}\x{20000}-\x{3FFFF}")
_L = rf"A-Za-z{_NON_ASCII_LETTERS}"  # letters
_W = rf"0-9{_L}"  # word characters in any script

_LABEL = rf"[{_W}](?:[{_W}\-]*[{_W}])?"
EMAIL = rf"[{_W}._%+\-]+@(?:{_LABEL}\.)+[{_L}]{{2,}}"
# Spelled out to dodge scrapers: "ana at example dot com", "ana [at] example [dot] org".
_AT = r"(?:\s*[\[\(\{<]\s*at\s*[\]\)\}>]\s*|\s+at\s+)"
_DOT = r"(?:\s*[\[\(\{<]\s*dot\s*[\]\)\}>]\s*|\s+dot\s+)"
# With "dot" spelled out, only top-level domains that are not also English words.
_TLDS = (
    "com|net|org|edu|gov|info|biz|io|eu|de|fr|es|nl|pl|se|dk|fi|pt|ie|gr|cz|hu|ro|bg|hr|sk|si|lt|lv|ee|lu|mt|cy|"
    "ch|uk|ru|ua|br|jp|cn|au|nz|ca|mx|ar|za|ai|dev|app|xyz|online|email|mail"
)
_BRACKET_AT = r"\s*[\[\(\{<]\s*at\s*[\]\)\}>]\s*"
_BRACKET_DOT = r"\s*[\[\(\{<]\s*dot\s*[\]\)\}>]\s*"


# The name before a spelled-out "at" may have its dots spelled out the same way: "john dot doe at ...",
# "john [dot] doe [at] ..." are one address each.
_LOCAL = rf"[{_W}._%+\-]+"
_LOCAL_DOT = rf"{_LOCAL}(?:\s+dot\s+{_LOCAL})*"
_LOCAL_BRACKET_DOT = rf"{_LOCAL}(?:{_BRACKET_DOT}{_LOCAL})*"


def _spelled(label: str, tld: str) -> str:
    return (
        # "ana at example dot com": a plain " dot " only before a top-level domain that is not an English word
        rf"(?i)\b{_LOCAL_DOT}{_AT}{label}(?:(?:{_DOT}|\.){label})*{_DOT}(?:{_TLDS})\b"
        # "ana [at] example [dot] it", "ana[at]example.com": brackets say it is an address, any domain
        rf"|(?i)\b{_LOCAL_BRACKET_DOT}{_BRACKET_AT}{label}(?:(?:{_BRACKET_DOT}|\.){label})*(?:{_BRACKET_DOT}|\.){tld}\b"
    )


EMAIL_SPELLED = _spelled(_LABEL, rf"[{_L}]{{2,}}")
# The same with an ASCII domain: RE2 runs it as a DFA (the one above, with
# letters of every script in the domain, is some 4 times slower), so it is
# run on every row and the one above only where the domain after an "at" has a non-ASCII letter.
EMAIL_SPELLED_ASCII = _spelled(r"[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?", "[a-z]{2,}")
# "john.doe at gmail.com": a plain " at " before a domain written as in an address is an address only
# when the name is not a word: a dot, underscore or plus inside it, between parts that each have a
# letter ("look at example.com", "python 3.11 at python.org" are not addresses). Its own pattern, run
# only where `_PLAIN_AT` finds one (as a branch of the pattern above it made RE2 a third slower on every row).
_NAME_WITH_SEP = rf"[{_W}]*[{_L}][{_W}]*(?:[._+][{_W}]*[{_L}][{_W}]*)+"
EMAIL_PLAIN_AT = rf"(?i)\b{_NAME_WITH_SEP}\s+at\s+{_LABEL}(?:\.{_LABEL})*\.(?:{_TLDS})\b"
_PLAIN_AT = r"(?is)[._+][^\s.]*\s+at\s+\S+\.[a-z]"
_NON_ASCII_AFTER_AT = (r"(?is)(?:\sat\s+|[\[\(\{<]\s*at\s*[\]\)\}>]\s*)"
                       r"(?:[^\s]|\s+dot\s+|\s*[\[\(\{<]\s*dot\s*[\]\)\}>]\s*)*[^\x00-\x7F]")
# "icon@2x.png" is a file name, not an address.
_FILE_TLDS = "png|jpe?g|gif|svg|webp|bmp|ico|tiff?|pdf|js|css|html?|json|xml|txt|zip|gz|mp[34]|mov|avi|webm|heic"
FILE_NAME = rf"(?i)\.(?:{_FILE_TLDS})$"

# IBAN lengths by country (SWIFT IBAN registry). The pattern is one branch per
# country with its exact length, so the match never runs into the next word.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}
# Countries with the same length share a branch (fewer branches: RE2 runs it as a DFA). At a word
# boundary, or glued to the word "iban" ("IBANDE89...", "ibanNL91...": the match has the word, which
# `find_into` cuts off). Not glued to any word: "amd64 origin of life on earth a" is IBAN-shaped and
# passes the checksum by chance, and an IBAN may start at every character of a word (RE2 ran the
# search without the boundary some 70% slower).
_IBAN_BY_LENGTH: dict[int, list[str]] = {}
for _cc, _n in sorted(IBAN_LENGTHS.items()):
    _IBAN_BY_LENGTH.setdefault(_n, []).append(_cc)
IBAN = "(?i)\\b(?:iban)?(?:" + "|".join(
    f"(?:{'|'.join(ccs)})[0-9]{{2}}(?:[{_GROUP_SEP}]?[A-Z0-9]){{{n - 4}}}" for n, ccs in sorted(_IBAN_BY_LENGTH.items())
) + ")"

# A run of digit groups; the card inside it is found by trying every span of groups. No word
# boundary around it ("card4111111111111111end", "ref4111 1111 1111 1111"): the letters it is glued
# to come with it, for `cards.py` to judge, those after it with the character after them (letters
# followed by a digit are the next run's). A span longer than 19 digits is no card.
CARD_RUN = rf"(?:[+＋]|[A-Za-z]*)[0-9]+(?:[{_GROUP_SEP}][0-9]+){{0,11}}(?:[A-Za-z]+(?:[^A-Za-z0-9]|$))?"
# A run that may hold phone numbers, with what comes just before it: after an
# order "#", a currency sign, "order", "invoice", "ts=" ... it is not a phone.
_NOT_PHONE_BEFORE = (
    r"(?:\b(?:order|invoice|ref|tracking|parcel|patent|isbn|serial|sku|ticket|ts|mtime|ctime|timestamp|epoch|id)\b\.?"
    r"|\bno\.|\bnr\.?|[#№$€£¥₹])[\s:#.=]*"
)
# Words that say a number follows: "tel.", "call me at", "mój numer to". A run after one may be
# written like a count ("512.388.455", a Polish mobile), which without the cue is not read as a phone.
PHONE_CUE = (
    r"(?:\b(?:tel|tél|tlf|tfn|fax|ph|phone|telephone|cell|cellphone|mobile|mob|handy|móvil|movil|celular|cellulare"
    r"|telefon\w*|teléfono|telefono|fone|whatsapp|sms|mobil|portable|gsm"
    r"|(?:call|text|ring|reach|phone|dial|contact)(?:\s+(?:me|us))?(?:\s+(?:at|on))?"
    r"|(?:my\s+|our\s+)?number(?:\s+is)?|numer(?:\s+to)?|numero(?:\s+è)?|número(?:\s+(?:es|é))?|nummer(?:\s+ist)?"
    r"|zadzwoń(?:\s+pod)?|chiamami(?:\s+al)?|chiama(?:\s+al)?|llámame(?:\s+al)?|ligue(?:\s+para)?|appelez(?:-moi)?"
    r"|anrufen|ruf(?:\s+mich)?(?:\s+an)?|unter|bel(?:\s+me)?(?:\s+op)?)(?:\s+(?:is|es|é|è|ist|est|to))?\.?:?\s*)"
)
# WhatsApp links: the number after them is written with its country code and no "+" (`phones.py`).
WHATSAPP_LINK = r"(?:\bwa\.me/|\bwhatsapp(?:\.com|:/)/send/?\?phone=)"
# A run written with "+" may have letters right after it ("+31612345678abc"): the "+" says it is a
# number. Without one, a run glued to a letter is an identifier's, not a phone number.
PHONE_RUN = (rf"(?i)(?:{_NOT_PHONE_BEFORE}|{PHONE_CUE}|{WHATSAPP_LINK})?"
             rf"(?:[+＋]\s?[0-9][0-9{_SP}().\-/]*[0-9]|(?:\(|\b)[0-9][0-9{_SP}().\-/]*[0-9]\b)")


def _lists(keys: pa.Array, t: pa.Table, order: list[str], fields: list[str]) -> pa.ListArray:
    """For each of `keys`, the rows of `t` whose `pos` is its position, sorted
    by `order`, as a list of structs of `fields`; null where there is none."""
    t = t.filter(pc.is_valid(t.column("pos")))
    t = t.take(pc.sort_indices(t, sort_keys=[("pos", "ascending")] + [(c, "ascending") for c in order]))
    count = np.bincount(t.column("pos").to_numpy(), minlength=len(keys))
    offsets = np.zeros(len(keys) + 1, dtype=np.int32)
    np.cumsum(count, out=offsets[1:])
    items = pa.StructArray.from_arrays([t.column(f).combine_chunks() for f in fields], names=fields)
    return pa.ListArray.from_arrays(pa.array(offsets), items, mask=pa.array(count == 0))


def longest_first(k: pa.Array, value: pa.Array, keys: pa.Array) -> pa.ListArray:
    """For each of `keys` (distinct), the values whose `k` it is, as a list
    longest first, then by value, so that a value inside another is replaced
    after it (`replace_each`); null where there is none. Elements are structs
    `{n, v}`: minus the length in characters, the value. Built in Arrow: the
    SQL aggregate this replaced, a GROUP BY and its join back to the rows, cost
    DuckDB some 8 ms per 10,000 texts."""
    t = pa.table({"pos": pc.index_in(k, value_set=keys), "n": pc.negate(pc.utf8_length(value)).cast(pa.int64()),
                  "v": value.cast(pa.string())})
    return _lists(keys, t, ["n", "v"], ["n", "v"])


def in_redaction_order(k: pa.Array, kind: pa.Array, value: pa.Array, keys: pa.Array) -> pa.ListArray:
    """For each of `keys`, every kind's values in the order redaction replaces
    them: kind after kind as in `KINDS`, each kind's longest first (as
    `longest_first`), as structs `{n, v, by}` with `by` the kind's
    placeholder; null where there is none. `replace_each(x, values, "e.by")`
    applies such a list:
    the same text as a step per kind, in one step (each step cost DuckDB some
    1 ms per 10,000 texts, even where its lists were null)."""
    rank = pc.index_in(kind, value_set=pa.array(KINDS))
    t = pa.table({"pos": pc.index_in(k, value_set=keys), "r": rank,
                  "n": pc.negate(pc.utf8_length(value)).cast(pa.int64()), "v": value.cast(pa.string()),
                  "by": pa.array([PLACEHOLDERS[x] for x in KINDS]).take(rank)})
    return _lists(keys, t, ["r", "n", "v"], ["n", "v", "by"])


def replace_each(x: str, values: str, by: str) -> str:
    """SQL: text `x` with each value of `values` (a `longest_first` list
    column) replaced by `by`, in list order (NULL: none); `by` is SQL, and
    `e.by` names each element's own (`in_redaction_order`). One `list_reduce`: in DuckDB
    2.0 it runs faster than the nested `replace` calls it replaced, and its
    plan is a third of theirs."""
    return f"CASE WHEN {values} IS NULL THEN {x} ELSE list_reduce({values}, lambda acc, e: replace(acc, e.v, {by}), {x}) END"


# Cheap tests a row must pass before a kind's pattern is run on it (necessary, not sufficient).
_SPELLED_AT = r"(?is)[\[\(\{<]\s*at\s*[\]\)\}>]|\sat\s.*(?:\sdot\s|[\[\(\{<]\s*dot\s*[\]\)\}>])"
_SPELLED_AT += "|" + _PLAIN_AT.removeprefix("(?is)")  # "john.doe at gmail.com"
_IBAN_LIKE = rf"(?i)[a-z]{{2}}[0-9]{{2}}(?:[{_GROUP_SEP}]?[a-z0-9]){{11}}"  # the shortest IBAN (Norway) has 15 characters
# Where IBANs can be: every match of IBAN lies inside one of these (same start, no end), so the
# exact pattern, whose 30 lengths make RE2 slow, runs on these few characters instead of the text.
_IBAN_REGION = rf"(?i)\b(?:iban)?[a-z]{{2}}[0-9]{{2}}(?:[{_GROUP_SEP}]?[a-z0-9]){{11,}}"
_CARD_LIKE = rf"[0-9](?:[{_GROUP_SEP}]?[0-9]){{12}}"  # 13 digits at least
_PHONE_LIKE = rf"[0-9](?:[{_SP}().\-/]*[0-9]){{6}}"  # 7 digits at least
# A run that starts with "+" (RE2's "." stops at a line break: what SQL's `SIMILAR TO '[+＋].*'` said).
_PLUS_RUN = r"\A[+＋][^\n]*\z"
# What, at a run's start, says its number is no phone number (`_NOT_PHONE_BEFORE`).
_NOT_PHONE_AT_START = "(?i)^" + _NOT_PHONE_BEFORE


# The countries an IBAN starts with: a card is not glued to one (`cards.py`).
IBAN_CODES = frozenset(cc.lower() for cc in IBAN_LENGTHS)


def _any_like(kinds: tuple[str, ...]) -> str:
    """One pattern a row must match to be read at all: the union of the
    tests above for the kinds asked for, so that one pass over the column
    sets aside the rows (most of them, in real text) that hold none."""
    alts = []
    if "email" in kinds:
        alts += ["@", _SPELLED_AT]
    if "iban" in kinds:
        alts.append(_IBAN_LIKE)
    if "card" in kinds or "phone" in kinds:  # 13 digits in a card's run are 7 in a phone's (or an underscore's)
        alts.append(_PHONE_LIKE.replace("/]", "/_]"))
    if alts:  # what may be written in full width (`_FULL_WIDTH_TRIGGERS`)
        alts.append(r"[\x{FF10}-\x{FF20}\x{FE6B}]")
    return "(?is)" + "|".join("(?:" + a.removeprefix("(?is)").removeprefix("(?i)") + ")" for a in alts) if alts else "$^"


#: Each stage's cheap test, a column of `load_candidates`' table (a kind not asked for has none).
TESTS = ("has_at", "spelled_at", "idn", "plain", "iban_like", "card_like", "phone_like")
#: Rows read from the engine and tested at a time.
_BATCH = 100_000


def _tested(batch: pa.RecordBatch, kinds: tuple[str, ...], twins) -> pa.Table:  # noqa: ANN001 - text -> ASCII twin
    """The rows of `batch(k, text, region)` that may hold what `kinds` names
    (`_any_like`), with `orig` and each stage's test (`TESTS`)."""
    maybe = pc.fill_null(pc.match_substring_regex(batch.column("text"), _any_like(kinds)), False)
    rows = pa.Table.from_batches([batch]).filter(maybe)
    text = rows.column("text").combine_chunks()
    orig = pa.nulls(len(rows), text.type)
    # The ASCII twin, where a text has a full-width digit or at sign (among the non-ASCII texts: few).
    wide = pc.indices_nonzero(pc.not_equal(pc.utf8_length(text), pc.binary_length(text)))
    if len(wide):
        wide = pc.filter(wide, pc.match_substring_regex(pc.take(text, wide), f"[{_FULL_WIDTH_TRIGGERS}]"))
    if len(wide):
        mask = np.zeros(len(rows), dtype=bool)
        mask[wide.to_numpy()] = True
        orig = pc.if_else(pa.array(mask), text, orig)
        text = pc.replace_with_mask(text, pa.array(mask), twins(pc.take(text, wide)).cast(text.type))
    cols = {"k": rows.column("k"), "text": text, "orig": orig, "region": rows.column("region")}
    none = pa.array(np.zeros(len(rows), dtype=bool))
    if "email" in kinds:
        cols["has_at"] = pc.match_substring_regex(text, "@")  # RE2 looks for one byte with memchr: 3x `match_substring`
        spelled = cols["spelled_at"] = pc.match_substring_regex(text, _SPELLED_AT)
        at = pc.indices_nonzero(spelled)
        for name, pattern in (("idn", _NON_ASCII_AFTER_AT), ("plain", _PLAIN_AT)):
            cols[name] = none
            if len(at):
                mask = np.zeros(len(rows), dtype=bool)
                mask[pc.filter(at, pc.match_substring_regex(pc.take(text, at), pattern)).to_numpy()] = True
                cols[name] = pa.array(mask)
    if "card" in kinds:
        cols["card_like"] = pc.match_substring_regex(text, _CARD_LIKE)
    if "iban" in kinds or "phone" in kinds:
        cols["iban_like"] = pc.match_substring_regex(text, _IBAN_LIKE)
    if "phone" in kinds:
        cols["phone_like"] = pc.match_substring_regex(text, _PHONE_LIKE)
    return pa.table(cols)


def _rows_sql(src: str, key: str, text: str, country: str | None) -> str:
    """The rows of `src` with a text, as `(k, text, region)`."""
    region = f"{country}::VARCHAR" if country else "NULL::VARCHAR"
    return f"SELECT {key} AS k, {text}::VARCHAR AS text, {region} AS region FROM {src} WHERE {text} IS NOT NULL"


def load_candidates(con, src: str | pa.RecordBatch, key: str, text: str, country: str | None,  # noqa: ANN001
                    kinds: tuple[str, ...], into: str) -> tuple[dict[str, bool], pa.Table]:
    """Register `into(k, text, orig, region, <tests>)` (the caller unregisters it): the rows of
    relation `src` (or of the batch `src(k, text, region)`) that may hold
    what `kinds` names. `text` is what the patterns read (the ASCII twin
    where the text has full-width forms, the text itself then in `orig`);
    each stage's cheap test (`TESTS`) is a column. Returns, per test and for
    `full_width`, whether any row has it, and the rows' `k` (with `text`,
    `region` and `phone_like`, when phones are asked for). The tests run
    in Arrow, a batch at a time: its RE2 reads these texts about twice as
    fast as DuckDB's, and without holding Python's lock."""
    if isinstance(src, pa.RecordBatch):
        batches, schema = [src], src.schema
    else:
        batches = con.sql(_rows_sql(src, key, text, country)).to_arrow_reader(_BATCH)
        schema = batches.schema

    def twins(wide: pa.Array) -> pa.Array:
        cur = con.cursor()  # a reader holds `con`
        try:
            cur.register("_consentry_wide", pa.table({"text": wide}))
            return cur.sql(f"SELECT translate(text, {quote(FULL_WIDTH)}, {quote(FULL_WIDTH_ASCII)}) FROM _consentry_wide"
                           ).to_arrow_table().column(0).combine_chunks()
        finally:
            cur.close()

    # A reader holds the connection: the batches are tested as they come, and registered once it is drained.
    parts = [_tested(batch, kinds, twins) for batch in batches] or [
        _tested(pa.RecordBatch.from_pylist([], schema=schema), kinds, twins)]
    some: dict[str, bool] = {"full_width": False}
    for part in parts:
        for name in part.column_names[4:]:
            some[name] = some.get(name, False) or pc.any(part.column(name)).as_py() is True
        some["full_width"] |= part.column("orig").null_count < len(part)
    # Registered, not stored: DuckDB's copy into a table of its own cost more (some 2 ms per 10,000
    # texts) than the queries gained from reading it.
    table = pa.concat_tables(parts)
    con.register(into, table)
    return some, table.select(["k", "text", "region", "phone_like"] if "phone_like" in table.column_names else ["k"])


#: Rows per part at the least when a column is cut in parts that run side by side.
MIN_PART = 4096
#: Rows read at a time, then cut in parts, by a connection with several threads.
_CHUNK = 262_144
_SHARED: list = []
_SHARED_LOCK = threading.Lock()


def shared_cursor():  # noqa: ANN201 - a duckdb connection
    """A fresh connection (its own temp tables, one thread) to an in-memory
    database made once per process: a part of a column is found on one. A
    cursor costs about 1 ms, a new database some 25 ms."""
    import duckdb

    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(duckdb.connect(config={"threads": 1}))
        return _SHARED[0].cursor()


def cuts(n: int, cores: int) -> list[tuple[int, int]]:
    """Row ranges of a column of `n` rows run side by side, one per core, none
    under `MIN_PART` rows. Each part runs on its own connection and thread:
    DuckDB runs a table of fewer than 122,880 rows (one row group) on one
    core, and the NumPy stages hold Python's lock for part of their time."""
    p = max(1, min(cores, n // MIN_PART))
    return [(i * n // p, (i + 1) * n // p) for i in range(p)]


def find_rows(con, rows: pa.RecordBatch, kinds: tuple[str, ...]) -> pa.Table:  # noqa: ANN001
    """`find_into` over rows already in memory, a batch of `(k, text,
    region)`, on this connection and thread (one part of a column); the
    findings come back as an Arrow table `(k, kind, value)`. Rows read from a
    registered Arrow table instead, through DuckDB and back, cost some 10 ms
    more per 10,000 texts; findings stored in a table and read back, 2 ms."""
    return _find_here(con, rows, "k", "text", "region", kinds, None)


def _find_part(rows: pa.RecordBatch, kinds: tuple[str, ...]) -> pa.Table:
    """`find_into` over `rows(k, text, region)` on a connection of its own: (k, kind, value)."""
    cur = shared_cursor()
    try:
        return find_rows(cur, rows, kinds)
    finally:
        cur.close()


def find_into(con, src: str, key: str, text: str, country: str | None, kinds: tuple[str, ...],  # noqa: ANN001
              into: str = "pii_found") -> None:
    """Create temp table `into(k, kind, value)`: every validated finding of
    `kinds` in the `text` column of relation `src` (keyed by `key`, the
    author's country in `country`). On a connection with one thread, here;
    with more, the rows are read a chunk at a time and each chunk cut in
    parts found side by side (`cuts`)."""
    threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    if threads <= 1:
        _find_here(con, src, key, text, country, kinds, into)
        return
    reader = con.sql(_rows_sql(src, key, text, country)).to_arrow_reader(_CHUNK)
    found: list[pa.Table] = []
    with ThreadPoolExecutor(threads, thread_name_prefix="consentry-pii") as pool:
        for batch in reader:
            found += pool.map(lambda lo_hi, b=batch: _find_part(b.slice(lo_hi[0], lo_hi[1] - lo_hi[0]), kinds),
                              cuts(batch.num_rows, threads))
    k_type = reader.schema.field("k").type
    empty = pa.table({"k": pa.array([], k_type), "kind": pa.array([], pa.string()), "value": pa.array([], pa.string())})
    con.register(f"_{into}_parts", pa.concat_tables([empty] + [f.cast(empty.schema) for f in found]))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {into} AS SELECT k, kind, value FROM _{into}_parts")
    con.unregister(f"_{into}_parts")


def _pairs(k: pa.Array, lists: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """(k, value) for each element of a list column (a null list has none)."""
    lists = lists.combine_chunks()
    return k.take(pc.list_parent_indices(lists)), pc.list_flatten(lists)


def _found(kind: str, k: pa.Array, value: pa.Array) -> pa.Table:
    """Findings of one kind as `(k, kind, value)` rows."""
    return pa.table({"k": k, "kind": pa.repeat(kind, len(value)), "value": value.cast(pa.string())})


def _find_here(con, src: str | pa.RecordBatch, key: str, text: str, country: str | None,  # noqa: ANN001
               kinds: tuple[str, ...], into: str | None) -> pa.Table | None:
    """`find_into` on this connection (`src`: a relation, or a batch of
    `(k, text, region)`); with `into` None, the findings are returned, not
    stored. Each stage is a set operation over the
    whole column and is computed once; a finding inside a finding of an
    earlier kind (a phone-like run inside an IBAN) is dropped.

    Two queries read the text: one extracts the emails, IBAN-shaped regions
    and card runs (each pattern only on the rows its test let through), one
    the phone runs, in the text with what the first found blanked out. What
    comes between is Arrow and NumPy: each statement cost DuckDB some 0.5 ms
    before it read a row (there were twenty a call and core)."""
    t = f"_{into or 'pii_rows'}"
    some, rows = load_candidates(con, src, key, text, country, kinds, f"{t}_src")
    k_type = rows.schema.field("k").type
    no_k = pa.array([], k_type)
    found: list[pa.Table] = [_found("email", no_k, pa.array([], pa.string()))]
    blank: list[tuple[pa.Array, pa.Array]] = []  # (k, value) blanked out before phone runs are read
    extract = []  # (column, the test that lets a row through, pattern)
    if some.get("has_at"):
        extract.append(("email_at", "has_at", EMAIL))
    if some.get("spelled_at"):
        extract.append(("email_spelled", "spelled_at", EMAIL_SPELLED_ASCII))
        if some["idn"]:  # compiled only when needed
            extract.append(("email_idn", "idn", EMAIL_SPELLED))
        if some["plain"]:
            extract.append(("email_plain", "plain", EMAIL_PLAIN_AT))
    if some.get("iban_like"):
        extract.append(("iban_region", "iban_like", _IBAN_REGION))
    if some.get("card_like"):
        extract.append(("card_run", "card_like", CARD_RUN))
    if extract:
        got = con.sql("SELECT k, " + ", ".join(f"CASE WHEN {test} THEN regexp_extract_all(text, {quote_regex(pattern)}) END AS {name}"
                                               for name, test, pattern in extract)
                      + f" FROM {t}_src WHERE " + " OR ".join(test for _, test, _ in extract)).to_arrow_table()
        gk = got.column("k").combine_chunks()
        cols = set(got.column_names)
        for name in ("email_at", "email_spelled", "email_idn", "email_plain"):
            if name in cols:
                k, value = _pairs(gk, got.column(name))
                if name == "email_at":  # "icon@2x.png" is a file name
                    keep = pc.invert(pc.match_substring_regex(value, FILE_NAME))
                    k, value = k.filter(keep), value.filter(keep)
                found.append(_found("email", k, value))
                blank.append((k, value))
        if "iban_region" in cols:
            # IBAN-shaped text, valid or not: a valid one is an IBAN; either way its digits are no phone number.
            # The regions are found here, the IBANs in them and their check digits in NumPy (`ibans.py`).
            k, region = _pairs(gk, got.column("iban_region"))
            row, value, ok = iban_matches(region, IBAN_LENGTHS)
            k = k.take(pa.array(row, pa.int64()))
            if "iban" in kinds:
                ok = pa.array(ok, pa.bool_())
                found.append(_found("iban", k.filter(ok), value.filter(ok)))
            blank.append((k, value))  # the valid ones among them
        if "card_run" in cols:
            # Runs of digit groups, glued letters and all; the spans that are card numbers are found in NumPy (`cards.py`).
            k, run = _pairs(gk, got.column("card_run"))
            # 13 digits or more: a run has nothing but digits and single separators after its "+"
            keep = pc.and_(pc.match_substring_regex(run, _CARD_LIKE), pc.invert(pc.match_substring_regex(run, _PLUS_RUN)))
            k, run = k.filter(keep), run.filter(keep)
            row, value = card_spans(run, IBAN_CODES)
            k = k.take(pa.array(row, pa.int64()))
            found.append(_found("card", k, value))
            blank.append((k, value))
    if some.get("phone_like"):
        # Runs are read in the text with the emails, IBANs and cards found above
        # blanked out, and IBAN-shaped text that fails its checksum too: their
        # digits are not phone numbers.
        phone = rows.filter(rows.column("phone_like"))
        vals = longest_first(pa.concat_arrays([no_k] + [k.cast(k_type) for k, _ in blank]),
                             pa.concat_arrays([pa.array([], pa.string())] + [v.cast(pa.string()) for _, v in blank]),
                             phone.column("k").combine_chunks())
        con.register(f"{t}_phone", pa.table({"k": phone.column("k"), "text": phone.column("text"),
                                             "region": phone.column("region"), "vals": vals}))
        runs = con.sql(f"""SELECT k, unnest(regexp_extract_all({replace_each("text", "vals", "' '")}, {quote_regex(PHONE_RUN)})) AS run,
                region FROM {t}_phone""").to_arrow_table()
        con.unregister(f"{t}_phone")
        run = runs.column("run").combine_chunks()
        # 7 digits or more: the cue and lead before a run's first digit have none
        keep = pc.and_(pc.match_substring_regex(run, _PHONE_LIKE), pc.invert(pc.match_substring_regex(run, _NOT_PHONE_AT_START)))
        runs = runs.filter(keep)
        row, value = phone_values(runs.column("run").combine_chunks(), runs.column("region").combine_chunks())
        found.append(_found("phone", runs.column("k").combine_chunks().take(pa.array(row, pa.int64())), value))
    con.register(f"{t}_f", pa.concat_tables([f.cast(found[0].schema) for f in found]))
    found_rel, text_of = f"{t}_f", "s.text"
    if some["full_width"]:
        # A value found in a text's ASCII twin is, in the text, the characters at each place it occurs
        # there (the twin has one character for each of the text's): "０６１２３４５６７８" for 0612345678.
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {t}_fw AS
            SELECT f.k, f.kind, f.value FROM {t}_f f ANTI JOIN (SELECT k FROM {t}_src WHERE orig IS NOT NULL) s ON s.k = f.k
            UNION ALL
            SELECT k, kind, substr(orig, unnest(list_transform(range(1, len(n)),  -- occurrence j starts after j parts
                                                 lambda j: (list_sum(n[1:j]) + (j - 1) * length(value) + 1)::BIGINT)), length(value))
            FROM (SELECT f.k, f.kind, f.value, s.orig, list_transform(string_split(s.text, f.value), lambda x: length(x)) AS n
                  FROM {t}_f f JOIN {t}_src s ON s.k = f.k AND s.orig IS NOT NULL WHERE f.value <> '')""")
        found_rel, text_of = f"{t}_fw", "coalesce(s.orig, s.text)"
    rank = "CASE kind " + " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(KINDS)) + " END"
    settled = f"""
        WITH f AS (SELECT DISTINCT k, kind, value, {rank} AS rk FROM {found_rel} WHERE value <> ''),
        inside AS (
          SELECT f.k, f.kind, f.value FROM f JOIN f g ON g.k = f.k AND g.value <> f.value AND contains(g.value, f.value)
            AND (g.rk < f.rk OR (g.rk = f.rk AND length(g.value) > length(f.value)))
          JOIN {t}_src s ON s.k = f.k
          WHERE NOT contains(replace({text_of}, g.value, ''), f.value))
        SELECT k, kind, value FROM f ANTI JOIN inside USING (k, kind, value)"""
    if into:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {into} AS {settled}")
        found = None
    else:
        found = con.sql(settled).to_arrow_table()
    con.unregister(f"{t}_f")
    con.unregister(f"{t}_src")
    con.execute(f"DROP TABLE IF EXISTS {t}_fw")
    return found
