"""Two defects a trial reproduced, held here.

A. An address whose case-folding differs from its lower case (`straße@`)
could never sign in: the look-up case-folded what the person typed
(`strasse@`) and compared it with SQL lower() of the stored address
(`straße@`), so no account was found and no mail was sent. Typed and stored
addresses now compare the same way, by lower case (`ß` is a letter of its
own, as in IDNA2008: `strasse@` is another mailbox), and a link for an
account goes only to that account's own address.

B. An administrator's stale rejection hit the person's new objection: the
reject form named only the person, so grounds written for an objection that
had been withdrawn rejected the new one, whose note nobody had read. The form
now names the objection it answers; the server refuses (409, nothing
recorded) when that objection is no longer the one in force, checked in the
transaction that would write the rejection.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete

from center_kit import (  # noqa: F401  (fixtures)
    ALICE,
    CONTENT,
    TAGS,
    USERS,
    CenterKit,
    center,
    center_factory,
    export_dir,
    page_text,
    smtp,
)
from consentry.access.tables import rate_events
from consentry.ledger import EventType
from consentry.people import Directory
from consentry.sources import Export
from exportkit import user, write_export

SHARP, PLAIN = "straße@example.org", "strasse@example.org"


def _export(tmp_path: Path, name: str, *extra: dict) -> Path:
    return write_export(tmp_path / name, [*USERS, *extra], CONTENT, TAGS)


def _fresh_spacing(kit: CenterKit) -> None:
    """Forget the mail spacing, so the next request for the same address is answered at once."""
    with kit.ledger.engine.begin() as conn:
        conn.execute(delete(rate_events))


def _signin_mail(kit: CenterKit, typed: str, to: str):
    c = kit.new_client()
    r = c.post("/signin", data={"email": typed, "csrf": kit.csrf(c)})
    assert r.status_code == 200, r.text
    return kit.inbox.wait(to=to, kind="signin")


def _opens(kit: CenterKit, mail) -> str:
    """The account the mail's one sign-in link opens."""
    c = kit.new_client()
    r = kit.follow_link(mail.link_path("/signin/"), c)
    assert r.status_code == 303 and r.headers["location"] == "/me", r.text
    text = page_text(c.get("/me").text)
    [uid] = [u for u in ("gross", "strasse") if f"@{u}." in text]
    return uid


# -- A. an address with ß ---------------------------------------------------------------------------


def test_an_address_with_sharp_s_signs_in_as_it_is_written(center_factory: Callable[..., CenterKit],
                                                          tmp_path: Path) -> None:
    """The trial: the export's `straße@example.org` typed exactly got "check your mail" and no mail."""
    kit = center_factory(data=_export(tmp_path, "export-sharp", user("gross", email=SHARP, language="en")))
    mail = _signin_mail(kit, SHARP, SHARP)
    assert mail.to == (SHARP,)
    assert _opens(kit, mail) == "gross"
    # However its case is written: the capital ẞ too.
    for typed in ("STRAẞE@EXAMPLE.ORG", "Straße@Example.org"):
        _fresh_spacing(kit)
        assert _signin_mail(kit, typed, SHARP).to == (SHARP,), typed
    # `strasse@` is another address: nothing is sent to `straße@` for it.
    _fresh_spacing(kit)
    c = kit.new_client()
    assert c.post("/signin", data={"email": PLAIN, "csrf": kit.csrf(c)}).status_code == 200
    kit.inbox.assert_none(kind="signin")


def test_strasse_and_strasse_with_sharp_s_are_two_accounts_each_reached_only_at_its_own_address(
        center_factory: Callable[..., CenterKit], tmp_path: Path) -> None:
    kit = center_factory(data=_export(tmp_path, "export-both", user("gross", email=SHARP, language="en"),
                                      user("strasse", email=PLAIN, language="en")))
    mail = _signin_mail(kit, SHARP, SHARP)
    assert mail.to == (SHARP,) and len(mail.links) == 1
    kit.inbox.assert_none(to=PLAIN)
    assert _opens(kit, mail) == "gross"

    mail = _signin_mail(kit, "STRASSE@example.org", PLAIN)
    assert mail.to == (PLAIN,) and len(mail.links) == 1
    kit.inbox.assert_none(to=SHARP)
    assert _opens(kit, mail) == "strasse"


def test_the_directory_finds_an_address_exactly_as_the_export_writes_it(tmp_path: Path) -> None:
    """Typed exactly as stored, always found; a look-alike never. Letters whose lower case Python
    and DuckDB write differently (`İ`, a final `Σ`) included."""
    stored = {"gross": SHARP, "strasse": PLAIN, "kim": "Kİm@example.org", "odos": "ΟΔΟΣ@example.gr",
              "kim2": "kim@example.org"}
    folder = _export(tmp_path, "export-dir", *(user(u, email=e) for u, e in stored.items()))
    d = Directory(Export(folder))
    for uid, address in stored.items():
        assert [p.user_id for p in d.by_email(address)] == [uid], address
        if address.upper().lower() == address.lower():  # not for ß: its upper case is SS, another address
            assert [p.user_id for p in d.by_email(address.upper())] == [uid], address.upper()
    assert [p.user_id for p in d.by_email("STRAẞE@example.org")] == ["gross"]
    assert [p.user_id for p in d.by_email("οδος@example.gr")] == ["odos"]  # its lower case, final ς
    assert d.by_email("kım@example.org") == [] and d.by_email("Kİm@example.org ") != d.by_email("kim@example.org")


# -- B. a stale rejection -----------------------------------------------------------------------------


_FORM = re.compile(r'<form method="post" action="/admin/reject">(.*?)</form>', re.DOTALL)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
GROUNDS = "Court order 2024/17 requires keeping these press photos"


def _reject_form(page: str, user_id: str) -> dict[str, str]:
    """The hidden fields of the reject form for `user_id` on the queue page, as the browser sends them."""
    for body in _FORM.findall(page):
        fields = {k: html.unescape(v) for k, v in _HIDDEN.findall(body)}
        if fields.get("user_id") == user_id:
            return fields
    raise AssertionError(f"no reject form for {user_id}")


@pytest.mark.parametrize("then", ["withdrawn-and-objected-again", "objected-again"])
def test_a_stale_rejection_never_rejects_the_persons_new_objection(center: CenterKit, then: str) -> None:
    old = center.record(ALICE, "objected", note="the old reasons")
    admin = center.admin_client("dpo")
    form = _reject_form(admin.get("/admin").text, ALICE)  # the reviewer reads the old objection

    # Meanwhile the person withdraws and objects again, with a new note nobody has reviewed.
    if then == "withdrawn-and-objected-again":
        center.record(ALICE, "objection_withdrawn")
    new = center.record(ALICE, "objected", note="new reasons, never reviewed")
    assert new.seq > old.seq

    before = center.snapshot()
    r = admin.post("/admin/reject", data={**form, "grounds": GROUNDS})
    assert r.status_code == 409, r.text
    text = page_text(r.text)
    assert "nothing was recorded" in text and f"#{old.seq}" in text and "reload" in text.lower(), text
    assert center.snapshot() == before
    assert center.ledger.state(ALICE).objects and center.events(ALICE)[-1].seq == new.seq
    center.inbox.assert_none(kind="rejection", settle=0.1)

    # Reloaded, the page answers the new objection, and shows its note: that rejection is recorded.
    page = admin.get("/admin").text
    assert "new reasons, never reviewed" in page_text(page)
    fresh = _reject_form(page, ALICE)
    r = admin.post("/admin/reject", data={**fresh, "grounds": GROUNDS})
    assert r.status_code == 303, r.text
    ev = center.events(ALICE)[-1]
    assert ev.type == EventType.objection_rejected and ev.note == GROUNDS and center.events(ALICE)[-2].seq == new.seq
    assert not center.ledger.state(ALICE).objects
    # Sent again (a double click), the same form finds nothing in force: 409, nothing more.
    before = center.snapshot()
    assert admin.post("/admin/reject", data={**fresh, "grounds": GROUNDS}).status_code == 409
    assert center.snapshot() == before


def test_the_objection_is_checked_in_the_rejections_own_transaction(center: CenterKit,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A new objection that lands after the page's checks and before the write: the rejection's
    transaction itself refuses it (a check before the write would have let it through)."""
    old = center.record(ALICE, "objected", note="the old reasons")
    admin = center.admin_client("dpo")
    form = _reject_form(admin.get("/admin").text, ALICE)
    c = center.app.state.center  # type: ignore[attr-defined]
    real = c.committer.record

    def racing(event, *a, **kw):
        if event.type == EventType.objection_rejected:  # the person objects again, just before the write
            center.record(ALICE, "objection_withdrawn")
            center.record(ALICE, "objected", note="new reasons")
        return real(event, *a, **kw)

    monkeypatch.setattr(c.committer, "record", racing)
    r = admin.post("/admin/reject", data={**form, "grounds": GROUNDS})
    assert r.status_code == 409, r.text
    assert [e.type for e in center.events(ALICE)][-3:] == [EventType.objected, EventType.objection_withdrawn,
                                                           EventType.objected]
    assert center.ledger.state(ALICE).objects
    assert f"#{old.seq}" in page_text(r.text)
