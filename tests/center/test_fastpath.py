"""The objection API's fast path (center/fastpath.py) answers exactly as the
FastAPI route it stands in front of: every request is sent to the real app and
to the same app with the fast path taken out, on one ledger, and the answers
are compared (status, headers, body; the event's own seq, id and time aside).
On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from center_kit import ALICE, METRICS_AUTH, CenterKit, center_factory, export_dir, smtp  # noqa: F401  (fixtures)
from consentry.access import ApiClients
from consentry.center import create_app
from consentry.center import fastpath as fastpath_module
from consentry.center.fastpath import ObjectionFastPath

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.slow


class Pair:
    """The real app and the route alone, on one ledger; `fast` counts the
    requests the fast path recorded."""

    def __init__(self, kit: CenterKit, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kit = kit
        route_only = create_app(kit.settings)
        route_only.user_middleware = [m for m in route_only.user_middleware if m.cls is not ObjectionFastPath]
        route_only.middleware_stack = None  # built again, without it, on the first request
        self.route_only_app = route_only
        self.real = kit.new_client()
        self.route = TestClient(route_only, base_url="http://testserver", follow_redirects=False)
        clients = ApiClients(kit.ledger.engine)
        self.key = clients.create("settings page", scopes=["read", "write"])[1]
        self.read_key = clients.create("dashboard", scopes=["read"])[1]
        revoked_id, self.revoked_key = clients.create("old")
        clients.revoke(revoked_id)
        self.fast = 0
        real_new_event = fastpath_module.new_event

        def counting(*a, **kw):  # noqa: ANN002, ANN003, ANN202
            self.fast += 1
            return real_new_event(*a, **kw)

        monkeypatch.setattr(fastpath_module, "new_event", counting)
        self.n = 0

    def both(self, path_user: str | None = None, *, headers: dict | None = None, content: bytes | None = None,
             auth: str | None = "key") -> tuple[tuple, tuple, bool]:
        """The same request to both apps (each for its own person, unless
        `path_user` is given); the two answers, normalised, and whether the
        fast path took the real app's request."""
        self.n += 1
        hdrs = dict(headers or {})
        if auth is not None:
            hdrs["Authorization"] = {"key": f"Bearer {self.key}", "read": f"Bearer {self.read_key}",
                                     "revoked": f"Bearer {self.revoked_key}"}.get(auth, auth)
        answers = []
        before = self.fast
        for side, client in (("real", self.real), ("route", self.route)):
            user = path_user if path_user is not None else f"p{self.n}-{side}"
            r = client.post(f"/api/v1/people/{user}/objection", headers=hdrs, content=content)
            answers.append(_normalised(r, user))
        return answers[0], answers[1], self.fast > before

    def close(self) -> None:
        self.route.close()
        self.route_only_app.state.center.close()  # its mail sender too


def _normalised(r, user: str) -> tuple:  # noqa: ANN001
    """Status, header names and content type, and the body with what differs
    between two events by nature (seq, id, time, the person) replaced."""
    try:
        body = r.json()
    except ValueError:
        body = r.text
    if isinstance(body, dict) and r.status_code == 201:
        assert set(body) == {"seq", "event_id", "user_id", "type", "at", "channel", "note"}, body
        assert body["user_id"] == unquote(user) and body["at"].endswith("Z") and isinstance(body["seq"], int)
        body = {k: v for k, v in body.items() if k not in ("seq", "event_id", "at", "user_id")}
    names = sorted(k for k in r.headers if k not in ("content-length", "date"))
    return r.status_code, names, r.headers.get("content-type"), body


@pytest.fixture
def pair(center_factory: Callable[..., CenterKit], ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:  # noqa: F811
    p = Pair(center_factory(ledger_url=ledger_url), monkeypatch)
    yield p
    p.close()


JSON = {"Content-Type": "application/json"}

# (name, request, taken by the fast path)
CASES = [
    ("no body", {}, True),
    ("an empty object", {"content": b"{}", "headers": JSON}, True),
    ("a note", {"content": json.dumps({"note": "from the settings page"}).encode(), "headers": JSON}, True),
    ("a note without a content type", {"content": b'{"note": "x"}'}, False),  # FastAPI reads it as no JSON
    ("JSON with a charset", {"content": b'{"note": "x"}', "headers": {"Content-Type": "application/json; charset=utf-8"}},
     True),
    ("a null note", {"content": b'{"note": null}', "headers": JSON}, True),
    ("a blank note", {"content": b'{"note": "   "}', "headers": JSON}, True),
    ("another field", {"content": b'{"other": 1}', "headers": JSON}, True),
    ("non-ASCII", {"content": json.dumps({"note": "Einspruch ✓ é 😀"}, ensure_ascii=False).encode(), "headers": JSON},
     True),
    ("a null body", {"content": b"null", "headers": JSON}, False),
    ("a list", {"content": b"[1]", "headers": JSON}, False),
    ("broken JSON", {"content": b'{"note": ', "headers": JSON}, False),
    ("whitespace", {"content": b"  ", "headers": JSON}, False),
    ("a NUL in the note", {"content": b'{"note": "a\\u0000b"}', "headers": JSON}, False),
    ("an unpaired surrogate", {"content": b'{"note": "a\\ud800b"}', "headers": JSON}, False),
    ("a note too long", {"content": json.dumps({"note": "x" * 4001}).encode(), "headers": JSON}, False),
    ("a number for a note", {"content": b'{"note": 5}', "headers": JSON}, False),
    ("not UTF-8", {"content": b'{"note": "\xff"}', "headers": JSON}, False),
    ("text/plain", {"content": b'{"note": "x"}', "headers": {"Content-Type": "text/plain"}}, False),
    ("+json", {"content": b'{"note": "x"}', "headers": {"Content-Type": "application/merge-patch+json"}}, False),
    ("a form", {"content": b"note=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, False),
    ("no key", {"auth": None}, False),
    ("another scheme", {"auth": "Basic eDp5"}, False),
    ("a bearer without a key", {"auth": "Bearer "}, False),
    ("an unknown key", {"auth": "Bearer csk_not-a-key"}, False),
    ("a revoked key", {"auth": "revoked"}, False),
    ("a read-only key", {"auth": "read"}, False),
    ("lower-case scheme", {"auth": "key-lower"}, True),
    ("a body over the limit", {"content": b'{"note": "' + b"x" * (2 * 1024 * 1024) + b'"}', "headers": JSON}, False),
    # Security trial: a 500 with a RecursionError traceback, before the key was checked
    ("JSON nested 5,000 deep", {"content": b"[" * 5000 + b"]" * 5000, "headers": JSON}, False),
    ("JSON nested 5,000 deep, no key", {"content": b"[" * 5000 + b"]" * 5000, "headers": JSON, "auth": None}, False),
    ("JSON nested 5,000 deep in a note", {"content": b'{"note": ' + b"[" * 5000 + b"]" * 5000 + b"}", "headers": JSON},
     False),
]


def test_every_request_gets_the_routes_answer(pair: Pair) -> None:
    for name, kw, fast in CASES:
        kw = dict(kw)
        if kw.get("auth") == "key-lower":
            kw["auth"] = f"bearer {pair.key}"
        real, route, taken = pair.both(**kw)
        assert real == route, (name, real, route)
        assert taken == fast, (name, "taken" if taken else "left to the route", real)


def test_ids_the_route_refuses_are_left_to_it(pair: Pair) -> None:
    # "%FF%FE", "%C0%AF": not UTF-8 (security trial: recorded for the id "\ufffd\ufffd")
    for user in ("a%20", "%20a", "x" * 257, "tab%09", "a%2Fb", "%FF%FE", "%C0%AF"):
        real, route, taken = pair.both(user)
        assert real == route and real[0] in (404, 422), (user, real, route)
        assert not taken
    for user in ("x" * 256, "a%20b", "caf%C3%A9"):  # the longest id the route takes; a space, an accent
        real, route, taken = pair.both(user)
        assert real == route and real[0] == 201 and taken, (user, real, route)


def test_the_event_is_the_routes_event_and_is_durable_when_answered(pair: Pair) -> None:
    seen = []
    pair.kit.probe.hook = lambda: seen.append(pair.kit.ledger.watermark())
    r = pair.real.post(f"/api/v1/people/{ALICE}/objection", headers={"Authorization": f"Bearer {pair.key}"},
                       json={"note": "  keep it  "})
    assert r.status_code == 201 and pair.fast == 1
    got = r.json()
    stored = pair.kit.ledger.get(got["event_id"])
    assert stored is not None and seen == [got["seq"]], "answered before the event was committed"
    assert (stored.user_id, stored.type.value, stored.channel.value, stored.note) == (ALICE, "objected", "api", "keep it")
    assert stored.actor.startswith("client:") and got["note"] == "keep it"
    assert pair.kit.ledger.state(ALICE).objects


def test_the_metrics_label_it_with_the_routes_template(pair: Pair) -> None:
    pair.both()
    text = pair.real.get("/metrics", headers=METRICS_AUTH).text
    line = 'consentry_http_requests_total{method="POST",route="/api/v1/people/{user_id}/objection",status="201"}'
    assert line in text, text[:3000]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(note=st.text(st.characters(codec=None, exclude_categories=()), max_size=20))
def test_any_note_gets_the_routes_answer_and_the_same_stored_note(pair: Pair, note: str) -> None:
    content = json.dumps({"note": note}).encode()  # ASCII JSON: unpaired surrogates as \ud8xx escapes
    real, route, taken = pair.both(content=content, headers=JSON)
    assert real == route, (note, real, route)
    assert taken == (real[0] == 201)
