"""Compile a policy and a cut-off into SQL over three relations:
`users`, `content`, `tags` (CONTRACT §1, typed) and `ledger_events`
(seq, user_id, item_id, type, event_at).

Only portable SQL is emitted (CASE, joins, GROUP BY, row_number, year/month/day)
so the same text runs in DuckDB and in Spark SQL; nothing is decided in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..policy import Policy, TaggedPeople
from ..ledger.events import CONSENT_TYPES, OBJECTION_TYPES, THIRD_PARTY_TYPES, EventType
from ..sqltext import quote
from ..timeutil import naive_utc
from .rules import Reason




def ts_lit(dt: datetime) -> str:
    return f"TIMESTAMP '{naive_utc(dt).isoformat(sep=' ')}'"


def in_list(expr: str, values: list[str]) -> str:
    return f"{expr} IN ({', '.join(quote(v) for v in values)})" if values else "false"


def adult_from_sql(birth: str, years: int) -> str:
    """The day someone born on `birth` completes `years` years: the same month and
    day, or 1 March for a 29 February birthday in a common year. Computed once
    per person, so the rules compare instants instead of doing calendar
    arithmetic for every item."""
    y = f"(year({birth}) + {years})"
    leap = f"(({y} % 4 = 0 AND {y} % 100 <> 0) OR {y} % 400 = 0)"
    return (
        f"CASE WHEN month({birth}) = 2 AND day({birth}) = 29 AND NOT {leap} "
        f"THEN make_date({y}, 3, 1) ELSE make_date({y}, month({birth}), day({birth})) END"
    )


def age_sql(birth: str, at: str) -> str:
    """Whole years completed at `at`. Someone born on 29 February comes of age on
    1 March in a common year."""
    return (
        f"(year({at}) - year({birth}) - CASE WHEN month({at}) * 100 + day({at}) "
        f"< month({birth}) * 100 + day({birth}) THEN 1 ELSE 0 END)"
    )


@dataclass(frozen=True)
class Compiler:
    policy: Policy
    at: datetime
    #: Decide only one person's items (and look only at the people they tag):
    #: what a privacy-center page needs, without evaluating every user.
    scope_user: str | None = None
    #: A type the reasons are cast to (DuckDB's `engine.duck.REASON_TYPE`, an
    #: ENUM of the reasons in rule order); None leaves them strings (Spark).
    #: The text is otherwise the same. An ENUM column is one byte a row, and
    #: Parquet writes it as the same dictionary of strings without hashing
    #: one string per item: writing 20M decisions took a quarter less CPU.
    reason_type: str | None = None

    def reason_lit(self, reason: Reason) -> str:
        """A reason as a SQL literal, of `reason_type` when one is set."""
        return f"CAST({quote(reason)} AS {self.reason_type})" if self.reason_type else quote(reason)

    @property
    def T(self) -> str:
        return ts_lit(self.at)

    # -- people ---------------------------------------------------------------------

    def jurisdiction_sql(self, country: str) -> str:
        p = self.policy
        whens = [f"WHEN {country} IS NULL THEN {quote(p.unknown_country_jurisdiction.name)}"]
        for j in p.jurisdictions:
            if not j.is_default:
                whens.append(f"WHEN {in_list(country, j.countries)} THEN {quote(j.name)}")
        return f"CASE {' '.join(whens)} ELSE {quote(p.default_jurisdiction.name)} END"

    def notice_before_sql(self, jurisdiction: str) -> str:
        whens = [
            f"WHEN {quote(j.name)} THEN {ts_lit(self.at - timedelta(days=j.notice_days))}"
            for j in self.policy.jurisdictions
            if j.notice_days is not None
        ]
        return f"CASE {jurisdiction} {' '.join(whens)} END" if whens else "CAST(NULL AS TIMESTAMP)"

    def person_conditions(self, p: str, item_created: str | None) -> dict[Reason, str]:
        """SQL conditions, true when the person fails the rule. `p` is a row of the
        `people` relation; rule 9 needs the item's creation time."""
        pol = self.policy
        consent_j = [j.name for j in pol.jurisdictions if j.basis == "consent"]
        honour_j = [j.name for j in pol.jurisdictions if j.honour_objections]
        conds = {
            Reason.account_deleted: f"(COALESCE({p}.deleted_at <= {self.T}, false) OR {p}.erased)",
            Reason.age_unknown: f"{p}.birth_date IS NULL",
            Reason.minor: f"{p}.adult_from > {self.T}",
        }
        if pol.minimum_age_at_posting and item_created is not None:
            conds[Reason.minor_at_posting] = f"{item_created} < {p}.adult_from"
        conds[Reason.no_consent] = (
            f"({in_list(f'{p}.jurisdiction', consent_j)} AND "
            f"COALESCE({p}.consent_state, '') <> 'consent_given')"
        )
        conds[Reason.objected] = (
            f"({in_list(f'{p}.jurisdiction', honour_j)} AND COALESCE({p}.objection_state, '') = 'objected')"
        )
        conds[Reason.not_notified] = (
            f"({p}.notice_before IS NOT NULL AND "
            f"({p}.first_notified_at IS NULL OR {p}.first_notified_at > {p}.notice_before))"
        )
        return conds

    def failing_sql(self) -> str:
        """(user_id, reason): everyone who fails a person rule (6-12) at this
        compiler's T, with the first rule failed. Snapshots ask it at max(T, now)
        for who must not be in them; explain, for what changed since T."""
        return (f"WITH {self.people_ctes()} SELECT user_id, COALESCE(reason_a, reason_b) AS reason FROM people "
                "WHERE reason_a IS NOT NULL OR reason_b IS NOT NULL")

    def people_ctes(self) -> str:
        """`people`: one row per user with everything the person rules read at T,
        and `reason_a` (rules 6-8) / `reason_b` (rules 10-12)."""
        groups = ", ".join(quote(t) for t in (*OBJECTION_TYPES, *CONSENT_TYPES))
        objection = ", ".join(quote(t) for t in OBJECTION_TYPES)
        conds = self.person_conditions("p", None)
        a = [Reason.account_deleted, Reason.age_unknown, Reason.minor]
        b = [Reason.no_consent, Reason.objected, Reason.not_notified]
        case_a = " ".join(f"WHEN {conds[r]} THEN {self.reason_lit(r)}" for r in a)
        case_b = " ".join(f"WHEN {conds[r]} THEN {self.reason_lit(r)}" for r in b)
        scope = ""
        users_rel, ev_filter = "users", ""
        if self.scope_user is not None:
            uid = quote(self.scope_user)
            scope = f"""
scope AS (
  SELECT {uid} AS user_id
  UNION SELECT t.tagged_user_id FROM tags t JOIN content c ON c.item_id = t.item_id WHERE c.user_id = {uid}
  UNION SELECT t.tagged_user_id FROM tags t WHERE t.item_id IN (
    SELECT item_id FROM tags WHERE tagged_user_id = {uid})
  UNION SELECT c.user_id FROM content c JOIN tags t ON t.item_id = c.item_id WHERE t.tagged_user_id = {uid}
),
scoped_users AS (SELECT * FROM users WHERE user_id IN (SELECT user_id FROM scope)),"""
            users_rel = "scoped_users"
            ev_filter = " AND user_id IN (SELECT user_id FROM scope)"
        return f"""{scope}
ev AS (
  SELECT user_id, type, event_at, seq FROM ledger_events
  WHERE event_at <= {self.T} AND user_id IS NOT NULL{ev_filter}
),
latest AS (
  -- the latest objection and consent event per person, by (event_at, seq): one
  -- window over the ledger, both answers side by side (a second window would
  -- cost Spark another shuffle and sort of the events)
  SELECT user_id,
    max(CASE WHEN grp = 'objection' THEN type END) AS objection_state,
    max(CASE WHEN grp = 'consent' THEN type END) AS consent_state
  FROM (
    SELECT user_id, type,
      CASE WHEN type IN ({objection}) THEN 'objection' ELSE 'consent' END AS grp,
      row_number() OVER (
        PARTITION BY user_id, CASE WHEN type IN ({objection}) THEN 'objection' ELSE 'consent' END
        ORDER BY event_at DESC, seq DESC) AS rn
    FROM ev WHERE type IN ({groups})
  ) ranked WHERE rn = 1
  GROUP BY user_id
),
per_user AS (
  SELECT user_id,
    max(CASE WHEN type = 'erasure_requested' THEN 1 ELSE 0 END) = 1 AS erased,
    min(CASE WHEN type = 'notified' THEN event_at END) AS first_notified_at
  FROM ev GROUP BY user_id
),
people_base AS (
  SELECT u.user_id, u.birth_date, u.deleted_at, u.country,
    CAST({adult_from_sql('u.birth_date', self.policy.minimum_age)} AS TIMESTAMP) AS adult_from,
    {self.jurisdiction_sql('u.country')} AS jurisdiction,
    COALESCE(pu.erased, false) AS erased,
    pu.first_notified_at,
    l.objection_state,
    l.consent_state
  FROM {users_rel} u
  LEFT JOIN per_user pu ON pu.user_id = u.user_id
  LEFT JOIN latest l ON l.user_id = u.user_id
),
people_j AS (
  SELECT *, {self.notice_before_sql('jurisdiction')} AS notice_before FROM people_base
),
people AS (
  SELECT p.*, CASE {case_a} END AS reason_a, CASE {case_b} END AS reason_b FROM people_j p
)"""

    # -- items ----------------------------------------------------------------------

    def item_conditions(self, c: str) -> dict[Reason, str]:
        pol = self.policy
        conds = {
            Reason.private_message: f"{c}.kind = 'private_message'",
            Reason.kind_not_allowed: f"NOT ({in_list(f'{c}.kind', list(pol.kinds))})",
            Reason.not_public: f"COALESCE({c}.visibility, '') <> 'public'",
            Reason.after_cutoff: f"{c}.created_at > {self.T}",
            Reason.content_deleted: f"COALESCE({c}.deleted_at <= {self.T}, false)",
        }
        return conds

    def before_window_sql(self, c: str) -> str | None:
        since = self.policy.content_since
        if since is None:
            return None
        return f"{c}.created_at < TIMESTAMP '{since.isoformat()} 00:00:00'"

    def tagged_cte(self, broadcast: bool = False, third_party: bool = False) -> str:
        """Per tagged item: does any tagged person fail a person rule at T, and the
        latest coming-of-age among them (for rule 9 at the item's creation time),
        and `tp_objected`. With `third_party`, the items of `third_party` (rule
        15) are folded in, so that every item meets one join instead of two (a
        probe of all items costs as much for 5,000 objections as for a million
        tags); tags and objections are grouped together, once."""
        hint = "/*+ BROADCAST(tp) */ " if broadcast else ""
        # One row per tag (and, with `third_party`, per objected item), grouped once.
        facts = f"""
    SELECT {hint}t.item_id, tp.reason_a IS NOT NULL OR tp.reason_b IS NOT NULL AS fails,
      tp.adult_from, false AS tp_objected
    FROM tags t JOIN people tp ON tp.user_id = t.tagged_user_id"""
        if third_party:
            facts += """
    UNION ALL
    SELECT item_id, false, CAST(NULL AS TIMESTAMP), true FROM third_party"""
        return f"""
tagged AS (
  SELECT item_id, max(fails) AS fails_now, max(adult_from) AS youngest_adult_from, max(tp_objected) AS tp_objected
  FROM ({facts}
  ) f
  GROUP BY item_id
)"""

    @property
    def honours_third_parties(self) -> bool:
        return self.policy.honour_third_party_objections

    def third_party_cte(self) -> str:
        """`third_party`: the items with a third-party objection in force at T
        (rule 15): the latest third-party event by (at, seq) is an objection."""
        types = ", ".join(quote(t) for t in THIRD_PARTY_TYPES)
        return f"""
third_party AS (
  SELECT item_id FROM (
    SELECT item_id, type,
      row_number() OVER (PARTITION BY item_id ORDER BY event_at DESC, seq DESC) AS rn
    FROM ledger_events
    WHERE item_id IS NOT NULL AND event_at <= {self.T} AND type IN ({types})
  ) ranked WHERE rn = 1 AND type = {quote(EventType.third_party_objected)}
)"""

    def left_out_now_sql(self, *, d: str, c: str, lf: str, lt: str, tp: str, prefix: str = "") -> str:
        """Why a build made at this compiler's T (now, past the cut-off) leaves
        out an item the decisions at the cut-off allow, first cause first, or
        NULL: its author fails a person rule now (`lf`, `failing_sql` joined on
        the author), it was deleted since, a tagged person fails one under
        `require` (`lt`: the item, when one does), a third party objected and
        faces are not blurred (`tp`: `third_party_cte` joined on the item), or
        it may be used only blurred and has no image to blur
        ('no_image_to_blur'). `d` is the decision row, `c` the content row.
        Each cause but the last is prefixed with `prefix`. The one home of this
        order: a build and a person's page both read it."""
        blur = self.policy.tagged_people is TaggedPeople.blur
        require = self.policy.tagged_people is TaggedPeople.require
        p = quote(prefix)
        whens = [f"WHEN {lf}.reason IS NOT NULL THEN {p} || {lf}.reason",
                 f"WHEN {c}.deleted_at <= {self.T} THEN {p} || {quote(Reason.content_deleted)}"]
        if require:
            whens.append(f"WHEN {lt}.item_id IS NOT NULL THEN {p} || {quote(Reason.tagged_person)}")
        if blur:
            # Eligible only with every face blurred, but there is no image to blur: left out, as a photo
            # whose faces cannot be found is (kept, it failed its own verify and no purge took it out).
            whens.append(f"WHEN {c}.media_path IS NULL AND (COALESCE({d}.blur_faces, false) OR {lt}.item_id IS NOT NULL "
                         f"OR {tp}.item_id IS NOT NULL) THEN 'no_image_to_blur'")
        else:
            whens.append(f"WHEN {tp}.item_id IS NOT NULL THEN {p} || {quote(Reason.third_party_objected)}")
        return f"CASE {' '.join(whens)} END"

    def tagged_fail_sql(self, c: str, tg: str, *, when: bool = False) -> str:
        """A tagged person fails a person rule for item `c` (`tg`: its `tagged` row, NULL when no one is
        tagged). `when`: the test of a CASE WHEN, where NULL already counts as false, so it goes without
        the COALESCEs a value needs (in DuckDB's profile 0.3 of the CASE's 1.3 CPU s over 20M items; about
        1% of a whole run)."""
        fails, young = f"{tg}.fails_now", f"{c}.created_at < {tg}.youngest_adult_from"
        if not when:
            fails, young = f"COALESCE({fails}, false)", f"COALESCE({young}, false)"
        return f"({fails} OR {young})" if self.policy.minimum_age_at_posting else fails

    def tagged_passes_sql(self, c: str, p: str) -> str:
        """One tagged person `p` (a `people` row) passes the person rules at T
        for item `c`: `tagged_fail_sql` person by person, negated."""
        cond = f"{p}.reason_a IS NULL AND {p}.reason_b IS NULL"
        if self.policy.minimum_age_at_posting:
            cond += f" AND NOT COALESCE({c}.created_at < {p}.adult_from, false)"
        return cond

    def reason_sql(self, tp_objected: str, c: str = "c", p: str = "p", tg: str = "tg") -> str:
        """The CASE giving each item its reason; `tp_objected` says whether a third party objected (rule 15):
        a test of a WHEN, so it may be NULL for no."""
        whens = [f"WHEN {cond} THEN {self.reason_lit(r)}" for r, cond in self.item_conditions(c).items()]
        whens.append(f"WHEN {p}.reason_a IS NOT NULL THEN {p}.reason_a")
        person = self.person_conditions(p, f"{c}.created_at")
        if Reason.minor_at_posting in person:
            whens.append(f"WHEN {person[Reason.minor_at_posting]} THEN {self.reason_lit(Reason.minor_at_posting)}")
        whens.append(f"WHEN {p}.reason_b IS NOT NULL THEN {p}.reason_b")
        if (bw := self.before_window_sql(c)) is not None:
            whens.append(f"WHEN {bw} THEN {self.reason_lit(Reason.before_window)}")
        if self.policy.tagged_people is TaggedPeople.require:
            whens.append(f"WHEN {self.tagged_fail_sql(c, tg, when=True)} THEN {self.reason_lit(Reason.tagged_person)}")
        if self.honours_third_parties and self.policy.tagged_people is not TaggedPeople.blur:
            whens.append(f"WHEN {tp_objected} THEN {self.reason_lit(Reason.third_party_objected)}")
        return f"CASE {' '.join(whens)} ELSE {self.reason_lit(Reason.eligible)} END"

    def people_sql(self) -> str:
        """The `people` relation alone, for a backend that computes it once and
        hands it to `decisions_sql(people=...)` (Spark would otherwise recompute
        it for each of its readers)."""
        return f"WITH {self.people_ctes()}\nSELECT * FROM people"

    def decisions_sql(self, *, where: str | None = None, people: str | None = None, broadcast: bool = False) -> str:
        """One row per content item: item_id, user_id, eligible, reason, and
        blur_faces when the policy blurs tagged people instead of dropping items.
        `people` names a relation already holding `people_sql()`'s rows.
        `broadcast`: hints that the people and tagged-item relations are small
        enough to be sent whole to every task (Spark then joins the items
        where they are read instead of shuffling them twice; to DuckDB the hint
        is a comment)."""
        checks_tags = self.policy.tagged_people is not TaggedPeople.ignore
        tp = self.honours_third_parties
        people_ctes = f"\npeople AS (SELECT * FROM {people})" if people else self.people_ctes()
        # With tags checked, the third-party items ride in `tagged` (one join); else they are their own.
        folded = checks_tags and tp
        ctes = (people_ctes + ("," + self.third_party_cte() if tp else "")
                + ("," + self.tagged_cte(broadcast, third_party=folded) if checks_tags else ""))
        tag_join = "LEFT JOIN tagged tg ON tg.item_id = c.item_id" if checks_tags else ""
        if tp and not folded:
            tag_join += "\n  LEFT JOIN third_party tp ON tp.item_id = c.item_id"
        # NULL (no tag, no objection) is no: enough for the CASE's WHEN, not for the blur flag's value.
        tp_when = "tg.tp_objected" if folded else "tp.item_id IS NOT NULL"
        tp_objected = "COALESCE(tg.tp_objected, false)" if folded else tp_when
        blur = self.policy.tagged_people is TaggedPeople.blur
        # Under blur, rules 14 and 15 keep the item on condition that faces are blurred.
        blur_if = [self.tagged_fail_sql("c", "tg")] + ([tp_objected] if tp else [])
        inner_extra = f", ({' OR '.join(blur_if)}) AS tagged_fail" if blur else ""
        outer_extra = ", (reason = 'eligible' AND tagged_fail) AS blur_faces" if blur else ""
        filt = f"WHERE {where}" if where else ""
        hints = ("/*+ BROADCAST(p)" + (", BROADCAST(tg)" if checks_tags else "") + " */ ") if broadcast else ""
        return f"""WITH {ctes},
decided AS (
  SELECT {hints}c.item_id, c.user_id, {self.reason_sql(tp_objected=tp_when)} AS reason{inner_extra}
  FROM content c
  JOIN people p ON p.user_id = c.user_id
  {tag_join}
  {filt}
)
SELECT item_id, user_id, reason = 'eligible' AS eligible, reason{outer_extra} FROM decided"""
