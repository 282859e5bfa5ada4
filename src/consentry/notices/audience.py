"""Who must be told before the cut-off: everyone whose content the policy could
use, including the people tagged in it (a photo of them is used only if they
pass the person rules, notice included). Computed with the engine's own
person rules, as set operations."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from ..engine.compile import Compiler, in_list
from ..engine.backend import Backend, DuckBackend
from ..i18n import ALIASES, COUNTRY_LANGUAGES, DEFAULT, LANGUAGES
from ..ledger import Ledger
from ..policy import Policy
from ..sources import Export


def audience(export: Export, ledger: Ledger, policy: Policy, cutoff: datetime, *, backend: Backend | None = None) -> pa.Table:
    """user_id, email, language, jurisdiction for every person to notify; on
    `backend` (DuckDB in this process by default)."""
    comp = Compiler(policy, cutoff)
    needs_notice = [j.name for j in policy.jurisdictions if j.notice_days is not None]
    if not needs_notice:
        return pa.table({"user_id": [], "email": [], "language": [], "jurisdiction": []})
    usable = " AND ".join(
        f"NOT ({cond})" for cond in comp.item_conditions("c").values()
    )
    if (bw := comp.before_window_sql("c")) is not None:
        usable += f" AND NOT ({bw})"
    # Rule 15 through the engine: a photo a person without an account objected
    # to is not used (unless its faces are blurred), so it makes nobody in it part of the audience.
    from ..policy import TaggedPeople

    tp_cte = ""
    if comp.honours_third_parties and policy.tagged_people is not TaggedPeople.blur:
        tp_cte = "," + comp.third_party_cte()
        usable += " AND c.item_id NOT IN (SELECT item_id FROM third_party)"
    # Rule 11 only where the person's jurisdiction honours objections (CONTRACT §3): elsewhere an
    # objector's content is still used, so they are told like anyone else (rule 12 needs it).
    honour = [j.name for j in policy.jurisdictions if j.honour_objections]
    objection_in_force = (f"({in_list('p.jurisdiction', honour)} AND COALESCE(p.objection_state, '') = 'objected')"
                          if honour else "false")
    b = backend or DuckBackend()
    try:
        b.load(export, ledger, cutoff)
        return b.arrow(
            f"""WITH {comp.people_ctes()}{tp_cte},
usable AS (SELECT c.item_id, c.user_id FROM content c WHERE {usable}),
affected AS (
  SELECT user_id FROM usable
  UNION SELECT t.tagged_user_id FROM tags t JOIN usable u ON u.item_id = t.item_id
)
SELECT p.user_id, u.email,
  {language_sql("u.language", "u.country")} AS language,
  p.jurisdiction
FROM people p JOIN users u ON u.user_id = p.user_id
WHERE p.user_id IN (SELECT user_id FROM affected)
  AND p.reason_a IS NULL
  AND NOT {objection_in_force}
  AND {in_list('p.jurisdiction', needs_notice)}
ORDER BY p.user_id"""
        )
    finally:
        if backend is None:
            b.close()


def language_sql(language: str, country: str) -> str:
    """`i18n.for_person` as SQL (DuckDB and Spark): the person's language if
    served, else their country's, else English."""
    base = f"lower(split_part(replace({language}, '_', '-'), '-', 1))"
    alias = " ".join(f"WHEN '{a}' THEN '{b}'" for a, b in ALIASES.items())
    langs = ", ".join(f"'{x}'" for x in LANGUAGES)
    by_country = " ".join(f"WHEN '{c}' THEN '{lang}'" for c, lang in sorted(COUNTRY_LANGUAGES.items()))
    return (f"CASE WHEN {base} IN ({langs}) THEN {base} WHEN {base} IN ({', '.join(repr(a) for a in ALIASES)}) "
            f"THEN CASE {base} {alias} END ELSE CASE upper(trim({country})) {by_country} ELSE '{DEFAULT}' END END")
