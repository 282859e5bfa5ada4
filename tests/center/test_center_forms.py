"""What a person's browser sends reaches the ledger, and what goes wrong is said
in their language, with what they typed kept (findings of the 2026-12-06
trial of the privacy center as the people whose data it is would use it)."""

from __future__ import annotations

import pytest

from center_kit import (  # noqa: F401  (fixtures)
    ALICE,
    BOB,
    EMAIL,
    CenterKit,
    center,
    center_factory,
    export_dir,
    page_text,
    smtp,
)
from consentry.ledger import EventType

pytestmark = pytest.mark.slow  # every test here: see the markers in pyproject.toml


def _note_with_line_breaks(n: int = 20, length: int = 4000) -> str:
    """A note of `length` characters as the page counts them, `n` of them line breaks."""
    line = "x" * ((length - n) // n)
    text = "\n".join([line] * n)
    return text + "y" * (length - len(text))


@pytest.mark.parametrize("path", ["/me/object", "/others"])
def test_a_full_length_note_with_line_breaks_is_taken(center: CenterKit, path: str) -> None:
    """Finding: in Chromium a note of 4,000 characters with 20 line breaks (the
    textarea's maxlength allows it) was refused with "Some of the form was
    missing or too long" and the objection was not recorded: the browser sends
    each line break as CRLF, 4,020 characters. Line breaks are stored as LF."""
    note = _note_with_line_breaks()
    assert len(note) == 4000 and note.count("\n") == 19
    sent = note.replace("\n", "\r\n")  # what a browser submits
    if path == "/me/object":
        alice = center.signed_in_client(ALICE)
        r = center.post_form(alice, path, {"note": sent})
        assert r.status_code == 200, page_text(r.text)[:300]
        [ev] = [e for e in center.ledger.history(ALICE) if e.type == EventType.objected]
        assert ev.note == note
    else:
        c = center.new_client()
        r = center.post_form(c, path, {"email": "stranger@example.net", "items": "a-photo", "note": sent}, page=path)
        assert r.status_code == 200, page_text(r.text)[:300]
    too_long = note + "z"
    c = center.signed_in_client(BOB) if path == "/me/object" else center.new_client()
    form = {"note": too_long.replace("\n", "\r\n")} | ({} if path == "/me/object" else
                                                      {"email": "other@example.net", "items": "a-photo"})
    r = center.post_form(c, path, form, page="/me" if path == "/me/object" else path)
    assert r.status_code == 422, r.status_code  # one character over, as the page counts: refused


def test_error_pages_speak_the_signed_in_persons_language(center: CenterKit) -> None:
    """Finding: a signed-in Dutch reader got English error pages (a photo that
    is not theirs, a bad page number), and /me?page=abc said "Some of the form
    was missing or too long" of a link, not a form."""
    bob = center.signed_in_client(BOB)  # Bob reads Dutch (the export says so; no Accept-Language)
    r = bob.get("/me/media/a-photo")  # Alice's photo
    assert r.status_code == 404 and '<html lang="nl"' in r.text, r.text[:200]
    assert "Een dergelijke foto van u bestaat niet." in page_text(r.text)
    r = bob.get("/me?page=abc")
    assert r.status_code == 422 and '<html lang="nl"' in r.text
    text = page_text(r.text)
    assert "Er ging iets mis met dit verzoek." in text and "formulier" not in text, text
    assert '<html lang="nl"' in bob.get("/no/such/page").text


@pytest.mark.parametrize("email", ["", "x" * 400 + "@example.org"], ids=["empty", "too-long"])
def test_a_missing_or_overlong_address_gets_its_own_error_with_the_form_kept(center: CenterKit, email: str) -> None:
    """Finding: an empty or over-long address on /signin and /others got the
    generic 422 page, and everything typed was lost; the page's own message
    ("Enter an e-mail address.") was never shown."""
    c = center.new_client()
    r = center.post_form(c, "/signin", {"email": email})
    assert r.status_code == 400, r.status_code
    text = page_text(r.text)
    assert ("Enter an e-mail address." if not email else "This is not") in text or "address" in text, text
    assert "Some of the form was missing" not in text
    r = center.post_form(c, "/others", {"email": email, "handles": "@someone", "items": "a-photo", "note": "mine"},
                         page="/others")
    assert r.status_code == 400, r.status_code
    assert "Some of the form was missing" not in page_text(r.text)
    assert 'value="@someone"' in r.text and 'value="a-photo"' in r.text and ">mine</textarea>" in r.text
    if not email:
        assert "Enter an e-mail address." in page_text(r.text)


def test_a_failed_sign_in_request_does_not_say_a_link_is_on_its_way(center: CenterKit) -> None:
    """Finding (noticed): the per-address spacing was committed on its own,
    before the link and its mail. A failure (or a kill) in between left the
    spacing recorded and no link: the next request was told "a link was made
    a short while ago and is on its way" (429), and none ever came. The three
    are now one transaction."""
    links = center.app.state.center.links  # type: ignore[attr-defined]
    real = links.issue
    calls = []

    def failing(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the disk is full")
        return real(*a, **kw)

    links.issue = failing
    try:
        c = center.new_client(raise_server_exceptions=False)
        assert center.post_form(c, "/signin", {"email": EMAIL[ALICE]}).status_code == 500
        again = center.post_form(c, "/signin", {"email": EMAIL[ALICE]})
        assert again.status_code == 200, page_text(again.text)[:400]
    finally:
        links.issue = real
    center.inbox.wait(to=EMAIL[ALICE], kind="signin")
