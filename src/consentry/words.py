"""Counts in English messages (the CLI, validation, logs, the DPO's report)
that agree with their nouns: "1 row has", "2 rows have", never a noun with an "s" in brackets.
People's own pages and mails are translated with plural forms instead (`i18n.ngettext`)."""

from __future__ import annotations

import re

__all__ = ["agree", "count", "plural"]

_CHOICE = re.compile(r"\{([^{}|]*)\|([^{}|]*)\}")


def plural(n: int | None, one: str, many: str) -> str:
    """`one` when n is 1, else `many`."""
    return one if n == 1 else many


def count(n: int, one: str, many: str) -> str:
    """`1 person`, `2 people`, `1,024 rows`: a count with its noun agreeing."""
    return f"{n:,} {plural(n, one, many)}"


def agree(text: str, n: int) -> str:
    """`text` with `{n}` replaced by the count and each `{one|many}` by the form
    that agrees with it: agree("{n} {row has|rows have} no value", 1)."""
    return _CHOICE.sub(lambda m: plural(n, m.group(1), m.group(2)), text).replace("{n}", f"{n:,}")
