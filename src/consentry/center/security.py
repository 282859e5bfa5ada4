"""What every request passes: CSRF tokens, the headers every response carries,
server-side sessions, the body limit, text no database can store, and the
client address rate limits count."""

from __future__ import annotations

import functools
import hmac
import ipaddress
import json
import secrets

from fastapi import HTTPException, Request

from ..access import Session, Sessions
from . import api_errors

CSRF_KEY = "csrf"
COOKIE = "consentry_session"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Sign-in links carry a token in the URL: never send it on as a referrer.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_KEY] = token
    return token


async def require_csrf(request: Request) -> None:
    """Refuse a form whose token is missing or not this session's."""
    form = await request.form()
    sent = form.get(CSRF_KEY)
    expected = request.session.get(CSRF_KEY)
    # As bytes: compare_digest refuses str with non-ASCII characters (a 500 for a token of "é").
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), expected.encode()):
        # A msgid: the error page shows it in the page's language (scripts/extract_messages.py lists it).
        raise HTTPException(status_code=403, detail="This form has expired or did not come from this site. Reload the page and try again.")


HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


# -- the client's address ------------------------------------------------------------------


def client_ip(request: Request) -> str:
    """The address rate limits count. X-Forwarded-For is believed only from a
    trusted proxy (`serve --trusted-proxy`, none by default), read from the right:
    the first hop that is not itself a trusted proxy is the client. An IPv6
    client counts as its /64 (`counted`)."""
    peer = request.client.host if request.client else "unknown"
    center = getattr(request.app.state, "center", None)
    trusted = _networks(tuple(center.settings.trusted_proxies)) if center is not None else ()
    if not trusted or not _is_trusted(peer, trusted):
        return counted(peer)
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return counted(peer)  # a forged or garbled header: count the proxy, not a made-up name
        if not _is_trusted(hop, trusted):
            return counted(hop)
    return counted(hops[0] if hops else peer)


#: An IPv6 client is counted by its network of this many bits: one line or one server holds a whole
#: /64 (2^64 addresses), so counting each address gave a /64 as many allowances as it has addresses.
IPV6_PREFIX = 64


def counted(host: str) -> str:
    """`host` as rate limits count it: an IPv4 address as itself (an IPv4-mapped IPv6 address too),
    an IPv6 address as its /64."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # a zone index (fe80::1%eth0) names no other client
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


@functools.lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _is_trusted(host: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in n for n in networks)


# -- input no database can store -------------------------------------------------------------------


def _unstorable(value: str) -> bool:
    # PostgreSQL refuses NUL in text; unpaired surrogates cannot be encoded at all.
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


async def refuse_invalid_text(request: Request) -> None:
    """Every page route: a NUL byte (or other text no database stores) in the
    path, the query or a form field is a clear 400, never a 500 from the
    database. The JSON API validates its own input (422, documented)."""
    if request.url.path.startswith("/api/"):
        return
    values = [*request.path_params.values(), *(x for kv in request.query_params.multi_items() for x in kv)]
    ctype = request.headers.get("content-type", "")
    if request.method == "POST" and ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        values += [x for k, v in form.multi_items() for x in (k, v) if isinstance(x, str)]
    if any(isinstance(v, str) and _unstorable(v) for v in values):
        raise HTTPException(
            status_code=400,
            detail="The request contains a NUL byte or other characters that are not text. Remove them and try again.",
        )


# -- request bodies ----------------------------------------------------------------------------


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        self.limit = limit  # the page says it in the reader's language (app.py)
        super().__init__(status_code=413, detail=f"The request is too large (at most {limit:,} bytes).")


class BodyLimit:
    """Refuse a request body over `limit` bytes before anything parses it: by
    Content-Length at once, and by counting what arrives (chunked uploads)."""

    def __init__(self, app, limit: int) -> None:  # noqa: ANN001
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.limit
            except ValueError:
                too_big = True  # not a number: not a request we can trust to parse
            if too_big:
                await self._refuse(scope, receive, send)
                return
        seen = 0

        async def counting_receive():  # noqa: ANN202
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)  # a 413 from the app's HTTPException handler
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, scope, receive, send) -> None:  # noqa: ANN001
        from starlette.responses import JSONResponse, PlainTextResponse

        detail = BodyTooLarge(self.limit).detail
        if scope.get("path", "").startswith("/api/"):
            response = JSONResponse(api_errors.body("body_too_large", detail), status_code=413)
        else:
            response = PlainTextResponse(detail, status_code=413)
        response.headers["Connection"] = "close"  # the unread body must not be taken for the next request
        await response(scope, receive, send)


# -- server-side sessions ---------------------------------------------------------------------------


class ServerSessions:
    """`request.session` as before (a dict), kept in the database
    (access/sessions.py); the cookie carries only a random id.

    The id changes whenever who is signed in changes (sign-in, admin log-in):
    no session fixation. An emptied session (sign-out) is deleted, and the
    cookie with it. Database work runs in the thread pool, and only for
    requests that carry a cookie or change their session.

    A visitor nobody is signed in as (a CSRF token, a chosen language) gets no
    row: their few keys travel in a signed cookie (`visitor`), so that page
    views by the anonymous many neither write to the ledger's database (a
    busy ledger held up the home page) nor fill the sessions table."""

    def __init__(self, app, sessions: Sessions, *, secure: bool, secret: str, cookie: str = COOKIE) -> None:  # noqa: ANN001
        from itsdangerous import URLSafeTimedSerializer

        self.app = app
        self.sessions = sessions
        self.cookie = cookie
        self.attrs = f"Path=/; HttpOnly; SameSite=Lax{'; Secure' if secure else ''}"
        self.max_age = sessions.lifetimes.absolute_s
        self.visitor = URLSafeTimedSerializer(secret, salt="consentry.visitor-session")

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool
        from starlette.datastructures import MutableHeaders
        from starlette.requests import HTTPConnection

        sent = HTTPConnection(scope).cookies.get(self.cookie)
        visitor = self._visitor(sent) if sent and "." in sent else None  # a server id never holds a '.'
        loaded = await run_in_threadpool(self.sessions.load, sent) if sent and "." not in sent else None
        original = json.loads(json.dumps(loaded.data)) if loaded else visitor or {}
        scope["session"] = dict(original)

        async def send_with_cookie(message) -> None:  # noqa: ANN001
            # No cookie came and none is needed (the API, static files): no database
            # work and no hop to the thread pool, which costs the API a third of its rate.
            if message["type"] == "http.response.start" and (sent or scope["session"]):
                now = scope["session"]
                if loaded is None and now and _who(now) == (None, None):
                    cookie = None if now == original and visitor is not None else self._visitor_cookie(now)
                else:
                    cookie = await run_in_threadpool(self._commit, sent, loaded, original, now)
                if cookie:
                    MutableHeaders(scope=message).append("Set-Cookie", cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _visitor(self, sent: str) -> dict | None:
        """A visitor's keys from their signed cookie; None if forged, altered or older than a session may live."""
        from itsdangerous import BadSignature

        try:
            data = self.visitor.loads(sent, max_age=self.max_age)
        except BadSignature:  # SignatureExpired among them
            return None
        return data if isinstance(data, dict) and _who(data) == (None, None) else None

    def _visitor_cookie(self, data: dict) -> str:
        return f"{self.cookie}={self.visitor.dumps(data)}; Max-Age={self.max_age}; {self.attrs}"

    def _commit(self, sent: str | None, loaded: Session | None, original: dict, now: dict) -> str | None:
        """Write what changed; the Set-Cookie header to send, if any."""
        if not now:
            if loaded is not None:
                self.sessions.delete(loaded.sid)
            return self._expire() if sent else None
        if loaded is not None and _who(now) == _who(original):
            if now != original and not self.sessions.save(loaded.sid, now):
                return self._expire()  # ended meanwhile (signed out elsewhere): never bring it back
            return None
        if loaded is not None:
            self.sessions.delete(loaded.sid)
        sid = self.sessions.create(now)
        return f"{self.cookie}={sid}; Max-Age={self.max_age}; {self.attrs}"

    def _expire(self) -> str:
        return f'{self.cookie}=""; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; {self.attrs}'


def _who(data: dict) -> tuple[object, object]:
    """Who a session is signed in as: (person, administrator)."""
    return data.get("user_id"), data.get("admin")
