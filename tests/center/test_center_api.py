"""The privacy center's JSON API for platforms: keys, events, status, and a
schemathesis run over its OpenAPI document. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from center_kit import ALICE, BOB, CenterKit, center_factory, export_dir, smtp  # noqa: F401  (fixtures)
from consentry.access import ApiClients
from consentry.ledger import Channel, EventType
from consentry.timeutil import parse_instant

pytestmark = pytest.mark.slow  # every test here: see the markers in pyproject.toml

ENDPOINTS = [
    ("objection", EventType.objected),
    ("objection/withdrawal", EventType.objection_withdrawn),
    ("consent", EventType.consent_given),
    ("consent/withdrawal", EventType.consent_withdrawn),
    ("erasure", EventType.erasure_requested),
]


class Api:
    def __init__(self, kit: CenterKit) -> None:
        self.kit = kit
        self.client_id, self.key = kit.api_key("Pixgram settings page")
        self.http = kit.new_client()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def post(self, user_id: str, what: str, **kw):  # noqa: ANN003, ANN201
        return self.http.post(f"/api/v1/people/{quote(user_id, safe='')}/{what}", headers=kw.pop("headers", self.auth), **kw)

    def status(self, user_id: str, **kw):  # noqa: ANN003, ANN201
        return self.http.get(f"/api/v1/people/{quote(user_id, safe='')}", headers=kw.pop("headers", self.auth), **kw)


@pytest.fixture
def api(center_factory: Callable[..., CenterKit], ledger_url: str) -> Api:  # noqa: F811
    return Api(center_factory(ledger_url=ledger_url))


def test_each_endpoint_returns_the_event_and_writes_it(api: Api) -> None:
    for what, type_ in ENDPOINTS:
        head = api.kit.ledger.watermark()
        before = datetime.now(UTC)
        body = {"json": {"note": "from the settings page"}} if what == "objection" else {}
        r = api.post(ALICE, what, **body)
        after = datetime.now(UTC)
        assert r.status_code == 201, (what, r.text)
        got = r.json()
        assert set(got) == {"seq", "event_id", "user_id", "type", "at", "channel", "note"}
        assert (got["user_id"], got["type"], got["channel"]) == (ALICE, type_.value, "api")
        assert got["at"].endswith("Z") and before <= parse_instant(got["at"]) <= after
        assert got["seq"] == head + 1
        stored = api.kit.ledger.get(got["event_id"])
        assert stored is not None, "the API answered before the event was in the ledger"
        assert stored.seq == got["seq"] and stored.type == type_ and stored.channel == Channel.api
        assert stored.actor == f"client:{api.client_id}"
        assert stored.at == parse_instant(got["at"])
        assert stored.note == ("from the settings page" if what == "objection" else None) == got["note"]
    assert [e.type for e in api.kit.events(ALICE)][1:] == [t for _, t in ENDPOINTS]
    assert api.kit.events(BOB)[-1].type == EventType.notified  # nobody else touched


def test_status_reflects_the_events(api: Api) -> None:
    def status() -> dict:
        r = api.status(ALICE)
        assert r.status_code == 200
        return r.json()

    s = status()
    assert (s["user_id"], s["objects"], s["consents"], s["erasure_requested"], s["notified"]) == (
        ALICE, False, False, False, True)
    assert [e["type"] for e in s["history"]] == ["notified"]
    steps = [
        ("objection", "objects", True),
        ("objection/withdrawal", "objects", False),
        ("consent", "consents", True),
        ("consent/withdrawal", "consents", False),
        ("erasure", "erasure_requested", True),
    ]
    for what, field, value in steps:
        seq = api.post(ALICE, what).json()["seq"]
        s = status()
        assert s[field] is value, what
        assert s["history"][-1]["seq"] == seq
    assert [e["type"] for e in s["history"]] == ["notified"] + [t.value for _, t in ENDPOINTS]
    assert s["history"] == [
        {"seq": e.seq, "event_id": e.event_id, "user_id": e.user_id, "type": e.type.value,
         "at": e.as_json()["at"], "channel": e.channel.value, "note": e.note}
        for e in api.kit.events(ALICE)
    ]
    nobody = api.status("not-in-the-export").json()
    assert nobody["history"] == [] and not any(nobody[k] for k in ("objects", "consents", "erasure_requested", "notified"))


def test_without_a_valid_key_nothing_happens(api: Api) -> None:
    before = api.kit.snapshot()
    bad = [
        {},
        {"Authorization": "Bearer csk_not-a-real-key"},
        {"Authorization": f"Bearer {api.key}x"},
        {"Authorization": f"Basic {api.key}"},
        {"Authorization": api.key},
    ]
    for headers in bad:
        for r in (api.post(ALICE, "objection", headers=headers), api.status(ALICE, headers=headers)):
            assert r.status_code == 401, headers
            assert r.headers.get("www-authenticate") == "Bearer"
    assert api.kit.snapshot() == before


def test_a_key_revoked_before_use_is_refused(api: Api) -> None:
    cid, key = api.kit.api_key("old integration")
    assert ApiClients(api.kit.ledger.engine).revoke(cid)
    r = api.post(ALICE, "objection", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401
    assert api.kit.ledger.state(ALICE).objection is None


def test_a_key_revoked_after_use_is_refused(api: Api) -> None:
    assert api.status(ALICE).status_code == 200
    assert ApiClients(api.kit.ledger.engine).revoke(api.client_id)
    r = api.post(ALICE, "objection")
    assert r.status_code == 401
    assert api.kit.ledger.state(ALICE).objection is None


@pytest.mark.parametrize("note", ["nul \x00 byte", "lone \ud800 surrogate"], ids=["nul", "surrogate"])
def test_a_note_the_database_cannot_store_is_refused_not_a_500(
    center_factory: Callable[..., CenterKit], ledger_url: str, note: str, request: pytest.FixtureRequest  # noqa: F811
) -> None:
    kit = center_factory(ledger_url=ledger_url)
    _, key = kit.api_key()
    http = kit.new_client(raise_server_exceptions=False)
    body = json.dumps({"note": note}).encode()  # \u escapes: the JSON itself is valid
    r = http.post(f"/api/v1/people/{ALICE}/objection", content=body,
                  headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert r.status_code in (201, 422), r.status_code
    if r.status_code == 201:
        assert kit.ledger.get(r.json()["event_id"]).note == note
    # Whatever happened to that request, the next objection is recorded.
    assert http.post(f"/api/v1/people/{BOB}/objection", headers={"Authorization": f"Bearer {key}"}).status_code == 201


@pytest.mark.parametrize("user_id", ["x" * 257, "tab\there", "nul\x00", "del\x7f", "line\nbreak", " lead", "trail ",
                                     "\u200bzw", "\u00a0"])
def test_invalid_user_ids_are_422_and_write_nothing(api: Api, user_id: str) -> None:
    before = api.kit.snapshot()
    assert api.post(user_id, "objection").status_code == 422
    assert api.post(user_id, "erasure").status_code == 422
    assert api.status(user_id).status_code == 422
    assert api.kit.snapshot() == before


@pytest.mark.parametrize("uid", ["x" * 256, "a.b_c:d@e-f", "0", "has space", "semi;colon", "quote'", "<script>",
                                 "émile", "a+b", "李小龍", "100%", "a?b#c", "O'Brien & sons"])
def test_any_user_id_an_export_may_hold_works(api: Api, uid: str) -> None:
    """Finding (noticed): CONTRACT §1 makes user_id any string, but the API
    refused every id outside [A-Za-z0-9._:@-] with a 422: a platform whose ids
    hold a space or an accent could not record its people's objections, or
    their erasure requests, at all. The id is sent percent-encoded."""
    r = api.post(uid, "objection")  # the fast path
    assert r.status_code == 201 and r.json()["user_id"] == uid, r.text
    assert api.kit.ledger.state(uid).objects
    r = api.post(uid, "objection", json={"note": "by the route"}, headers={**api.auth, "Idempotency-Key": "k1"})
    assert r.status_code == 201 and r.json()["user_id"] == uid, r.text
    assert api.post(uid, "erasure").status_code == 201
    status = api.status(uid)
    assert status.status_code == 200 and status.json()["user_id"] == uid, status.text
    assert api.kit.ledger.state(uid).erasure_us is not None


def test_the_key_is_never_logged_or_echoed(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("", "consentry", "uvicorn", "fastapi", "httpx", "sqlalchemy"):
        caplog.set_level(logging.DEBUG, logger=name)
    cid2, key2 = api.kit.api_key("second")
    responses = [
        api.post(ALICE, "objection", json={"note": "hi"}),
        api.status(ALICE),
        api.post("bad id", "objection"),
        api.post(ALICE, "objection", json={"note": 5}),
        api.post(ALICE, "objection", content=b"{not json", headers={**api.auth, "Content-Type": "application/json"}),
        api.post(ALICE, "consent", headers={"Authorization": f"Bearer {api.key}-wrong"}),
        api.post(ALICE, "consent", headers={"Authorization": f"Basic {api.key}"}),
        api.http.get("/api/v1/nowhere", headers=api.auth),
    ]
    ApiClients(api.kit.ledger.engine).revoke(cid2)
    responses.append(api.post(ALICE, "consent", headers={"Authorization": f"Bearer {key2}"}))
    assert any(r.status_code == 201 for r in responses) and any(r.status_code == 401 for r in responses)
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    secrets = (api.key, key2, api.key.removeprefix("csk_"), key2.removeprefix("csk_"))
    for record in caplog.records:
        text = " ".join([record.getMessage(), repr(record.args), record.exc_text or "", repr(record.__dict__)])
        for s in secrets:
            assert s not in text, f"an API key is in a log record of {record.name}: {record.getMessage()[:200]}"
    for r in responses:
        blob = r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items())
        for s in secrets:
            assert s not in blob, f"an API key is echoed by {r.request.url.path} ({r.status_code})"
    # Stored hashed: the database never holds a key.
    dump = repr(api.kit.snapshot())
    for s in secrets:
        assert s not in dump


# -- schemathesis over the OpenAPI document ------------------------------------------------------
#
# Schemathesis as a library (operation.as_strategy() under Hypothesis): its pytest
# plugin's lazy schema (schemathesis.pytest.from_fixture) fails under pytest 9
# ('Function' object has no attribute '_nodeid'), and a module-level schema
# could not use the per-test ledger and SMTP fixtures.

OPERATIONS = {
    "POST /api/v1/people/{user_id}/objection",
    "POST /api/v1/people/{user_id}/objection/withdrawal",
    "POST /api/v1/people/{user_id}/consent",
    "POST /api/v1/people/{user_id}/consent/withdrawal",
    "POST /api/v1/people/{user_id}/erasure",
    "GET /api/v1/people/{user_id}",
}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_api_conforms_to_its_schema(
    center_factory: Callable[..., CenterKit], ledger_url: str, mode: GenerationMode  # noqa: F811
) -> None:
    kit = center_factory(ledger_url=ledger_url)
    _, key = kit.api_key("schemathesis")
    headers = {"Authorization": f"Bearer {key}"}
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", kit.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert OPERATIONS <= {o.label for o in operations}
    statuses: list[int] = []
    postgres = ledger_url.startswith("postgresql")

    # The document also lists the HTML pages: they get the no-5xx check (and fewer
    # examples); the JSON API is also checked against its response schemas.
    for operation in operations:
        is_api = operation.path.startswith("/api/")
        if mode is GenerationMode.NEGATIVE and not is_api:
            continue  # pages without parameters have no invalid inputs to make
        checks = [not_a_server_error, response_schema_conformance] if is_api else [not_a_server_error]

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=30 if is_api else 8, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=headers, checks=checks)
            if is_api:
                statuses.append(response.status_code)
            assert key not in response.text

        check()
    if mode is GenerationMode.POSITIVE:
        assert 201 in statuses and 200 in statuses  # the run reached the handlers, not just the validation
    else:
        assert 422 in statuses


def test_receipts_by_the_api(center_factory: Callable[..., CenterKit], tmp_path) -> None:  # noqa: F811
    """GET /api/v1/people/{id}/receipts: only for a client with a key; 404 when
    the center signs no receipts; the person's signed receipts otherwise."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    plain = Api(center_factory())
    assert plain.http.get(f"/api/v1/people/{ALICE}/receipts").status_code == 401
    assert plain.http.get(f"/api/v1/people/{ALICE}/receipts", headers=plain.auth).status_code == 404
    key = tmp_path / "k.pem"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    signing = Api(center_factory(receipt_key=key))
    r = signing.http.get(f"/api/v1/people/{ALICE}/receipts", headers=signing.auth)
    assert r.status_code == 200 and r.json() == []  # no purge has removed anything of hers yet


def test_every_post_keeps_its_note_and_refuses_a_body_that_is_not_json(api: Api) -> None:
    """Finding (noticed): CONTRACT §2 gives every event an optional note, but
    only the objection endpoint read one: a note sent with a consent, an
    erasure request or a withdrawal was dropped with a 201, and a body that
    was not even JSON was taken too."""
    assert api.post(ALICE, "objection").status_code == 201
    for what, type_ in (("objection/withdrawal", "objection_withdrawn"), ("consent", "consent_given"),
                        ("consent/withdrawal", "consent_withdrawn"), ("erasure", "erasure_requested")):
        r = api.post(ALICE, what, json={"note": f"from the settings page: {what}"})
        assert r.status_code == 201 and r.json()["note"] == f"from the settings page: {what}", (what, r.text)
        assert api.kit.ledger.get(r.json()["event_id"]).note == f"from the settings page: {what}"
        assert r.json()["type"] == type_
    before = api.kit.snapshot()
    r = api.post(BOB, "erasure", content=b"{not json", headers={**api.auth, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert api.kit.snapshot() == before


# -- error codes -----------------------------------------------------------------------------------


def test_every_api_error_has_a_stable_code(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A program reads `code`, never the wording of `detail` (which may change): each refusal the API
    makes, including those made before any route (routing, the body limit, validation, a crash),
    carries one of the documented codes, and its status is the code's."""
    from consentry.center.api_errors import CODES

    _, read_key = ApiClients(api.kit.ledger.engine).create("reader", scopes=("read",))
    seen: dict[str, int] = {}

    def check(r, code: str) -> None:  # noqa: ANN001
        assert r.headers["content-type"] == "application/json", (code, r.status_code, r.text[:200])
        got = r.json()
        assert (r.status_code, got.get("code")) == (CODES[code][0], code), (code, r.status_code, r.text[:300])
        assert got["detail"], r.text
        seen[code] = r.status_code

    check(api.post(ALICE, "objection", headers={}), "missing_api_key")
    check(api.post(ALICE, "objection", headers={"Authorization": "Bearer csk_nobody"}), "unknown_api_key")
    check(api.post(ALICE, "objection", headers={"Authorization": f"Bearer {read_key}"}), "scope_denied")
    check(api.http.get("/api/v1/nothing-here", headers=api.auth), "not_found")
    check(api.http.get(f"/api/v1/people/{ALICE}/receipts", headers=api.auth), "receipts_disabled")
    check(api.http.delete(f"/api/v1/people/{ALICE}", headers=api.auth), "method_not_allowed")
    check(api.post(ALICE, "objection/withdrawal"), "not_in_force")
    check(api.post(ALICE, "objection", content=b"x" * (api.kit.settings.max_body_bytes + 1),
                   headers={**api.auth, "Content-Type": "application/json"}), "body_too_large")
    check(api.post(" padded", "objection"), "invalid_request")
    check(api.post(ALICE, "objection", content=b"{not json", headers={**api.auth, "Content-Type": "application/json"}),
          "invalid_request")
    check(api.post(ALICE, "consent", headers={**api.auth, "Idempotency-Key": "has space"}), "invalid_idempotency_key")
    assert api.post(ALICE, "consent", headers={**api.auth, "Idempotency-Key": "k-1"}).status_code == 201
    check(api.post(BOB, "consent", headers={**api.auth, "Idempotency-Key": "k-1"}), "idempotency_key_reused")

    def fail(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(api.kit.app.state.center.ledger, "history", fail)
    crashing = api.kit.new_client(raise_server_exceptions=False)
    r = crashing.get(f"/api/v1/people/{ALICE}", headers=api.auth)
    check(r, "internal_error")
    assert "on fire" not in r.text  # no internals to the caller

    # ledger_busy: tests/center/test_center_processes.py, with a real writer holding the lock
    assert set(seen) == set(CODES) - {"ledger_busy"}
    schema = api.http.get("/api/v1/openapi.json").json()
    error = schema["paths"]["/api/v1/people/{user_id}/objection"]["post"]["responses"]["401"]["content"]
    assert sorted(error["application/json"]["schema"]["properties"]["code"]["enum"]) == sorted(CODES)


def test_the_readme_lists_every_api_error_code() -> None:
    from pathlib import Path

    from consentry.center.api_errors import CODES

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [code for code in CODES if f"`{code}`" not in readme]
    assert not missing, missing
