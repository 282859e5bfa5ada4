"""The ledger (CONTRACT §2): everything a person said or was told, append-only."""

from .committer import AnswersObjection, GroupCommitter, StillInForce, objections_in_force
from .events import (
    CONSENT_TYPES,
    OBJECTION_TYPES,
    THIRD_PARTY_TYPES,
    Channel,
    EventType,
    NewEvent,
    StoredEvent,
)
from .prepared import Prepared
from .state import PersonState, action_id
from .store import ImportResult, Ledger, redact_url

__all__ = [
    "AnswersObjection",
    "CONSENT_TYPES",
    "OBJECTION_TYPES",
    "THIRD_PARTY_TYPES",
    "Channel",
    "EventType",
    "GroupCommitter",
    "ImportResult",
    "Ledger",
    "NewEvent",
    "PersonState",
    "Prepared",
    "StillInForce",
    "StoredEvent",
    "action_id",
    "objections_in_force",
    "redact_url",
]
