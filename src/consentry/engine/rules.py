"""The decision rules of CONTRACT §3, in their order. The first failed rule is the reason."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why an item may or may not be used: the contract's rules in their order (§3), the
    first that fails deciding; `eligible` when none does."""

    private_message = "private_message"
    kind_not_allowed = "kind_not_allowed"
    not_public = "not_public"
    after_cutoff = "after_cutoff"
    content_deleted = "content_deleted"
    account_deleted = "account_deleted"
    age_unknown = "age_unknown"
    minor = "minor"
    minor_at_posting = "minor_at_posting"
    no_consent = "no_consent"
    objected = "objected"
    not_notified = "not_notified"
    before_window = "before_window"
    tagged_person = "tagged_person"
    third_party_objected = "third_party_objected"
    eligible = "eligible"

    @property
    def number(self) -> int:
        return ORDER.index(self) + 1


ORDER: tuple[Reason, ...] = tuple(Reason)

#: Rules 6-12: about a person, so they apply to the author and to tagged people.
PERSON_RULES: tuple[Reason, ...] = ORDER[5:12]

#: What each reason means, in words a data protection officer signs off on.
MEANING: dict[Reason, str] = {
    Reason.private_message: "it is a private message, which is never used",
    Reason.kind_not_allowed: "its kind is not one the policy uses",
    Reason.not_public: "it is not public",
    Reason.after_cutoff: "it was created after the cut-off",
    Reason.content_deleted: "it was deleted by the cut-off",
    Reason.account_deleted: "the account was deleted or erasure was requested by the cut-off",
    Reason.age_unknown: "the person's age is unknown",
    Reason.minor: "the person is under the minimum age at the cut-off",
    Reason.minor_at_posting: "the person was under the minimum age when it was posted",
    Reason.no_consent: "the person's jurisdiction needs consent and there is none in force",
    Reason.objected: "the person objected and the objection is in force",
    Reason.not_notified: "the person was not told early enough before use",
    Reason.before_window: "it is older than the policy's content window",
    Reason.tagged_person: "a person tagged in it may not be used",
    Reason.third_party_objected: "someone without an account who appears in it objected",
    Reason.eligible: "it may be used",
}
