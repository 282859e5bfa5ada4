"""Fixtures and helpers for the privacy center tests: a small hand-written
export, a ledger, a real SMTP server (tests/smtp_server.py), the app and a
TestClient, and the flows every test needs (CSRF tokens, signing a person in
by following the link from the mail the SMTP server really received).

Import the fixtures into a test module by name:

    from center_kit import center, center_factory, export_dir, smtp  # noqa: F401
"""

from __future__ import annotations

import html
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from babel.dates import format_date
from sqlalchemy import select

with warnings.catch_warnings():
    # Starlette asks for httpx2; httpx is what the project installs.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from consentry.access import Admins, ApiClients
from consentry.access.tables import admins, api_clients, rate_events, signin_links
from consentry.people.tables import third_party_objections
from consentry.center import CenterSettings, create_app
from consentry.controller import Controller
from consentry.engine import decide
from consentry.ledger import Channel, EventType, Ledger, NewEvent, StoredEvent
from consentry.ledger.tables import events as events_table
from consentry.ledger.tables import person_state
from consentry.notices.mailer import SmtpSettings
from consentry.sources import Export
from consentry.timeutil import parse_instant
from exportkit import item, user, write_export
from smtp_server import Received, SmtpTestServer

SECRET = "s3cret-key-for-tests-" + "x" * 32
SENDER = "Privacy <privacy@example.org>"
CUTOFF = parse_instant("2030-01-01T00:00:00Z")
NOTIFIED_AT = "2024-01-01T00:00:00Z"
ADMIN_PASSWORD = "a long password 123"

ALICE, BOB, CAROL, DORA, EVE = "alice", "bob", "carol", "dora", "eve"

# -- the export -----------------------------------------------------------------------------

USERS = [
    user(ALICE, email="alice@example.org", country="DE", language="en"),
    user(BOB, email="bob@example.org", country="NL", language="nl"),
    user(CAROL, email="carol@example.org", country="US", language="en"),
    user(DORA, email=None, country="DE", language="de"),  # no address: can never sign in
    user(EVE, email="eve@example.org", country="FR", language="fr", birth_date="2012-05-01"),  # a minor
]
CONTENT = [
    item("a-post", ALICE, created_at="2021-01-01T00:00:00Z", text="alice says hi"),
    item("a-photo", ALICE, kind="photo", created_at="2021-02-01T00:00:00Z", text="alice and bob"),
    item("a-friends", ALICE, visibility="friends", created_at="2021-03-01T00:00:00Z"),
    item("a-dm", ALICE, kind="private_message", visibility="private", created_at="2021-04-01T00:00:00Z"),
    item("a-gone", ALICE, created_at="2021-05-01T00:00:00Z", deleted_at="2022-01-01T00:00:00Z"),
    item("b-post", BOB, created_at="2021-01-02T00:00:00Z", text="bob-only secret-ish post"),
    item("b-photo", BOB, kind="photo", created_at="2021-02-02T00:00:00Z", text="bob with alice"),
    item("c-post", CAROL, created_at="2021-01-03T00:00:00Z", text="carol in the US"),
    item("d-post", DORA, created_at="2021-01-04T00:00:00Z"),
    item("e-post", EVE, created_at="2024-01-05T00:00:00Z"),
]
TAGS = [
    {"item_id": "a-photo", "tagged_user_id": BOB},
    {"item_id": "b-photo", "tagged_user_id": ALICE},
]
EMAIL = {u["user_id"]: u["email"] for u in USERS}

# A policy file: consent (opt-in) in the US, legitimate interest with notice elsewhere.
CONSENT_POLICY = """\
name: center-test
kinds: [post, photo, caption, comment, story]
minimum_age: 18
minimum_age_at_posting: true
tagged_people: require
jurisdictions:
  - name: us
    countries: [US]
    basis: consent
    honour_objections: true
    notice_days: null
  - name: everywhere_else
    countries: ["*"]
    basis: legitimate_interest
    honour_objections: true
    notice_days: 30
"""


def items_of(user_id: str) -> set[str]:
    """Item ids a person authored."""
    return {c["item_id"] for c in CONTENT if c["user_id"] == user_id}


def tagged_items_of(user_id: str) -> set[str]:
    """Others' items a person is tagged in."""
    authored = items_of(user_id)
    return {t["item_id"] for t in TAGS if t["tagged_user_id"] == user_id} - authored


# -- mail -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    mail_from: str
    subject: str
    kind: str | None
    text: str
    message: EmailMessage

    @classmethod
    def of(cls, received: Received) -> Mail:
        msg = received.message
        body = msg.get_body(preferencelist=("plain",))
        assert body is not None, "the mail has no text/plain part"
        return cls(
            to=received.rcpt_tos,
            mail_from=received.mail_from,
            subject=str(msg["Subject"]),
            kind=msg.get("X-Consentry-Kind"),
            text=body.get_content(),  # decodes quoted-printable / base64
            message=msg,
        )

    @property
    def links(self) -> list[str]:
        return re.findall(r"https?://[^\s<>\"]+", self.text)

    def link_path(self, prefix: str) -> str:
        """The path of the one link whose path starts with `prefix`."""
        paths = [urlsplit(u).path for u in self.links if urlsplit(u).path.startswith(prefix)]
        assert len(paths) == 1, f"expected one {prefix} link in the mail, got {self.links}"
        return paths[0]


class Inbox:
    """The mails the SMTP server received since this inbox was made."""

    def __init__(self, server: SmtpTestServer) -> None:
        self.server = server
        self._start = len(server.messages)
        self._taken: set[int] = set()

    def all(self) -> list[Mail]:
        return [Mail.of(r) for r in self.server.messages[self._start :]]

    def _match(self, to: str | None, kind: str | None) -> tuple[int, Mail] | None:
        for i, r in enumerate(self.server.messages[self._start :]):
            if i in self._taken:
                continue
            m = Mail.of(r)
            if (to is None or to.lower() in (a.lower() for a in m.to)) and (kind is None or m.kind == kind):
                return i, m
        return None

    def wait(self, *, to: str | None = None, kind: str | None = None, timeout: float = 5.0) -> Mail:
        """The next mail (not returned before) to `to` of `kind`; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._match(to, kind)
            if found is not None:
                self._taken.add(found[0])
                return found[1]
            if time.monotonic() > deadline:
                got = [(m.to, m.kind, m.subject) for m in self.all()]
                raise AssertionError(f"no {kind or 'any'} mail to {to or 'anyone'} within {timeout} s; got {got}")
            time.sleep(0.02)

    def assert_none(self, *, to: str | None = None, kind: str | None = None, settle: float = 0.3) -> None:
        time.sleep(settle)
        found = self._match(to, kind)
        assert found is None, f"unexpected mail: {found[1].to} {found[1].kind} {found[1].subject!r}"

    def count(self) -> int:
        return len(self.server.messages) - self._start


# -- pages ----------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_from(page: str) -> str:
    found = _CSRF.findall(page)
    assert found, "no CSRF token on the page"
    assert len(set(found)) == 1, "two different CSRF tokens on one page"
    return found[0]


def page_text(page: str) -> str:
    """The visible text of a page, tags dropped, entities decoded, blanks squeezed."""
    page = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", page)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def html_lang(page: str) -> str:
    m = re.search(r"<html lang=\"([^\"]*)\"", page)
    assert m, "no <html lang=...>"
    return m.group(1)


#: Who is asking, on every page and in every mail of the test center.
PIXGRAM = Controller(name="Pixgram Europe Ltd.", address="1 Harbour Square, Dublin 2, Ireland",
                     dpo="Ana Silva, dpo@pixgram.example")


def when_text(dt: datetime, lang: str = "en") -> str:
    """An instant as the center writes it (independently computed here)."""
    at = dt.astimezone(UTC)
    return f"{format_date(at.date(), 'long', locale=lang)}, {at:%H:%M:%S} UTC"


def me_rows(page: str) -> dict[str, tuple[str, str, str]]:
    """The item table of /me: item id -> (role, 'yes'/'no', why)."""
    body = re.search(r"(?s)<tbody>(.*?)</tbody>", page)
    assert body, "no item table on /me"
    rows = {}
    for tr in re.findall(r"(?s)<tr>(.*?)</tr>", body.group(1)):
        raw = re.findall(r"(?s)<td[^>]*>(.*?)</td>", tr)
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in raw]
        assert len(cells) == 5, cells
        item_id = html.unescape(re.search(r'<span class="id">([^<]+)</span>', raw[0]).group(1))
        role = "tagged" if "(you are tagged)" in cells[0] else "author"
        rows[item_id] = (role, cells[3], cells[4])
    return rows


# -- the center -----------------------------------------------------------------------------


def session_cookie(response) -> str:  # noqa: ANN001
    """The Set-Cookie header for the session cookie."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("consentry_session="):
            return header
    raise AssertionError(f"no session cookie set: {response.headers.get_list('set-cookie')}")


class ResponseProbe:
    """ASGI wrapper that runs `hook()` the moment the app starts its response,
    before the body is sent and before any background task: what the hook sees
    is what was committed when the person got the answer."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app
        self.hook: Callable[[], object] | None = None
        self.seen: list[object] = []

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        async def probing_send(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start" and self.hook is not None:
                self.seen.append(self.hook())
            await send(message)

        await self.app(scope, receive, probing_send)


#: The kits' metrics token, and the header a scrape sends with it.
METRICS_TOKEN = "metrics-token-for-the-tests-0123"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@dataclass
class CenterKit:
    app: object
    settings: CenterSettings
    ledger: Ledger  # a separate connection to the center's ledger: sees only what was committed
    inbox: Inbox
    export: Export
    client: TestClient
    probe: ResponseProbe
    _clients: list[TestClient] = field(default_factory=list)

    # -- clients and pages --

    def new_client(self, **kw) -> TestClient:
        base = "https://testserver" if self.settings.secure_cookies else "http://testserver"
        c = TestClient(self.probe, base_url=base, follow_redirects=False, **kw)  # type: ignore[arg-type]
        self._clients.append(c)
        return c

    def csrf(self, client: TestClient | None = None, path: str = "/") -> str:
        r = (client or self.client).get(path)
        assert r.status_code == 200, (path, r.status_code)
        return csrf_from(r.text)

    def request_link(self, email: str, client: TestClient | None = None) -> str:
        """Ask for a sign-in link; returns the link's path from the mail the SMTP server got."""
        client = client or self.client
        r = client.post("/signin", data={"email": email, "csrf": self.csrf(client)})
        assert r.status_code == 200, r.text
        return self.inbox.wait(to=email, kind="signin").link_path("/signin/")

    def follow_link(self, path: str, client: TestClient | None = None):  # noqa: ANN201
        client = client or self.client
        page = client.get(path)
        assert page.status_code == 200
        return client.post(path, data={"csrf": csrf_from(page.text)})

    def sign_in(self, user_id: str, client: TestClient | None = None) -> TestClient:
        client = client or self.client
        r = self.follow_link(self.request_link(EMAIL[user_id], client), client)
        assert r.status_code == 303 and r.headers["location"] == "/me", (r.status_code, r.text)
        return client

    def signed_in_client(self, user_id: str) -> TestClient:
        return self.sign_in(user_id, self.new_client())

    def post_form(self, client: TestClient, path: str, data: dict | None = None, page: str = "/"):  # noqa: ANN201
        """POST a form with the session's CSRF token (read from `page`)."""
        return client.post(path, data={**(data or {}), "csrf": self.csrf(client, page)})

    # -- administrators --

    def add_admin(self, name: str = "dpo", role: str = "reviewer", password: str = ADMIN_PASSWORD) -> None:
        Admins(self.ledger.engine).add(name, password, role)

    def admin_login(self, client: TestClient, name: str = "dpo", password: str = ADMIN_PASSWORD):  # noqa: ANN201
        token = self.csrf(client, "/admin/login")
        return client.post("/admin/login", data={"username": name, "password": password, "csrf": token})

    def admin_client(self, name: str = "dpo", role: str = "reviewer") -> TestClient:
        self.add_admin(name, role)
        c = self.new_client()
        r = self.admin_login(c, name)
        assert r.status_code == 303 and r.headers["location"] == "/admin", r.text
        return c

    def api_key(self, name: str = "platform") -> tuple[str, str]:
        return ApiClients(self.ledger.engine).create(name)

    # -- what was written --

    def events(self, user_id: str | None = None) -> list[StoredEvent]:
        if user_id is not None:
            return self.ledger.history(user_id)
        return list(self.ledger.iter_events())

    def record(self, user_id: str, type_: str, at: str | datetime | None = None, note: str | None = None) -> StoredEvent:
        return self.ledger.record(
            NewEvent(user_id=user_id, type=type_, at=at or datetime.now(UTC), channel=Channel.cli, note=note)
        )

    def snapshot(self) -> dict[str, list]:
        """Every row of every table a request could write to."""
        with self.ledger.engine.connect() as conn:
            return {
                t.name: sorted(tuple(map(str, row)) for row in conn.execute(select(t)).all())
                for t in (events_table, person_state, signin_links, rate_events, third_party_objections, admins, api_clients)
            }

    def third_party(self, ref: str) -> dict | None:
        with self.ledger.engine.connect() as conn:
            row = conn.execute(select(third_party_objections).where(third_party_objections.c.id == ref)).mappings().first()
        return dict(row) if row else None

    def decisions(self, at: datetime | None = None) -> dict[str, tuple[str, bool, str]]:
        """The engine's own decisions (consentry.engine.decide): item -> (user, eligible, reason)."""
        rows = decide(self.export, self.ledger, self.app.state.center.policy, at or self.app.state.center.cutoff()).fetchall()  # type: ignore[attr-defined]
        return {r[0]: (r[1], bool(r[2]), r[3]) for r in rows}

    def close(self) -> None:
        for c in self._clients:
            c.close()
        self.app.state.center.close()  # type: ignore[attr-defined]  # its mail sender too
        self.ledger.close()


# -- ledgers --------------------------------------------------------------------------------


def reads_through_sqlalchemy(ledger: Ledger) -> Ledger:
    """The ledger, reading its events through SQLAlchemy only (its ADBC reader off).

    The ADBC SQLite driver is a second copy of SQLite in this process, and mixing the
    two on one WAL database gives stale reads (see
    center/test_center.py::test_engine_decide_in_the_center_process_sees_new_objections).
    """
    ledger._events_adbc = lambda *a, **kw: None  # type: ignore[method-assign]
    return ledger


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_export(tmp_path_factory.mktemp("center-export"), USERS, CONTENT, TAGS)


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def center_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, export_dir: Path, smtp: SmtpTestServer
) -> Iterator[Callable[..., CenterKit]]:
    """Build a center: `center_factory(policy=..., base_url=..., ledger_url=..., signin_per_email_per_hour=...)`."""
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path / "home"))
    kits: list[CenterKit] = []
    n = 0

    def build(*, ledger_url: str | None = None, notify: bool = True, **overrides) -> CenterKit:
        nonlocal n
        n += 1
        url = ledger_url or f"sqlite:///{tmp_path / f'ledger{n}.db'}"
        ledger = reads_through_sqlalchemy(Ledger(url))
        if notify:
            ledger.append(
                NewEvent(user_id=u["user_id"], type=EventType.notified, at=NOTIFIED_AT, channel=Channel.email,
                         event_id=f"notice-{u['user_id']}")
                for u in USERS
            )
        if overrides.get("policy") == "consent-file":
            path = tmp_path / "center-test.yaml"
            path.write_text(CONSENT_POLICY)
            overrides["policy"] = str(path)
        if overrides.get("policy") == "blur-file":
            path = tmp_path / "center-blur.yaml"
            path.write_text(CONSENT_POLICY.replace("name: center-test", "name: center-blur")
                            .replace("tagged_people: require", "tagged_people: blur"))
            overrides["policy"] = str(path)
        data = overrides.pop("data", export_dir)
        overrides.setdefault("metrics_token", METRICS_TOKEN)  # /metrics is off without one
        settings = CenterSettings(
            data=data,
            ledger_url=url,
            secret_key=SECRET,
            cutoff=overrides.pop("cutoff", CUTOFF),
            smtp=SmtpSettings(host=smtp.host, port=smtp.port, security="none", sender=SENDER, timeout=5),
            platform_name=overrides.pop("platform_name", "Pixgram"),
            controller=overrides.pop("controller", PIXGRAM),
            **overrides,
        )
        app = create_app(settings)
        kit = CenterKit(app=app, settings=settings, ledger=ledger, inbox=Inbox(smtp), export=Export(data),
                        client=None, probe=ResponseProbe(app))  # type: ignore[arg-type]
        kit.client = kit.new_client()
        kits.append(kit)
        return kit

    yield build
    for k in kits:
        k.close()


@pytest.fixture
def center(center_factory: Callable[..., CenterKit]) -> CenterKit:
    return center_factory()
