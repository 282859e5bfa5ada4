"""Who must be told before the cut-off: everyone whose content the policy could
use, and the people tagged in others' photos it could use (a photo of them is
used only if they pass the person rules, notice included), each with which of
the two is true of them, so that the notice says so. Computed with the
engine's own person rules, as set operations. Also: who was already told the
same notice by another campaign."""

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
    """user_id, email, language, jurisdiction, own_content, in_others_photos for
    every person to notify; on `backend` (DuckDB in this process by default).

    `own_content`: something they posted may be used. `in_others_photos`: they are
    tagged in an item someone else posted that may be used. Both are sets, in SQL.
    A person is told when their own content may be used, or when a photo of them
    posted by others may be, and the policy looks at the people in photos
    (`tagged_people: require` or `blur`): under `ignore` a photo of them is used
    whatever they do, so a notice would change nothing for someone who posted
    nothing (the flag is still given, so that the notice of one who did says so)."""
    from ..policy import TaggedPeople

    comp = Compiler(policy, cutoff)
    needs_notice = [j.name for j in policy.jurisdictions if j.notice_days is not None]
    if not needs_notice:
        return pa.table({"user_id": pa.array([], pa.string()), "email": pa.array([], pa.string()),
                         "language": pa.array([], pa.string()), "jurisdiction": pa.array([], pa.string()),
                         "own_content": pa.array([], pa.bool_()), "in_others_photos": pa.array([], pa.bool_())})
    usable = " AND ".join(
        f"NOT ({cond})" for cond in comp.item_conditions("c").values()
    )
    if (bw := comp.before_window_sql("c")) is not None:
        usable += f" AND NOT ({bw})"
    # Rule 15 through the engine: a photo a person without an account objected to is not used, so it
    # makes nobody in it part of the audience. Under `blur` it is used with every face blurred: its
    # author's content still, the people in it not.
    blur = policy.tagged_people is TaggedPeople.blur
    tp_cte, shown_tp = "", ""
    if comp.honours_third_parties:
        tp_cte = "," + comp.third_party_cte()
        shown_tp = " AND u.item_id NOT IN (SELECT item_id FROM third_party)"
        if not blur:
            usable += " AND c.item_id NOT IN (SELECT item_id FROM third_party)"
    # Rule 11 only where the person's jurisdiction honours objections (CONTRACT §3): elsewhere an
    # objector's content is still used, so they are told like anyone else (rule 12 needs it).
    honour = [j.name for j in policy.jurisdictions if j.honour_objections]

    def objects(p: str) -> str:
        return (f"({in_list(f'{p}.jurisdiction', honour)} AND COALESCE({p}.objection_state, '') = 'objected')"
                if honour else "false")

    def adult_at_posting(p: str) -> str:  # rule 9, for the author (their item) or a person tagged in it
        return f"NOT COALESCE(u.created_at < {p}.adult_from, false)" if policy.minimum_age_at_posting else "true"

    # Photos of someone posted by others count only when their author could be used: rules 6-8 and
    # 11 now (rules 10 and 12 can still change before the cut-off), and rule 9 for the author and
    # for the person in it.
    told_for_photos = "OR s.user_id IS NOT NULL" if policy.tagged_people is not TaggedPeople.ignore else ""
    # Rule 14 under `require`: a photo with someone in it who fails a person rule for good (6-8, 9 at
    # its posting, 11) is never used, so it tells neither its author nor anyone else in it.
    kept_out, not_kept_out = "", ""
    if policy.tagged_people is TaggedPeople.require:
        kept_out = f""",
kept_out AS (
  SELECT DISTINCT t.item_id FROM tags t
  JOIN usable u ON u.item_id = t.item_id
  JOIN people q ON q.user_id = t.tagged_user_id
  WHERE q.reason_a IS NOT NULL OR {objects('q')} OR NOT ({adult_at_posting('q')})
)"""
        not_kept_out = " AND u.item_id NOT IN (SELECT item_id FROM kept_out)"
    b = backend or DuckBackend()
    try:
        b.load(export, ledger, cutoff)
        return b.arrow(
            f"""WITH {comp.people_ctes()}{tp_cte},
usable AS (SELECT c.item_id, c.user_id, c.created_at FROM content c WHERE {usable}){kept_out},
own AS (
  SELECT DISTINCT u.user_id FROM usable u JOIN people a ON a.user_id = u.user_id
  WHERE {adult_at_posting('a')}{not_kept_out}
),
shown AS (
  SELECT DISTINCT t.tagged_user_id AS user_id
  FROM tags t
  JOIN usable u ON u.item_id = t.item_id
  JOIN people a ON a.user_id = u.user_id
  JOIN people tp ON tp.user_id = t.tagged_user_id
  WHERE t.tagged_user_id <> u.user_id AND a.reason_a IS NULL AND NOT {objects('a')}
    AND {adult_at_posting('a')} AND {adult_at_posting('tp')}{shown_tp}{not_kept_out}
)
SELECT p.user_id, u.email,
  {language_sql("u.language", "u.country")} AS language,
  p.jurisdiction,
  o.user_id IS NOT NULL AS own_content,
  s.user_id IS NOT NULL AS in_others_photos
FROM people p JOIN users u ON u.user_id = p.user_id
LEFT JOIN own o ON o.user_id = p.user_id
LEFT JOIN shown s ON s.user_id = p.user_id
WHERE (o.user_id IS NOT NULL {told_for_photos})
  AND p.reason_a IS NULL
  AND NOT {objects('p')}
  AND {in_list('p.jurisdiction', needs_notice)}
ORDER BY p.user_id"""
        )
    finally:
        if backend is None:
            b.close()


def scope_of(row: dict) -> str:
    """What a person's notice speaks of: 'own' (their own content), 'tagged'
    (only photos of them posted by others) or 'both'."""
    own, tagged = bool(row.get("own_content", True)), bool(row.get("in_others_photos"))
    return "both" if own and tagged else ("tagged" if tagged else "own")


def language_sql(language: str, country: str) -> str:
    """`i18n.for_person` as SQL (DuckDB and Spark): the person's language if
    served, else their country's, else English."""
    base = f"lower(split_part(replace({language}, '_', '-'), '-', 1))"
    alias = " ".join(f"WHEN '{a}' THEN '{b}'" for a, b in ALIASES.items())
    langs = ", ".join(f"'{x}'" for x in LANGUAGES)
    by_country = " ".join(f"WHEN '{c}' THEN '{lang}'" for c, lang in sorted(COUNTRY_LANGUAGES.items()))
    return (f"CASE WHEN {base} IN ({langs}) THEN {base} WHEN {base} IN ({', '.join(repr(a) for a in ALIASES)}) "
            f"THEN CASE {base} {alias} END ELSE CASE upper(trim({country})) {by_country} ELSE '{DEFAULT}' END END")


def already_told(ledger: Ledger, policy: Policy, cutoff: datetime, *, besides: str | None = None) -> dict[str, str]:
    """user_id -> campaign id, for everyone another campaign (not `besides`) of
    the same policy and cut-off has told: its mail was accepted (or is
    `committing`, which counts as sent) or its in-app notice was shown. Each of
    them has a `notified` event for the very notice a new campaign would send."""
    from sqlalchemy import func, select

    from ..timeutil import to_micros
    from .tables import NoticeState, campaigns, outbox

    told = (NoticeState.sent, NoticeState.shown, NoticeState.committing)
    q = (select(outbox.c.user_id, func.min(outbox.c.campaign_id))
         .join(campaigns, campaigns.c.campaign_id == outbox.c.campaign_id)
         .where(campaigns.c.policy_hash == policy.hash, campaigns.c.cutoff_us == to_micros(cutoff),
                outbox.c.state.in_(told))
         .group_by(outbox.c.user_id))
    if besides is not None:
        q = q.where(outbox.c.campaign_id != besides)
    with ledger.reader.connect() as conn:
        return {str(u): str(c) for u, c in conn.execute(q)}

