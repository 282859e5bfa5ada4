"""Country groups a policy may name instead of listing codes one by one."""

from __future__ import annotations

import pycountry

EU = (
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
).split()
EEA = EU + ["IS", "LI", "NO"]

GROUPS: dict[str, list[str]] = {"EU": EU, "EEA": EEA}

#: Every officially assigned ISO 3166-1 alpha-2 code, plus XK (Kosovo), which
#: platforms use although ISO has not assigned it.
COUNTRY_CODES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries) | {"XK"}


def expand(codes: list[str]) -> list[str]:
    """Expand group names (EU, EEA); leave codes and '*' alone."""
    out: list[str] = []
    for code in codes:
        out.extend(GROUPS.get(code, [code]))
    return out
