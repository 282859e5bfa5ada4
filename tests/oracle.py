"""CONTRACT §3 written the plainest way, one item at a time, in Python.

Only for tests: the engine must agree with this on any data hypothesis finds.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from consentry.policy import Policy
from consentry.timeutil import parse_instant

OBJ = ("objected", "objection_withdrawn", "objection_rejected")
CONS = ("consent_given", "consent_withdrawn")


def _ts(v):
    return None if v is None else parse_instant(v) if isinstance(v, str) else v


def _age(bd: date, t: datetime) -> int:
    return t.year - bd.year - ((t.month, t.day) < (bd.month, bd.day))


def oracle(
    users: list[dict], content: list[dict], tags: list[dict], events: list[dict], policy: Policy, T: datetime,
    blur: dict[str, bool] | None = None,
) -> dict[str, str]:
    """item_id -> reason; fills `blur` (item_id -> blur_faces) when given."""
    people = {u["user_id"]: u for u in users}
    # ledger order = list order
    visible = [(i, e) for i, e in enumerate(events) if _ts(e["at"]) <= T]

    def latest(uid, types):
        cands = [(_ts(e["at"]), i, e["type"]) for i, e in visible if e.get("user_id") == uid and e["type"] in types]
        return max(cands)[2] if cands else None

    def person_fail(uid: str, created: datetime) -> str | None:
        u = people[uid]
        deleted = _ts(u.get("deleted_at"))
        erased = any(e.get("user_id") == uid and e["type"] == "erasure_requested" for _, e in visible)
        if (deleted is not None and deleted <= T) or erased:
            return "account_deleted"
        bd = u.get("birth_date")
        if bd is None:
            return "age_unknown"
        bd = date.fromisoformat(bd) if isinstance(bd, str) else bd
        if _age(bd, T) < policy.minimum_age:
            return "minor"
        if policy.minimum_age_at_posting and _age(bd, created) < policy.minimum_age:
            return "minor_at_posting"
        j = policy.jurisdiction_for(u.get("country"))
        if j.basis == "consent" and latest(uid, CONS) != "consent_given":
            return "no_consent"
        if j.honour_objections and latest(uid, OBJ) == "objected":
            return "objected"
        if j.notice_days is not None:
            needed = T - timedelta(days=j.notice_days)
            if not any(e.get("user_id") == uid and e["type"] == "notified" and _ts(e["at"]) <= needed for _, e in visible):
                return "not_notified"
        return None

    def third_party_objected(item_id: str) -> bool:
        """Rule 15 as written: some objection at <= T that no dismissal at <= T
        follows in (at, ledger order)."""
        mine = [(_ts(e["at"]), i, e["type"]) for i, e in visible if e.get("item_id") == item_id]
        return any(
            not any(d > o for d in mine if d[2] == "third_party_dismissed")
            for o in mine if o[2] == "third_party_objected"
        )

    out = {}
    for c in content:
        created = _ts(c["created_at"])
        deleted = _ts(c.get("deleted_at"))
        if c["kind"] == "private_message":
            r = "private_message"
        elif c["kind"] not in policy.kinds:
            r = "kind_not_allowed"
        elif c["visibility"] != "public":
            r = "not_public"
        elif created > T:
            r = "after_cutoff"
        elif deleted is not None and deleted <= T:
            r = "content_deleted"
        elif (p := person_fail(c["user_id"], created)) is not None:
            r = p
        elif policy.content_since is not None and created < datetime.combine(
            policy.content_since, datetime.min.time(), tzinfo=created.tzinfo
        ):
            r = "before_window"
        elif policy.tagged_people == "require" and any(
            person_fail(t["tagged_user_id"], created) for t in tags if t["item_id"] == c["item_id"]
        ):
            r = "tagged_person"
        elif policy.honour_third_party_objections and policy.tagged_people != "blur" and third_party_objected(c["item_id"]):
            r = "third_party_objected"
        else:
            r = "eligible"
        if blur is not None:
            blur[c["item_id"]] = r == "eligible" and policy.tagged_people == "blur" and (
                any(person_fail(t["tagged_user_id"], created) for t in tags if t["item_id"] == c["item_id"])
                or (policy.honour_third_party_objections and third_party_objected(c["item_id"]))
            )
        out[c["item_id"]] = r
    return out
