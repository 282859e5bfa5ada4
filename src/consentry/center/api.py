"""JSON API for platforms: wire objections and consents into their own settings
pages. Authenticated per platform client with a bearer key (stored hashed,
never logged)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, Field, field_validator

from ..errors import NotInForce
from ..ids import unclean
from ..ledger import Channel, EventType, NewEvent, StillInForce, StoredEvent
from ..timeutil import iso
from .api_errors import SCHEMA as _ERROR
from .api_errors import refusal
from .context import Center
from .pages import _NEEDS, center

router = APIRouter(prefix="/api/v1", tags=["people"], responses={
    401: {"description": "No valid API key", **_ERROR},
    403: {"description": "The key lacks the scope (read for GET, write for POST)", **_ERROR},
    503: {"description": "The ledger is busy (another process holds its write lock): nothing was recorded; "
                         "try again after the seconds Retry-After gives", **_ERROR},
})
bearer = HTTPBearer(auto_error=False, description="A platform client key: `Authorization: Bearer csk_...`")

def _matchable(value: str) -> str:
    if unclean(value):
        raise ValueError("begins or ends with white space or holds a control character, so it can match no id of "
                         "a valid export (ids are never trimmed)")
    return value


#: Any id a valid export may hold (CONTRACT §1: a string; `ids.unclean` says which it may not),
#: percent-encoded in the path: spaces, accents, quotes. Not '/', which no path segment
#: carries once decoded: such a person objects through `consentry object` or the pages.
USER_ID_MAX = 256
UserId = Annotated[str, Path(min_length=1, max_length=USER_ID_MAX,
                             description="The person's user_id as in the export, percent-encoded; no '/'"),
                   AfterValidator(_matchable)]


def path_is_utf8(scope: dict) -> bool:
    """Whether the path, percent-decoded, is UTF-8. Starlette decodes it with
    replacement: `%FF%FE` and `%C0%AF` were both recorded for the id "\ufffd\ufffd"."""
    from urllib.parse import unquote_to_bytes

    try:
        unquote_to_bytes(scope.get("raw_path") or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def client(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer), c: Center = Depends(center)
) -> str:
    if not path_is_utf8(request.scope):
        raise refusal(422, "invalid_request", "The path is not UTF-8 once percent-decoded: percent-encode the "
                                              "user_id's UTF-8 bytes; nothing was recorded.")
    if creds is None or creds.scheme.lower() != "bearer":
        raise refusal(401, "missing_api_key", "Missing API key", headers={"WWW-Authenticate": "Bearer"})
    # Checked on every request (one indexed lookup for the requests that came
    # together, keychecks.py): a revoked key stops at once. On the event loop:
    # the query is far shorter than a hop to the thread pool, where a thread
    # waits for the GIL behind the event loop.
    found = await c.key_checks.verify_client(creds.credentials)
    if found is None:
        raise refusal(401, "unknown_api_key", "Unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    client_id, scopes = found
    needed = "read" if request.method in ("GET", "HEAD") else "write"
    if needed not in scopes:
        raise refusal(
            403, "scope_denied",
            f"This API key may not {needed} (its scopes: {', '.join(sorted(scopes))}); "
            f"create one with `consentry admin client NAME --scope {needed}`.",
        )
    return client_id


class Note(BaseModel):
    note: str | None = Field(default=None, max_length=4000, description="Optional; an objection never needs a reason.")

    @field_validator("note", mode="before")
    @classmethod
    def _storable(cls, value: object) -> object:
        """Refuse what no database can store (NUL, unpaired surrogates, control
        characters), rather than altering what the person wrote."""
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("the note contains an unpaired surrogate; send valid UTF-8 text") from None
            if any(ord(ch) < 32 and ch not in "\n\t\r" or ord(ch) == 127 for ch in value):
                raise ValueError("the note contains control characters (such as NUL); send plain text")
        return value


class Event(BaseModel):
    seq: int
    event_id: str
    user_id: str
    type: str
    at: str = Field(description="When it took effect (UTC, ISO 8601): for an objection, its receipt")
    channel: str
    note: str | None

    @classmethod
    def of(cls, e: StoredEvent) -> Event:
        return cls(seq=e.seq, event_id=e.event_id, user_id=e.user_id, type=e.type.value, at=iso(e.at),
                   channel=e.channel.value, note=e.note)


class Status(BaseModel):
    user_id: str
    objects: bool
    consents: bool
    erasure_requested: bool
    notified: bool
    history: list[Event]


_CONFLICT = {409: {"description": "Nothing in force to withdraw", **_ERROR}}
_ALREADY = {200: {"description": "Already in force: nothing new was recorded; the event that did it", "model": Event}}


#: A retry sends the same key: the first request's event is the answer, never a second event.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")
#: What an event of these types withdraws, and the type that must be the latest of its kind.
_WITHDRAWS = {EventType.objection_withdrawn: ((EventType.objected, EventType.objection_withdrawn,
                                               EventType.objection_rejected), EventType.objected),
              EventType.consent_withdrawn: ((EventType.consent_given, EventType.consent_withdrawn), EventType.consent_given)}
#: Asked again while in force, the pages record nothing new: nor does the API.
_ONCE = (EventType.consent_given, EventType.erasure_requested)


def _key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise refusal(422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 128 printable ASCII characters, "
                                                       "without spaces; nothing was recorded.")
    return key


async def _record(c: Center, user_id: str, type_: EventType, note: str | None, client_id: str,
                  request: Request, response: Response) -> Event:
    key = _key(request)
    if type_ in _WITHDRAWS or type_ in _ONCE:
        from starlette.concurrency import run_in_threadpool

        state = await run_in_threadpool(c.ledger.state, user_id)
        needs = _NEEDS.get(type_)  # what the web refuses, the API refuses (a keyed retry finds its event below)
        if needs is not None and not needs(state) and key is None:
            raise _not_in_force(user_id, type_)
        if type_ in _ONCE and (done := c.ledger.in_force(user_id, type_, state)) is not None:
            response.status_code = 200  # nothing new: the event that did it
            return Event.of(done)
    checks = [StillInForce([k.value for k in _WITHDRAWS[type_][0]], _WITHDRAWS[type_][1].value)] \
        if type_ in _WITHDRAWS else []
    try:
        stored = await c.committer.arecord(new_event(user_id, type_, note, client_id, key), mails=checks)
    except NotInForce:
        raise _not_in_force(user_id, type_) from None
    if key is not None and (stored.user_id != user_id or stored.type != type_ or stored.note != note):
        raise refusal(422, "idempotency_key_reused", "This Idempotency-Key was sent before with another request "
                                                      f"(event #{stored.seq}); nothing was recorded: use a new key.")
    return Event.of(stored)


def _not_in_force(user_id: str, type_: EventType) -> Exception:
    what = "objection" if type_ == EventType.objection_withdrawn else "consent"
    return refusal(409, "not_in_force", f"{user_id} has no {what} in force to withdraw; nothing was recorded.")


def new_event(user_id: str, type_: EventType | str, note: str | None, client_id: str, key: str | None = None) -> NewEvent:
    """The event a request of API client `client_id` records, received now
    (also by `fastpath`, the objection's common case). With an Idempotency-Key
    its id is the client's and the key's, so a retry finds the first one."""
    return NewEvent(user_id=user_id, type=EventType(type_), at=datetime.now(UTC), channel=Channel.api, note=note,
                    actor=f"client:{client_id}", event_id=f"api:{client_id}:{key}" if key is not None else None)


@router.post("/people/{user_id}/objection", status_code=201, response_model=Event)
async def object_(user_id: UserId, request: Request, response: Response, body: Note | None = None,
                  c: Center = Depends(center), cid: str = Depends(client)) -> Event:
    """Record an objection. It is in force from the returned `at`, for every cut-off after it, wherever the policy
    in use honours objections (under `meta-2024`, in Europe only)."""
    return await _record(c, user_id, EventType.objected, body.note if body else None, cid, request, response)


@router.post("/people/{user_id}/objection/withdrawal", status_code=201, response_model=Event, responses=_CONFLICT)
async def withdraw(user_id: UserId, request: Request, response: Response, body: Note | None = None,
                 c: Center = Depends(center), cid: str = Depends(client)) -> Event:
    return await _record(c, user_id, EventType.objection_withdrawn, body.note if body else None, cid, request, response)


@router.post("/people/{user_id}/consent", status_code=201, response_model=Event, responses=_ALREADY)
async def consent(user_id: UserId, request: Request, response: Response, body: Note | None = None,
                 c: Center = Depends(center), cid: str = Depends(client)) -> Event:
    return await _record(c, user_id, EventType.consent_given, body.note if body else None, cid, request, response)


@router.post("/people/{user_id}/consent/withdrawal", status_code=201, response_model=Event, responses=_CONFLICT)
async def consent_withdraw(user_id: UserId, request: Request, response: Response, body: Note | None = None,
                 c: Center = Depends(center), cid: str = Depends(client)) -> Event:
    return await _record(c, user_id, EventType.consent_withdrawn, body.note if body else None, cid, request, response)


@router.post("/people/{user_id}/erasure", status_code=201, response_model=Event, responses=_ALREADY)
async def erasure(user_id: UserId, request: Request, response: Response, body: Note | None = None,
                 c: Center = Depends(center), cid: str = Depends(client)) -> Event:
    return await _record(c, user_id, EventType.erasure_requested, body.note if body else None, cid, request, response)


@router.get("/people/{user_id}", response_model=Status)
def status(user_id: UserId, c: Center = Depends(center), cid: str = Depends(client)) -> Status:
    state = c.ledger.state(user_id)
    history = [Event.of(e) for e in c.ledger.history(user_id)]
    return Status(
        user_id=user_id,
        objects=bool(state and state.objects),
        consents=bool(state and state.consents),
        erasure_requested=bool(state and state.erasure_us is not None),
        notified=bool(state and state.first_notified_us is not None),
        history=history,
    )


@router.get("/people/{user_id}/receipts")
def receipts(user_id: UserId, c: Center = Depends(center), cid: str = Depends(client)) -> list[dict]:
    """Signed purge receipts for this person: the snapshot versions that held
    their rows, the version that removed them, when the bytes were vacuumed and
    the purge's audit record. Check one with `consentry audit verify-receipt`."""
    docs = c.receipts(user_id)
    if docs is None:
        raise refusal(404, "receipts_disabled", "This privacy center does not issue receipts (no --receipt-key).")
    return docs
