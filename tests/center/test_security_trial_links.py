"""Two privacy defects a security review reproduced, held here.

A. Sign-in and /others confirmation links carried the address (and the
account's id) in their signed but readable payload (zlib + base64): it
ended up in proxy logs, browser history and the language links. The token
now carries only its nonce and purpose; the address and the account come
from the database row the nonce names. A token of the old format is refused
as not valid.

B. Unconfirmed /others requests (an address and free text anyone can store)
and sign-in link rows (an address with its times) were never deleted. Now an
unconfirmed request goes once its link has expired (plus a margin), and a
link row once it was used or expired, in the transaction of the next link
or request: no operator has to remember. Confirmed requests stay.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from datetime import UTC, datetime, timedelta

import itsdangerous
import pytest
from itsdangerous.encoding import base64_decode
from sqlalchemy import insert, select

from center_kit import (  # noqa: F401  (fixtures)
    ALICE,
    BOB,
    EMAIL,
    SECRET,
    CenterKit,
    center,
    center_factory,
    export_dir,
    smtp,
)
from consentry.access import LinkError, Links
from consentry.access.tables import signin_links
from consentry.people import ThirdParties

import consentry.access.links as links_module
import consentry.people.third_party as third_party_module


def _readable_payload(token: str) -> dict:
    """What anyone who sees the URL reads, without the secret key."""
    payload = token.rsplit(".", 2)[0]
    raw = base64_decode(payload.lstrip("."))
    if payload.startswith("."):  # compressed
        raw = zlib.decompress(raw)
    return json.loads(raw)


def _others(kit: CenterKit, email: str, **form) -> tuple[str, str]:  # noqa: ANN003
    c = kit.new_client()
    r = kit.post_form(c, "/others", {"email": email, "items": "a-photo", **form}, page="/others")
    assert r.status_code == 200, r.text
    path = kit.inbox.wait(to=email, kind="third_party").link_path("/others/verify/")
    return path, path.removeprefix("/others/verify/").split("/")[0]


def _link_rows(kit: CenterKit) -> list[dict]:
    with kit.ledger.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(signin_links)).mappings()]


# -- A: the token names no one ------------------------------------------------------------------------


def test_a_signin_link_carries_neither_the_address_nor_the_account(center: CenterKit) -> None:  # noqa: F811
    token = center.request_link(EMAIL[ALICE]).removeprefix("/signin/")
    data = _readable_payload(token)
    assert "@" not in json.dumps(data) and ALICE not in json.dumps(data), data
    assert set(data) == {"n", "p"} and data["p"] == "signin"
    # It still signs the right person in, once.
    c = center.new_client()
    r = center.follow_link(f"/signin/{token}", c)
    assert r.status_code == 303 and r.headers["location"] == "/me"
    assert c.get("/me").status_code == 200
    again = center.follow_link(f"/signin/{token}", center.new_client())
    assert again.status_code == 400 and "already been used" in again.text


def test_an_others_confirmation_link_carries_no_address(center: CenterKit) -> None:  # noqa: F811
    path, ref = _others(center, "stranger@example.net")
    data = _readable_payload(path.split("/")[-1])
    assert "@" not in json.dumps(data) and "stranger" not in json.dumps(data), data
    assert set(data) == {"n", "p"} and data["p"] == f"tp:{ref}"
    done = center.follow_link(path, center.new_client())
    assert done.status_code == 200 and center.third_party(ref)["status"] == "open"


def test_the_subject_and_account_come_from_the_database(center: CenterKit) -> None:  # noqa: F811
    links = center.app.state.center.links
    token = links.issue(" Alice@Example.org ", account=ALICE)
    used = links.use(token)
    assert (used.subject, used.account) == ("alice@example.org", ALICE)
    with pytest.raises(LinkError, match="already been used"):
        links.use(token)
    tp = links.issue("stranger@example.net", purpose="tp:abc")
    with pytest.raises(LinkError, match="not valid"):
        links.use(tp)  # another purpose
    assert links.redeem(tp, purpose="tp:abc") == "stranger@example.net"


def test_a_token_of_the_old_format_is_refused_as_not_valid(center: CenterKit) -> None:  # noqa: F811
    """Links issued before the change carried the address: refused (they lived 15 minutes)."""
    engine = center.ledger.engine
    nonce = "old-format-nonce-0123456789"
    with engine.begin() as conn:
        conn.execute(insert(signin_links).values(
            nonce=hashlib.sha256(nonce.encode()).hexdigest(), subject="alice@example.org", purpose="signin",
            created_us=int(time.time() * 1e6)))
    old = itsdangerous.URLSafeTimedSerializer(SECRET, salt="consentry.signin").dumps(
        {"n": nonce, "e": "alice@example.org", "p": "signin", "a": ALICE})
    c = center.new_client()
    r = center.follow_link(f"/signin/{old}", c)
    assert r.status_code == 400 and "not valid" in r.text
    assert c.get("/me").status_code == 401


# -- B: what was never confirmed or is used up is deleted -----------------------------------------


def _advance(monkeypatch: pytest.MonkeyPatch, by: timedelta) -> None:
    """Move the clock the links and requests read (and the tokens' timestamps)."""
    later = lambda: datetime.now(UTC) + by  # noqa: E731
    monkeypatch.setattr(third_party_module, "_now", later)
    monkeypatch.setattr(links_module, "_now", later, raising=False)
    issued = int(time.time())
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: issued + int(by.total_seconds()))


def test_unconfirmed_requests_and_spent_links_are_deleted(center: CenterKit, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    victim = "unconfirmed-victim@example.net"
    note = "Her phone is +31 6 1234 5678, she lives at 1 Example St"
    stale_path, stale = _others(center, victim, note=note)
    confirmed_path, confirmed = _others(center, "stranger@example.net")
    center.follow_link(confirmed_path, center.new_client())
    assert center.third_party(confirmed)["status"] == "open"
    center.request_link(EMAIL[ALICE])  # never used
    center.sign_in(BOB, center.new_client())  # used
    assert {r["subject"] for r in _link_rows(center)} >= {victim, "alice@example.org", "bob@example.org"}

    # Inside the link's life nothing goes.
    _advance(monkeypatch, timedelta(minutes=10))
    _others(center, "first-later@example.net")
    assert center.third_party(stale)["status"] == "unverified"
    assert victim in {r["subject"] for r in _link_rows(center)}

    # Well past it: the next request deletes them, in its own transaction.
    _advance(monkeypatch, timedelta(hours=1))
    _, fresh = _others(center, "later@example.net")
    assert center.third_party(stale) is None
    assert center.third_party(confirmed)["status"] == "open"  # the person's objection record stays
    assert center.third_party(fresh)["status"] == "unverified"  # live: its link still works
    subjects = [r["subject"] for r in _link_rows(center)]
    assert subjects == ["later@example.net"], subjects
    # The expired link says so, as before its request was deleted.
    r = center.follow_link(stale_path, center.new_client())
    assert r.status_code == 400 and "expired" in r.text


def test_a_used_link_whose_row_is_gone_is_still_refused(center: CenterKit) -> None:  # noqa: F811
    links: Links = center.app.state.center.links
    token = links.issue("alice@example.org", account=ALICE)
    links.use(token)
    links.issue("bob@example.org", account=BOB)  # the next issue sweeps used rows
    assert "alice@example.org" not in {r["subject"] for r in _link_rows(center)}
    with pytest.raises(LinkError, match="already been used"):
        links.use(token)


def test_the_purge_is_bounded_and_keeps_live_links(center: CenterKit, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    links: Links = center.app.state.center.links
    for i in range(5):
        links.issue(f"p{i}@example.org")
    _advance(monkeypatch, timedelta(hours=1))
    with center.ledger.engine.begin() as conn:
        assert links.purge(conn, limit=3) == 3
        assert links.purge(conn, limit=3) == 2
    live = links.issue("live@example.org")
    with center.ledger.engine.begin() as conn:
        assert links.purge(conn) == 0
    assert [r["subject"] for r in _link_rows(center)] == ["live@example.org"]
    assert links.redeem(live) == "live@example.org"


def test_third_parties_purge_only_unconfirmed_expired_requests(
    center: CenterKit, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    tp = ThirdParties(center.ledger, center.export)
    stale = tp.submit("a@example.net", items="a-photo", note="my phone number")
    confirmed_path, confirmed = _others(center, "b@example.net")
    center.follow_link(confirmed_path, center.new_client())
    _advance(monkeypatch, timedelta(hours=1))
    with center.ledger.transaction() as conn:
        assert third_party_module.purge_unconfirmed(conn) == 1
    assert tp.request(stale) is None and tp.request(confirmed).status == "open"
