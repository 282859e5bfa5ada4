"""The objection API's common case as plain ASGI.

`POST /api/v1/people/{user_id}/objection` with a valid write key and an empty
or `{"note": ...}` JSON body is recorded here: the same event, the same wait
for its commit, the same 201 body as the FastAPI route (`api.object_`). What
it skips is FastAPI's routing and dependency solving, about two thirds of the
CPU such a request took, which capped intake (benchmarks/README.md,
objection_intake.py).

Anything else goes on, unchanged, to the FastAPI route: an unknown or revoked
key, a key without the write scope, an id the route would refuse, another
content type, a body that does not validate, a body too large or still
arriving. The body read so far is replayed to it, so every error a caller
sees is the documented endpoint's own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from ..ids import unclean
from .api import USER_ID_MAX, Event, Note, new_event, path_is_utf8
from .context import Center

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TEMPLATE = "/api/v1/people/{user_id}/objection"
#: `api.UserId`'s pattern and length, for the id in the path.
_PATH = re.compile(rf"/api/v1/people/([^/]{{1,{USER_ID_MAX}}})/objection")
#: A larger body (a note is at most 4,000 characters) is left to the route.
_MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class _Route:
    """What the metrics middleware reads of `scope["route"]`: its template."""

    path: str


_ROUTE = _Route(TEMPLATE)


class ObjectionFastPath:
    """Plain ASGI middleware; `center` is the app's Center (its committer is
    read per request, so the metrics' counting wrapper is used)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], center: Center) -> None:
        self.app = app
        self.center = center

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user_id = _user_id(scope)
        if user_id is None:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        key = _bearer(headers.get(b"authorization"))
        ctype = headers.get(b"content-type")
        if key is None or not (ctype is None or _is_json(ctype)) or b"idempotency-key" in headers:  # keyed: the route
            await self.app(scope, receive, send)
            return
        body, read, error = await _read_body(receive)
        # A body is read as JSON only when it says it is (FastAPI reads one without a type as no JSON).
        note = _note(body) if body is not None and (not body or ctype is not None) else _REFUSED
        client = await self.center.key_checks.verify_client(key) if note is not _REFUSED else None
        if client is None or "write" not in client[1]:
            await self.app(scope, _replaying(read, error, receive), send)
            return
        scope["route"] = _ROUTE  # before the commit, which can find the ledger busy (busy.py logs the route)
        stored = await self.center.committer.arecord(new_event(user_id, "objected", note, client[0]))
        await JSONResponse(Event.of(stored).model_dump(mode="json"), status_code=201)(scope, receive, send)


_REFUSED = object()


def _user_id(scope: Scope) -> str | None:
    if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("root_path"):
        return None
    m = _PATH.fullmatch(scope.get("path", ""))
    return m.group(1) if m and not unclean(m.group(1)) and path_is_utf8(scope) else None


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name; a repeated one is left to the route."""
    out: dict[bytes, bytes] = {}
    for name, value in scope.get("headers") or ():
        out[name.lower()] = b"" if name.lower() in out else value
    return out


def _bearer(value: bytes | None) -> str | None:
    """The key of `Authorization: Bearer <key>`, as HTTPBearer reads it."""
    if not value:
        return None
    scheme, _, key = value.decode("latin-1").partition(" ")
    return key if scheme.lower() == "bearer" and key and " " not in key else None


def _is_json(value: bytes) -> bool:
    """`application/json`, with parameters or not (FastAPI also parses
    `application/*+json` as JSON; those are left to it)."""
    return value.split(b";", 1)[0].strip().lower() == b"application/json"


async def _read_body(receive: Receive) -> tuple[bytes | None, list[Message], BaseException | None]:
    """(the whole body, or None if it was not read to its end; the messages
    received; the exception receiving raised, if any)."""
    read: list[Message] = []
    size = 0
    try:
        while True:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":
                return None, read, None
            size += len(message.get("body", b""))
            if size > _MAX_BODY:
                return None, read, None
            if not message.get("more_body", False):
                return b"".join(m.get("body", b"") for m in read), read, None
    except Exception as exc:  # noqa: BLE001 - the route gets the same exception at the same point
        return None, read, exc


def _note(body: bytes) -> object:
    """The note of a body the route takes as it is: empty (no note) or a JSON
    object that validates as `api.Note`. Parsed as Starlette's `request.json()`
    parses it; `_REFUSED` for anything else, which the route answers."""
    if not body:
        return None
    try:
        data = json.loads(body)
        return Note.model_validate(data).note if isinstance(data, dict) else _REFUSED
    except (ValueError, RecursionError):  # JSON or validation error (pydantic's is a ValueError); nested too deep
        return _REFUSED


def _replaying(read: list[Message], error: BaseException | None, receive: Receive) -> Receive:
    """A receive that gives back what was read, then raises what receiving
    raised (if it did), then goes on receiving."""
    pending = list(read)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        if error is not None:
            raise error
        return await receive()

    return replay
