"""Text redaction as SQL: it runs inside the engine over the whole column, not
item by item in Python.

Patterns, not models (no NER model can be installed offline): emails, phone
numbers, IBANs and card numbers that pass the Luhn check become stable
placeholders; @mentions of people who may not be used become `@[person]`.
Order matters: emails before mentions (an address has an @), IBANs before
cards and phones (they contain digit runs), cards before phones.
"""

from __future__ import annotations

from ..policy import Transforms

EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
IBAN = r"\b[A-Z]{2}[0-9]{2}( ?[A-Z0-9]{4}){2,7}( ?[A-Z0-9]{1,4})?\b"
CARD = r"\b([0-9][ \-]?){12,18}[0-9]\b"
PHONE = (
    r"(\+[0-9]{1,3}[ .\-]?(\(?[0-9]\)?[ .\-]?){6,12}[0-9])"  # international: +31 6 1234 5678
    r"|(\b0[0-9]{1,4}[ .\-/]?([0-9][ .\-]?){5,9}[0-9]\b)"  # national, trunk prefix 0: 020-123 4567
    r"|(\([0-9]{3}\) ?[0-9]{3}-[0-9]{4})"  # North American: (555) 123-4567
)
# A handle ends with a letter, digit or underscore, so "@bob." ends a sentence.
MENTION = r"@([A-Za-z0-9_]([A-Za-z0-9_.]*[A-Za-z0-9_])?)"

PLACEHOLDERS = {"email": "[email]", "phone": "[phone]", "iban": "[iban]", "card": "[card]", "mention": "@[person]"}

MACROS = r"""
CREATE OR REPLACE TEMP MACRO consentry_digits(s) AS reverse(regexp_replace(s, '[^0-9]', '', 'g'));
CREATE OR REPLACE TEMP MACRO consentry_luhn_ok(s) AS (
  list_sum(list_transform(range(length(consentry_digits(s))), lambda i:
    CASE WHEN i % 2 = 1
      THEN (CASE WHEN CAST(substr(consentry_digits(s), i + 1, 1) AS INTEGER) * 2 > 9
                 THEN CAST(substr(consentry_digits(s), i + 1, 1) AS INTEGER) * 2 - 9
                 ELSE CAST(substr(consentry_digits(s), i + 1, 1) AS INTEGER) * 2 END)
      ELSE CAST(substr(consentry_digits(s), i + 1, 1) AS INTEGER) END)) % 10 = 0
);
CREATE OR REPLACE TEMP MACRO consentry_re_escape(s) AS regexp_replace(s, '([.\\^$|?*+()\[\]{}\-])', '\\\1', 'g');
"""


def _q(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


def text_steps(t: Transforms, bad_mentions: str | None) -> list[tuple[str, str]]:
    """(name, SQL template) for each enabled step, in order; `{x}` in the
    template is the text after the previous step. `bad_mentions` is a list
    column of the handles to hide."""
    steps: list[tuple[str, str]] = []
    if t.redact_emails:
        steps.append(("emails", f"regexp_replace({{x}}, {_q(EMAIL)}, '[email]', 'g')"))
    if t.mentions and bad_mentions is not None:
        pattern = "'(?i)@' || consentry_re_escape(h) || '($|[^A-Za-z0-9_.]|\\.$|\\.[^A-Za-z0-9_])'"
        steps.append((
            "mentions",
            f"CASE WHEN {bad_mentions} IS NULL THEN {{x}} ELSE "
            f"list_reduce({bad_mentions}, lambda acc, h: regexp_replace(acc, {pattern}, '@[person]\\1', 'g'), {{x}}) END",
        ))
    if t.redact_ibans:
        steps.append(("ibans", f"regexp_replace({{x}}, {_q(IBAN)}, '[iban]', 'g')"))
    if t.redact_cards:
        steps.append((
            "cards",
            f"CASE WHEN regexp_matches({{x}}, {_q(CARD)}) THEN list_reduce("
            f"list_filter(regexp_extract_all({{x}}, {_q(CARD)}), lambda m: consentry_luhn_ok(m)), "
            f"lambda acc, m: replace(acc, m, '[card]'), {{x}}) ELSE {{x}} END",
        ))
    if t.redact_phones:
        steps.append(("phones", f"regexp_replace({{x}}, {_q(PHONE)}, '[phone]', 'g')"))
    return steps
