"""The privacy center: a thin FastAPI face over the library."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..access import Lifetimes, Sessions
from ..people import Person
from . import admin, api, api_errors, pages
from .busy import BusyLedger, Patient
from .context import Center
from .fastpath import ObjectionFastPath
from .metrics import install_metrics
from .security import HSTS, SECURITY_HEADERS, BodyLimit, BodyTooLarge, ServerSessions, refuse_invalid_text
from .settings import CenterSettings


class SecurityHeaders:
    """Plain ASGI middleware (Starlette's BaseHTTPMiddleware costs a task per request)."""

    def __init__(self, app, *, hsts: bool = False) -> None:  # noqa: ANN001
        self.app = app
        headers = dict(SECURITY_HEADERS, **dict([HSTS] if hsts else []))
        self.extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self.extra if k not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _CenterApp(FastAPI):
    def build_middleware_stack(self):  # noqa: ANN202
        """The headers and the body limit go outside Starlette's error handler,
        so that its 500s, and 413s, carry the headers too."""
        settings = self.state.center.settings
        return SecurityHeaders(BodyLimit(super().build_middleware_stack(), settings.max_body_bytes),
                               hsts=settings.secure_cookies)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """At shutdown the center stops its mail sender (the pass under way ends first), off the event loop."""
    yield
    await run_in_threadpool(app.state.center.close)


def create_app(settings: CenterSettings) -> FastAPI:
    c = Center.build(settings)
    app = _CenterApp(
        lifespan=_lifespan,
        dependencies=[Depends(refuse_invalid_text)],
        title="consentry privacy center API",
        version="1",
        description="Record objections, consents and erasure requests for a platform's users.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served below, from this server, under the site's CSP
        redoc_url=None,
    )
    app.state.center = c
    app.state.sessions = Sessions(c.ledger.engine, Lifetimes(
        idle_s=settings.session_idle_s, absolute_s=settings.session_absolute_s,
        admin_idle_s=settings.admin_session_idle_s, admin_absolute_s=settings.admin_session_absolute_s,
    ))
    # Innermost: an objection's common case skips FastAPI's routing, not the headers, limits or metrics.
    app.add_middleware(ObjectionFastPath, center=c)
    app.add_middleware(ServerSessions, sessions=app.state.sessions, secure=settings.secure_cookies,
                       secret=settings.secret_key.get_secret_value())
    app.add_middleware(BusyLedger, center=c)  # around the sessions, whose writes can find the ledger busy too
    from importlib import resources

    app.mount("/static", StaticFiles(directory=str(resources.files(__package__) / "static")), name="static")
    _api_docs(app)
    app.include_router(pages.router, include_in_schema=False)  # the API reference shows the API, not the pages
    app.include_router(admin.router, include_in_schema=False)
    app.include_router(api.router)
    install_metrics(app)  # GET /metrics; counts requests and recorded events (center/metrics.py)
    c.committer = Patient(c.committer)  # a request that gives up waiting leaves nothing to be committed later

    # Starlette's own class: its 404 for an unknown page and 405 come here too, as a page.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse(api_errors.body(api_errors.code_of(exc, exc.status_code), exc.detail),
                                status_code=exc.status_code, headers=exc.headers)
        return c.render(request, "error.html", {"message": _page_message(c, request, exc)}, status=exc.status_code,
                        person=_reader(c, request))

    # Starlette's last resort (it still logs the traceback): the API's callers get JSON with a code.
    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse(api_errors.body("internal_error", "The server failed. The request may or may not have "
                                                "been recorded: read the person's status, or retry with the same "
                                                "Idempotency-Key."), status_code=500)
        return PlainTextResponse("Internal Server Error", status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith("/api/"):
            # Never echo the input back: it may be unencodable, and it is the
            # caller's data, not something an error needs to repeat.
            errors = [{k: v for k, v in e.items() if k not in ("input", "ctx", "url")} for e in exc.errors()]
            return JSONResponse(api_errors.body("invalid_request", jsonable_encoder(errors)), status_code=422)
        in_form = any(e.get("loc", ("",))[0] == "body" for e in exc.errors())
        message = ("Some of the form was missing or too long." if in_form
                   else "Something went wrong with this request. Go back to the start and try again.")
        return c.render(request, "error.html", {"message": message}, status=422, person=_reader(c, request))

    return app


def _reader(c: Center, request: Request) -> Person | None:
    """Who is signed in, so that an error page speaks their language (a German
    reader got English error pages); None outside a session or if unknown."""
    return c.signed_in(request) if "session" in request.scope else None


def _page_message(c: Center, request: Request, exc: StarletteHTTPException) -> str:
    """What an error page says, as a msgid error.html translates: our own
    details are msgids (scripts/extract_messages.py lists them); Starlette's
    bare status phrases ("Not Found") are replaced by sentences of ours, and
    the body limit is said here, its number as the page's language writes it."""
    if exc.status_code == 401 and not request.url.path.startswith("/admin"):
        return "Sign in first: ask for a sign-in link on the home page."
    if isinstance(exc, BodyTooLarge):
        from babel.numbers import format_decimal

        lang = c.lang(request)
        _ = c.gettext(lang)
        return _("The form is too large to send (at most %(limit)s bytes). Shorten what you wrote and try again.",
                 limit=format_decimal(exc.limit, locale=lang))
    if exc.detail == _phrase(exc.status_code):  # no detail of ours: Starlette's default
        return ("There is no page at this address." if exc.status_code == 404
                else "Something went wrong with this request. Go back to the start and try again.")
    return str(exc.detail)


def _phrase(status: int) -> str | None:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


def _api_docs(app: FastAPI) -> None:
    """GET /api/v1/docs: Swagger UI from the files the fastapi-offline wheel
    ships, served here (no CDN: FastAPI's default page loads it from jsDelivr
    and starts it with an inline script; the site's CSP rightly blocks both,
    which left a blank page). Our own start-up script is a static file."""
    from importlib import resources

    assets = resources.files("fastapi_offline") / "static"
    app.mount("/api/v1/docs/assets", StaticFiles(directory=str(assets)), name="api-docs-assets")
    page = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>consentry privacy center API</title>
  <link rel="stylesheet" href="/api/v1/docs/assets/swagger-ui.css">
</head>
<body>
  <main id="swagger-ui"><noscript>The API reference needs JavaScript; the description itself is
  <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</noscript></main>
  <script src="/api/v1/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/static/api-docs.js"></script>
</body>
</html>
"""

    @app.get("/api/v1/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(page, headers=dict(SECURITY_HEADERS))
