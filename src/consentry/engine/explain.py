"""Every rule for one item, passed or failed, in plain words.

The facts come from the same compiled SQL as the decisions; the verdict is
the decision query's own answer for the item, so explanation and decision
cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from ..errors import InputError
from ..ledger import Ledger
from ..policy import Policy, TaggedPeople
from ..sources import Export
from ..sqltext import quote
from ..timeutil import iso, utc
from ..words import count
from .compile import Compiler, age_sql
from .backend import Backend, DuckBackend
from .rules import MEANING, ORDER, PERSON_RULES, Reason


@dataclass
class Check:
    reason: Reason
    failed: bool | None  # None: the policy does not apply this rule
    detail: str

    @property
    def number(self) -> int:
        return self.reason.number


@dataclass
class PersonChecks:
    user_id: str
    checks: list[Check]

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if c.failed), None)


@dataclass
class Explanation:
    item_id: str
    user_id: str
    at: datetime
    policy: str
    reason: Reason
    checks: list[Check]
    tagged: list[PersonChecks] = field(default_factory=list)
    # Rule 15's facts: the third-party events about this item at or before the
    # cut-off, in ledger order: (at, type, actor).
    third_party: list[tuple[datetime, str, str | None]] = field(default_factory=list)
    # For an item eligible at the cut-off: what has changed since, by the ledger
    # and the export as read now, that a snapshot build or purge acts on (plain words).
    since: list[str] = field(default_factory=list)
    # Under tagged_people: blur, evaluate's blur_faces for the item (eligible only with
    # every face blurred, rule 14 or 15); None under other policies.
    blur_faces: bool | None = None

    @property
    def eligible(self) -> bool:
        return self.reason is Reason.eligible

    @property
    def summary(self) -> str:
        if self.eligible and self.blur_faces:
            why = [c.detail.partition(" (")[0] for c in self.checks if c.reason is Reason.tagged_person
                   and c.detail.endswith("(their faces are blurred instead)")]
            if any(c.reason is Reason.third_party_objected and c.detail.startswith("objection in force")
                   for c in self.checks):
                why.append("a person without an account objects to it")
            return (f"{self.item_id} may be used at the cut-off only with every face blurred (blur_faces): "
                    f"{'; '.join(why)}.")
        if self.eligible:
            return f"{self.item_id} may be used at the cut-off: it passes every rule."
        return f"{self.item_id} is excluded by rule {self.reason.number} ({self.reason}): {MEANING[self.reason]}."


def _d(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, datetime):  # with its fraction: 00:00:00.5 late is late, and must not read as on time
        return iso(value).replace("T", " ").removesuffix("Z") + " UTC"
    return str(value)


def _person_sql(comp: Compiler, p: str, created: str) -> str:
    conds = comp.person_conditions(p, created)
    cols = [f"{cond} AS f_{r}" for r, cond in conds.items()]
    cols.append(f"{age_sql(f'{p}.birth_date', comp.T)} AS age_now")
    cols.append(f"{age_sql(f'{p}.birth_date', created)} AS age_then")
    return ", ".join(cols)


def _after(value: datetime, at: datetime) -> str:
    """A deletion shown with its time passes at T when it came after T: say so,
    or the line reads as a contradiction ("pass", "account deleted ...")."""
    return f"{_d(value)}{' (after the cut-off)' if utc(value) > utc(at) else ''}"


def _person_checks(policy: Policy, row: dict, at: datetime) -> list[Check]:
    j = next(x for x in policy.jurisdictions if x.name == row["jurisdiction"])
    out = []
    for r in PERSON_RULES:
        failed = row.get(f"f_{r}")
        failed = bool(failed) if failed is not None else None
        if r is Reason.account_deleted:
            if row["account_deleted_at"] is not None:
                detail = f"account deleted {_after(row['account_deleted_at'], at)}"
            else:
                detail = "account not deleted"
            detail += "; erasure requested" if row["erased"] else "; no erasure request"
        elif r is Reason.age_unknown:
            detail = f"born {row['birth_date']}" if row["birth_date"] else "no birth date on record"
        elif r is Reason.minor:
            detail = (
                f"aged {row['age_now']} at the cut-off (minimum {policy.minimum_age})"
                if row["birth_date"]
                else "age unknown"
            )
            failed = failed if row["birth_date"] else None
        elif r is Reason.minor_at_posting:
            if not policy.minimum_age_at_posting:
                failed, detail = None, "not checked: the policy looks at age at the cut-off only"
            elif not row["birth_date"]:
                failed, detail = None, "age unknown"
            else:
                detail = f"aged {row['age_then']} when it was posted (minimum {policy.minimum_age})"
        elif r is Reason.no_consent:
            if j.basis != "consent":
                failed, detail = None, f"jurisdiction '{j.name}' relies on legitimate interest: no consent needed"
            else:
                detail = f"jurisdiction '{j.name}' needs consent; " + (
                    "consent in force" if row["consent_state"] == "consent_given" else "no consent in force"
                )
        elif r is Reason.objected:
            if not j.honour_objections:
                failed, detail = None, f"jurisdiction '{j.name}': this policy does not honour objections"
            else:
                detail = {
                    "objected": "objection in force",
                    "objection_withdrawn": "objected, then withdrew the objection",
                    "objection_rejected": "objected; the objection was rejected on compelling grounds",
                }.get(row["objection_state"] or "", "no objection")
        else:  # not_notified
            if j.notice_days is None:
                failed, detail = None, f"jurisdiction '{j.name}' has no notice rule"
            else:
                detail = (
                    f"notice {count(j.notice_days, 'day', 'days')} before use: needed by {_d(row['notice_before'])}, "
                    + (f"first notified {_d(row['first_notified_at'])}" if row["first_notified_at"] else "never notified")
                )
        out.append(Check(r, failed, detail))
    return out


def explain(
    item_id: str,
    export: Export,
    ledger: Ledger,
    policy: Policy,
    at: datetime,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    backend: Backend | None = None,
) -> Explanation:
    """Every rule for one item; on `backend` (DuckDB in this process by default)."""
    if not isinstance(item_id, str):
        raise InputError(f"{item_id!r} is not an item id", fix="pass the item_id as text, e.g. 'i000001234'")
    b = backend or DuckBackend(con)
    try:
        return _explain(item_id, export, ledger, policy, at, b)
    finally:
        if backend is None:
            b.close()


def _explain(item_id: str, export: Export, ledger: Ledger, policy: Policy, at: datetime, b: Backend) -> Explanation:
    now = datetime.now(UTC)
    b.load(export, ledger, max(at, now))  # the decision reads only what was known at T; `since` the rest
    comp = Compiler(policy, at)
    item_conds = comp.item_conditions("c")
    bw = comp.before_window_sql("c")
    cols = ", ".join(f"{cond} AS f_{r}" for r, cond in item_conds.items())
    if bw:
        cols += f", {bw} AS f_{Reason.before_window}"
    q = f"""WITH {comp.people_ctes()}
SELECT c.item_id, c.user_id, c.kind, c.visibility, c.created_at, c.deleted_at,
  p.jurisdiction, p.birth_date, p.deleted_at AS account_deleted_at, p.erased, p.first_notified_at, p.notice_before,
  p.objection_state, p.consent_state, {cols}, {_person_sql(comp, 'p', 'c.created_at')}
FROM content c JOIN people p ON p.user_id = c.user_id WHERE c.item_id = {quote(item_id)}"""
    rows = b.arrow(q).to_pylist()
    if not rows:
        raise InputError(f"there is no item '{item_id}' in this export", where=str(export.folder))
    row = rows[0]
    item_deleted = row["deleted_at"]

    checks = [
        Check(Reason.private_message, row[f"f_{Reason.private_message}"], f"kind is '{row['kind']}'"),
        Check(
            Reason.kind_not_allowed,
            row[f"f_{Reason.kind_not_allowed}"],
            f"kind '{row['kind']}'; the policy uses {', '.join(policy.kinds)}",
        ),
        Check(Reason.not_public, row[f"f_{Reason.not_public}"], f"visibility is '{row['visibility']}'"),
        Check(
            Reason.after_cutoff,
            row[f"f_{Reason.after_cutoff}"],
            f"created {_d(row['created_at'])}; cut-off {_d(at)}",
        ),
        Check(
            Reason.content_deleted,
            row[f"f_{Reason.content_deleted}"],
            f"deleted {_after(item_deleted, at)}" if item_deleted else "not deleted",
        ),
    ]
    checks += _person_checks(policy, row, at)
    if bw:
        checks.append(
            Check(
                Reason.before_window,
                row[f"f_{Reason.before_window}"],
                f"created {_d(row['created_at'])}; the policy uses content since {policy.content_since}",
            )
        )
    else:
        checks.append(Check(Reason.before_window, None, "the policy has no content window"))

    tagged = _tagged(b, comp, policy, item_id)
    if policy.tagged_people is TaggedPeople.ignore:
        checks.append(Check(Reason.tagged_person, None, "the policy does not check tagged people"))
    elif not tagged:
        checks.append(Check(Reason.tagged_person, False, "nobody is tagged"))
    else:
        failing = [t for t in tagged if t.first_failure]
        if not failing:
            detail = f"{len(tagged)} tagged, all may be used"
        else:
            detail = "; ".join(f"{t.user_id} fails {t.first_failure.reason}" for t in failing)  # type: ignore[union-attr]
            if policy.tagged_people is TaggedPeople.blur:
                detail += " (their faces are blurred instead)"
        checks.append(
            Check(
                Reason.tagged_person,
                bool(failing) if policy.tagged_people is TaggedPeople.require else False,
                detail,
            )
        )

    history = [
        (r["event_at"] if r["event_at"].tzinfo else r["event_at"].replace(tzinfo=UTC), r["type"], r["actor"])
        for r in b.arrow(
            f"""SELECT e.event_at, e.type, a.actor FROM ledger_events e
            LEFT JOIN tp_actors a ON a.seq = e.seq
            WHERE e.item_id = {quote(item_id)} AND e.event_at <= {comp.T} ORDER BY e.event_at, e.seq"""
        ).to_pylist()
    ] if _actors(b, ledger, item_id) else []
    checks.append(_third_party_check(policy, history))

    blur = policy.tagged_people is TaggedPeople.blur
    verdict = b.arrow(
        f"SELECT reason{', blur_faces' if blur else ''} FROM ({comp.decisions_sql(where=f'c.item_id = {quote(item_id)}')}) d"
    ).to_pylist()[0]
    reason = Reason(verdict["reason"])
    blur_faces = bool(verdict["blur_faces"]) if blur else None
    tp_at_cutoff = bool(history) and history[-1][1] == "third_party_objected"
    since = _since(b, policy, at, now, row, tagged, blur_faces=bool(blur_faces), tp_at_cutoff=tp_at_cutoff) \
        if reason is Reason.eligible else []
    if policy.tagged_people is TaggedPeople.ignore:
        # Nothing about a tagged person decides anything: their facts are shown, checked by no rule.
        tagged = [PersonChecks(t.user_id, [Check(c.reason, None, f"not checked (tagged_people: ignore): {c.detail}")
                                           for c in t.checks]) for t in tagged]
    return Explanation(item_id, row["user_id"], at, policy.name, reason, checks, tagged, history, since, blur_faces)


def _since(b: Backend, policy: Policy, at: datetime, now: datetime, row: dict, tagged: list[PersonChecks], *,
           blur_faces: bool = False, tp_at_cutoff: bool = False) -> list[str]:
    """What fails now and did not at T: the author or a tagged person (rules
    6-12, `Compiler.failing_sql`, as snapshots find them), the item's deletion,
    a third-party objection. A build made now leaves such an item out (or
    blurs it), and a purge takes it out of earlier snapshots; the verdict at T
    does not say so."""
    if now <= at:
        return []
    blur = policy.tagged_people is TaggedPeople.blur
    comp = Compiler(policy, now)
    people = [row["user_id"]]
    # A tagged person already failing at T was counted at T (require: the item would not be
    # eligible; blur: its faces are blurred already); under ignore nobody tagged counts.
    # Under blur, once the item is blurred at T, nothing about a tagged person changes it.
    if policy.tagged_people is TaggedPeople.require or (blur and not blur_faces):
        people += [t.user_id for t in tagged if not t.first_failure]
    failing = b.arrow(
        f"SELECT * FROM ({comp.failing_sql()}) f WHERE user_id IN ({', '.join(map(quote, people))}) ORDER BY user_id"
    ).to_pylist()
    blurs = " (so a build now blurs every face in it rather than leaving it out)"
    out = [
        f"{'the author ' if f['user_id'] == row['user_id'] else 'tagged person '}{f['user_id']} now fails rule "
        f"{Reason(f['reason']).number} ({f['reason']})" + (blurs if blur and f["user_id"] != row["user_id"] else "")
        for f in sorted(failing, key=lambda f: f["user_id"] != row["user_id"])
    ]
    if row["deleted_at"] is not None and utc(row["deleted_at"]) <= now:
        out.append(f"the item was deleted {_d(row['deleted_at'])}")
    if comp.honours_third_parties and not tp_at_cutoff and not (blur and blur_faces) and b.arrow(
        f"WITH {comp.third_party_cte()} SELECT 1 FROM third_party WHERE item_id = {quote(row['item_id'])}"
    ).num_rows:
        out.append("a person without an account objects to it now (rule 15)" + (blurs if blur else ""))
    return out


def _actors(b: Backend, ledger: Ledger, item_id: str) -> bool:
    """Who wrote each third-party event about the item (the engine's events
    carry no actor); False when there are none."""
    import pyarrow as pa  # here: a decision that explains nothing never loads it
    from sqlalchemy import select

    from ..ledger.tables import events

    with ledger.reader.connect() as conn:
        rows = conn.execute(select(events.c.seq, events.c.actor).where(events.c.item_id == item_id)).all()
    b.table("tp_actors", pa.table({"seq": pa.array([r[0] for r in rows], pa.int64()),
                                   "actor": pa.array([r[1] for r in rows], pa.string())}))
    return bool(rows)


def _third_party_check(policy: Policy, history: list[tuple[datetime, str, str | None]]) -> Check:
    if not policy.honour_third_party_objections:
        return Check(Reason.third_party_objected, None, "the policy does not honour objections by people without an account")
    if not history:
        return Check(Reason.third_party_objected, False, "no objection by anyone without an account")
    steps = "; ".join(
        f"{'objected' if typ == 'third_party_objected' else 'dismissed'} {_d(at_)}" + (f" ({actor})" if actor else "")
        for at_, typ, actor in history
    )
    in_force = history[-1][1] == "third_party_objected"
    if in_force and policy.tagged_people is TaggedPeople.blur:
        return Check(Reason.third_party_objected, False, f"objection in force: faces are blurred instead; {steps}")
    return Check(Reason.third_party_objected, in_force, ("objection in force; " if in_force else "no objection in force; ") + steps)


def _tagged(b: Backend, comp: Compiler, policy: Policy, item_id: str) -> list[PersonChecks]:
    q = f"""WITH {comp.people_ctes()}
SELECT DISTINCT p.user_id, p.jurisdiction, p.birth_date, p.deleted_at AS account_deleted_at, p.erased, p.first_notified_at,
  p.notice_before, p.objection_state, p.consent_state, {_person_sql(comp, 'p', 'c.created_at')}
FROM tags t JOIN people p ON p.user_id = t.tagged_user_id JOIN content c ON c.item_id = t.item_id
WHERE t.item_id = {quote(item_id)} ORDER BY p.user_id"""
    return [PersonChecks(r["user_id"], _person_checks(policy, r, comp.at)) for r in b.arrow(q).to_pylist()]


__all__ = ["Check", "Explanation", "PersonChecks", "explain", "ORDER"]
