"""Ledger events (CONTRACT §2): what a person said or was told, and when."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import EventError, InputError
from ..ids import unclean
from ..timeutil import iso, parse_instant


class EventType(StrEnum):
    notified = "notified"
    objected = "objected"
    objection_withdrawn = "objection_withdrawn"
    objection_rejected = "objection_rejected"
    consent_given = "consent_given"
    consent_withdrawn = "consent_withdrawn"
    erasure_requested = "erasure_requested"
    third_party_objected = "third_party_objected"
    third_party_dismissed = "third_party_dismissed"


class Channel(StrEnum):
    web = "web"
    email = "email"
    in_app = "in_app"
    api = "api"
    cli = "cli"
    import_ = "import"


OBJECTION_TYPES = (EventType.objected, EventType.objection_withdrawn, EventType.objection_rejected)
CONSENT_TYPES = (EventType.consent_given, EventType.consent_withdrawn)
#: About an item, by someone without an account (CONTRACT §2, rule 15): no user_id.
THIRD_PARTY_TYPES = (EventType.third_party_objected, EventType.third_party_dismissed)


class NewEvent(BaseModel):
    """An event as it arrives, before the ledger gives it a sequence number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str | None = Field(default=None, min_length=1, max_length=128)
    user_id: str | None = Field(default=None, min_length=1, max_length=256)
    item_id: str | None = Field(default=None, min_length=1, max_length=256)
    type: EventType
    at: datetime
    #: How it came in. Built in code without one: `api`; a `ledger import` line without one: `import`.
    channel: Channel = Channel.api
    note: str | None = Field(default=None, max_length=10_000)
    actor: str | None = Field(default=None, max_length=256)
    #: Set by `ledger import`: the file the event came from (CONTRACT §2).
    imported_from: str | None = Field(default=None, max_length=4096)

    def __init__(self, /, **data: Any) -> None:
        """From keywords, as users' code builds one: a bad field raises an
        EventError naming it (a ConsentryError, as every bad input), not
        pydantic's ValidationError. (`model_validate` comes here too, since
        pydantic calls a model's own `__init__`; it unwraps the EventError.)"""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _event_error(exc, type(self).__name__) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """As `NewEvent(**obj)`: an EventError, not pydantic's ValidationError
        (which wrapped the EventError `__init__` raised, or said that `obj`
        is not a mapping)."""
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise _unwrapped(exc, cls.__name__) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except ValidationError as exc:
            raise _unwrapped(exc, cls.__name__) from None

    @model_validator(mode="before")
    @classmethod
    def _channel_of_an_import(cls, data: Any) -> Any:
        """A line of `ledger import` that names no channel is marked `import`;
        an event built in code without one is `api` (consentry's programming
        interface, the field's default): it was recorded live, and `import`
        left a live objection out of the DPO report's times (CONTRACT §2)."""
        if isinstance(data, dict) and "channel" not in data and data.get("imported_from") is not None:
            return {**data, "channel": Channel.import_}
        return data

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: object) -> datetime:
        if not isinstance(value, (str, datetime)):
            raise ValueError("must be an ISO 8601 timestamp such as 2024-06-26T00:00:00Z")
        try:
            return parse_instant(value)
        except InputError as exc:
            if "finer than a microsecond" in exc.problem:  # ISO 8601 indeed, but a time the ledger would move
                raise ValueError(exc.problem) from None
            raise ValueError(f"'{value}' is not an ISO 8601 timestamp such as 2024-06-26T00:00:00Z") from None
        except Exception:
            raise ValueError(f"'{value}' is not an ISO 8601 timestamp such as 2024-06-26T00:00:00Z") from None

    @field_validator("at")
    @classmethod
    def _not_ahead(cls, value: datetime) -> datetime:
        """A new event is recorded once it has taken effect (CONTRACT §2: `at` is
        when it did). One dated later stood in force, by ledger order, over what
        the person said before that time: an objection made now was turned away
        as already recorded, while decisions at now did not count either."""
        now = datetime.now(UTC)
        if cls is NewEvent and value > now:
            raise ValueError(f"{iso(value)} is in the future (it is now {iso(now)}): an event is recorded once it has "
                             "taken effect; check the time, and the clock of the system that wrote it")
        return value

    @field_validator("event_id", "user_id", "item_id", "actor")
    @classmethod
    def _storable_id(cls, value: str | None) -> str | None:
        """Ids are never changed behind anyone's back: refuse what a database
        cannot store (PostgreSQL refuses NUL in text; neither takes an unpaired
        surrogate) instead of quietly altering it."""
        if value is not None:
            if "\x00" in value:
                raise ValueError("contains a NUL character (\\u0000), which cannot be stored")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("is not valid Unicode (an unpaired surrogate such as \\ud800)") from None
        return value

    @field_validator("user_id", "item_id")
    @classmethod
    def _matchable_id(cls, value: str | None) -> str | None:
        """A new event's person or item must be able to match the export's ids,
        which validation refuses with white space at either end or a control
        character: " u42" would be recorded and never protect u42. Events
        already stored (`StoredEvent`) are read as they are."""
        if cls is NewEvent and value is not None and unclean(value):
            raise ValueError(f"{value!r} begins or ends with white space or holds a control character, so it can "
                             "match no id of a valid export (ids are never trimmed)")
        return value

    @field_validator("note", mode="before")
    @classmethod
    def _note(cls, value: object) -> str | None:
        """Free text from anyone: keep it storable everywhere. NUL bytes (which
        PostgreSQL refuses) and other control characters go; unpaired
        surrogates become "?"."""
        if value is None or not isinstance(value, str):
            return value  # type: ignore[return-value]  (pydantic reports a non-string)
        value = value.encode("utf-8", "replace").decode("utf-8")
        value = "".join(ch for ch in value if ch in "\n\t" or not (ord(ch) < 32 or ord(ch) == 127))
        return value.strip() or None

    @model_validator(mode="after")
    def _well_formed(self) -> NewEvent:
        if self.type in THIRD_PARTY_TYPES:
            if self.user_id is not None:
                raise ValueError(
                    f"a {self.type.value} event is about someone without an account: "
                    "give item_id and leave user_id out"
                )
            if self.item_id is None:
                raise ValueError(f"a {self.type.value} event needs the item_id of the item it concerns")
        else:
            if self.user_id is None:
                raise ValueError(f"user_id is required for {self.type.value} events")
            if self.item_id is not None:
                raise ValueError(
                    "item_id is only for third_party_objected and third_party_dismissed events"
                )
        if self.type is EventType.objection_rejected and not self.note:
            raise ValueError(
                "an objection_rejected event needs a note giving the compelling grounds "
                "(the person is shown it and may contest it)"
            )
        if self.type is EventType.third_party_dismissed and not self.note:
            raise ValueError(
                "a third_party_dismissed event needs a note giving the grounds "
                "(the requester is shown it)"
            )
        return self

    @property
    def subject(self) -> str:
        """Whom or what the event is about: the person, or the item for third-party events."""
        return self.user_id if self.user_id is not None else f"item:{self.item_id}"

    def content_id(self) -> str:
        """A deterministic id for events imported without one, so re-importing
        the same file is still idempotent."""
        fields: list = [self.user_id, self.type.value, iso(self.at), self.channel.value, self.note]
        if self.item_id is not None:  # only then: ids of person events stay what they were
            fields.append(self.item_id)
        body = json.dumps(fields, separators=(",", ":"))
        return "h-" + hashlib.sha256(body.encode()).hexdigest()[:32]

    def with_id(self) -> NewEvent:
        return self if self.event_id else self.model_copy(update={"event_id": self.content_id()})


def _event_error(exc: ValidationError, where: str) -> EventError:
    said = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'the event'}: {e['msg'].removeprefix('Value error, ')}"
                     + (f" (got {e['input']!r})" if e["type"] in ("enum", "literal_error") else "")
                     for e in exc.errors())
    return EventError(f"not a valid event: {said}", exc.errors(), where=where,
                      fix="see CONTRACT §2 for each field and its values")


def _unwrapped(exc: ValidationError, where: str) -> EventError:
    """The EventError `NewEvent.__init__` raised inside pydantic's validation
    (which wraps it, a ValueError, in a ValidationError), else one made of `exc`."""
    errors = exc.errors()
    inner = errors[0].get("ctx", {}).get("error") if len(errors) == 1 else None
    return inner if isinstance(inner, EventError) else _event_error(exc, where)


_HOW = "NewEvent(user_id=..., type=..., at=..., channel=...)"


def one_event(event: object, what: str = "Ledger.record") -> NewEvent:
    """`event`, if it is one NewEvent; else an EventError saying what was
    passed and what is expected (a dict ended in AttributeError: 'dict'
    object has no attribute 'with_id')."""
    if isinstance(event, NewEvent):
        return event
    if isinstance(event, dict):
        fix = f"make it a NewEvent first: NewEvent(**that_dict), or {_HOW}"
    elif isinstance(event, (list, tuple)):
        fix = "for several events use Ledger.append(events)"
    else:
        fix = f"build it with {_HOW}"
    raise EventError(f"{what} takes one NewEvent, got {_a(event)}", [], fix=fix)


def some_events(events: Iterable[NewEvent], what: str = "Ledger.append") -> list[NewEvent]:
    """`events` as a list, if it is an iterable of NewEvent; else an EventError
    saying what was passed and what is expected (one NewEvent was iterated as
    its fields, and ended in AttributeError)."""
    if isinstance(events, NewEvent):
        raise EventError(f"{what} takes an iterable of NewEvent (a list), got one NewEvent", [],
                         fix="pass [event], or use Ledger.record(event)")
    if isinstance(events, (str, bytes, dict)) or not isinstance(events, Iterable):
        raise EventError(f"{what} takes an iterable of NewEvent (a list), got {_a(events)}", [],
                         fix=f"pass a list of events, each built with {_HOW}")
    batch = list(events)
    for i, e in enumerate(batch, 1):
        if not isinstance(e, NewEvent):
            raise EventError(f"{what} takes an iterable of NewEvent: item {i} is {_a(e)}; nothing was recorded", [],
                             fix=f"build each event with {_HOW}" + (
                                 " (a dict: NewEvent(**that_dict))" if isinstance(e, dict) else ""))
    return batch


def _a(value: object) -> str:
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}" + (f" ({value!r})" if isinstance(value, (str, int)) else "")


class StoredEvent(NewEvent):
    """An event in the ledger: `seq` is its place in ledger order."""

    seq: int
    event_id: str
    recorded_at: datetime

    def as_json(self) -> dict:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "user_id": self.user_id,
            "item_id": self.item_id,
            "type": self.type.value,
            "at": iso(self.at),
            "channel": self.channel.value,
            "note": self.note,
            "actor": self.actor,
            "imported_from": self.imported_from,
            "recorded_at": iso(self.recorded_at),
        }
