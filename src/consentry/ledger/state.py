"""Fold events into where a person stands. Order is (at, seq): ties at the same
instant go by ledger order, as CONTRACT §3 says."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from .events import CONSENT_TYPES, OBJECTION_TYPES, EventType


@dataclass(frozen=True)
class PersonState:
    user_id: str
    objection: str | None = None
    objection_us: int | None = None
    consent: str | None = None
    consent_us: int | None = None
    erasure_us: int | None = None
    first_notified_us: int | None = None
    last_notified_us: int | None = None
    last_seq: int = 0

    @property
    def objects(self) -> bool:
        return self.objection == EventType.objected

    @property
    def consents(self) -> bool:
        return self.consent == EventType.consent_given

    def apply(self, type_: str, at_us: int, seq: int) -> PersonState:
        """The state after one more event; `seq` must exceed every seq folded so far."""
        s = replace(self, last_seq=max(self.last_seq, seq))
        if type_ in OBJECTION_TYPES and (s.objection_us is None or at_us >= s.objection_us):
            s = replace(s, objection=type_, objection_us=at_us)
        elif type_ in CONSENT_TYPES and (s.consent_us is None or at_us >= s.consent_us):
            s = replace(s, consent=type_, consent_us=at_us)
        elif type_ == EventType.erasure_requested:
            s = replace(s, erasure_us=at_us if s.erasure_us is None else min(s.erasure_us, at_us))
        elif type_ == EventType.notified:
            s = replace(
                s,
                first_notified_us=at_us if s.first_notified_us is None else min(s.first_notified_us, at_us),
                last_notified_us=at_us if s.last_notified_us is None else max(s.last_notified_us, at_us),
            )
        return s


def action_id(user_id: str, type_: str, state: PersonState | None) -> str:
    """The event id of a person's action taken on a given state of theirs. A
    double press, a reopened link or two racing requests see the same state,
    so they make the same id, and the ledger keeps one event per id: once
    means once. Any later event of theirs moves the state on, so a real new
    action gets a new id."""
    version = state.last_seq if state else 0
    return "act-" + hashlib.sha256(f"{user_id}\x00{type_}\x00{version}".encode()).hexdigest()[:32]
