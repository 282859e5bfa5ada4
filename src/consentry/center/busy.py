"""A busy ledger: another process holds its write lock (an import, a backup,
someone's `sqlite3` shell). A write then waits (SQLite's busy timeout, the
group commit's wait, PostgreSQL's lock_timeout: 30 s each) and gives up.

The center answers that as what it is: a 503 with Retry-After that says
nothing was recorded (the API's JSON error body; a page in the person's
language), and one log line naming the route, not a traceback and a bare
"Internal Server Error". "Nothing was recorded" must then be true, also of an
event still waiting in the group commit when its request gives up: `Patient`
queues it with a `_Claim` that vetoes its commit once the request has given up.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from sqlalchemy.exc import OperationalError
from starlette.responses import JSONResponse

from ..errors import LedgerError
from . import api_errors

log = logging.getLogger("consentry.center")

#: What Retry-After says: the writer that holds the ledger may well take longer.
RETRY_AFTER_S = 60
#: The API's words, in English as its other errors are (the pages' are translated: `_page`).
API_DETAIL = "The ledger is busy (another process holds its write lock): nothing was recorded. Try again later."


class _Busy(Exception):
    """A request gave up waiting for its event's commit; the event was not, and will not be, committed."""


class _Abandoned(Exception):
    """Raised in the group commit's transaction for an event whose request gave up: it rolls back."""


def is_busy(exc: BaseException) -> bool:
    """Whether `exc` says the ledger's write lock could not be had in time."""
    if isinstance(exc, _Busy):
        return True
    if isinstance(exc, LedgerError):
        return str(exc).startswith("the ledger is busy")
    if isinstance(exc, OperationalError):
        orig = exc.orig
        if isinstance(orig, sqlite3.OperationalError):
            code = getattr(orig, "sqlite_errorcode", None)
            return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) if code is not None \
                else "database is locked" in str(orig)
        return getattr(orig, "sqlstate", None) == "55P03"  # PostgreSQL: lock_not_available
    return False


class _Claim:
    """Queued first among an event's mails, so the group commit runs it in the
    event's transaction, before the commit: after its request gave up it
    raises, and the event is rolled back (the committer then retries the
    others alone). Once it has passed, the commit is under way, and the
    request waits for its outcome rather than say something untrue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "waiting"

    def enqueue(self, conn: Any, event: Any) -> None:
        with self._lock:
            if self._state == "abandoned":
                raise _Abandoned(event.event_id)
            self._state = "committing"

    def abandon(self) -> bool:
        """True: the event will never be committed. False: its commit is under way."""
        with self._lock:
            if self._state == "committing":
                return False
            self._state = "abandoned"
            return True


class Patient:
    """The center's committer, waiting at most `timeout` for a commit to start.
    Anything else is passed to the committer it wraps."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def _submit(self, event: Any, mails: Sequence[Any]) -> tuple[Future, _Claim]:
        claim = _Claim()
        return self._inner.submit(event, mails=[claim, *mails]), claim

    def record(self, event: Any, timeout: float = 30.0, *, mails: Sequence[Any] = ()) -> Any:
        future, claim = self._submit(event, mails)
        try:
            return future.result(timeout)
        except FutureTimeout:
            if claim.abandon():
                raise _Busy() from None
            return future.result()

    async def arecord(self, event: Any, timeout: float = 30.0, *, mails: Sequence[Any] = ()) -> Any:
        future, claim = self._submit(event, mails)
        try:  # shielded: a cancelled future would not stop the committer, only hide its outcome
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except TimeoutError:
            if claim.abandon():
                raise _Busy() from None
            return await asyncio.wrap_future(future)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class BusyLedger:
    """Plain ASGI middleware, outside the server-side sessions (whose writes
    can find the ledger busy too) and inside the error middleware (which would
    log a traceback): a busy ledger is a 503."""

    def __init__(self, app: Any, center: Any) -> None:
        self.app = app
        self.center = center

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching)
        except Exception as exc:
            if started or not is_busy(exc):
                raise
            log.warning("%s %s: the ledger is busy (%s); answered 503, nothing was recorded",
                        scope.get("method"), _route(scope), _why(exc))
            await self._answer(scope, receive, send)

    async def _answer(self, scope: dict, receive: Any, send: Any) -> None:
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        if scope.get("path", "").startswith("/api/"):
            response: Any = JSONResponse(api_errors.body("ledger_busy", API_DETAIL), status_code=503, headers=headers)
        else:
            from starlette.concurrency import run_in_threadpool
            from starlette.requests import Request

            scope.setdefault("session", {})  # the session could not be read or written: the page needs none
            request = Request(scope, receive)
            response = await run_in_threadpool(self._page, request)
            response.headers.update(headers)
        await response(scope, receive, send)

    def _page(self, request: Any) -> Any:
        c = self.center
        try:
            person = c.signed_in(request)
        except Exception:  # noqa: BLE001 - the export unreadable as well: the browser's language will do
            person = None
        _ = c.gettext(c.lang(request, person))
        message = _("The privacy center is busy right now and could not do this. Nothing you sent was recorded: "
                    "please try again in a minute.")
        return c.render(request, "error.html", {"message": message}, status=503, person=person)


def _route(scope: dict) -> str:
    """The route's template (`/api/v1/people/{user_id}/objection`), never the
    path itself, which can hold a sign-in token or a person's id: before
    routing (a session being read), only the path's first part."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "?"))
    head, _, rest = scope.get("path", "").lstrip("/").partition("/")
    return f"/{head}/…" if rest else f"/{head}"


def _why(exc: BaseException) -> str:
    if isinstance(exc, _Busy):
        return "its write lock was not free within 30 s"
    if isinstance(exc, LedgerError):
        return "PostgreSQL's lock_timeout"
    return "SQLite: database is locked" if isinstance(getattr(exc, "orig", None), sqlite3.OperationalError) \
        else "PostgreSQL: lock_not_available"
