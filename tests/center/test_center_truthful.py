"""What the privacy center tells a person holds, whatever the policy and
whenever they look: the objection's confirmation, the reasons on /me and in
the download for photos they are tagged in (under `require`, `blur` and
`ignore`), /me once the configured cut-off has passed (held against a real
snapshot build), the /others wait, and a rejection nobody could be told of."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable
from PIL import Image

from center_kit import (  # noqa: F401  (fixtures)
    ALICE,
    BOB,
    CAROL,
    CONTENT,
    DORA,
    EMAIL,
    TAGS,
    USERS,
    CenterKit,
    center,
    center_factory,
    export_dir,
    me_rows,
    page_text,
    smtp,
    when_text,
)
from consentry.engine import decide
from consentry.engine.rules import MEANING, Reason
from consentry.ledger import Channel, EventType, NewEvent
from consentry.people.view import ABOUT_YOU, NOT_ABOUT_YOU
from consentry.snapshots import build
from consentry.timeutil import iso, parse_instant
from exportkit import write_export

pytestmark = pytest.mark.slow  # every test here: see the markers in pyproject.toml

LEFT_OUT = "Photos of others in which you are tagged are left out too."
BLURRED = "it may be used, with your face blurred"
PAST = parse_instant("2025-01-01T00:00:00Z")  # a configured cut-off that has passed


def _download(client) -> tuple[dict, dict]:  # noqa: ANN001
    """tagged_in.json by item, and decisions.json's items."""
    z = zipfile.ZipFile(io.BytesIO(client.get("/me/download").content))
    return ({i["item_id"]: i for i in json.loads(z.read("tagged_in.json"))},
            json.loads(z.read("decisions.json"))["items"])


def _built(kit: CenterKit, at: datetime, name: str, tmp: Path) -> dict[str, tuple[str, list[str]]]:
    """A real snapshot build at `at`, made now: item -> (author, tagged)."""
    build(kit.export, kit.ledger, kit.app.state.center.policy, at, name, out=tmp / name)  # type: ignore[attr-defined]
    rows = DeltaTable(str(tmp / name / "table")).to_pyarrow_table().to_pylist()
    return {r["item_id"]: (r["user_id"], list(r["tagged"] or [])) for r in rows}


def _engine(kit: CenterKit, at: datetime | None = None) -> dict[str, tuple]:
    """The engine's rows (item -> eligible, reason[, blur_faces])."""
    rel = decide(kit.export, kit.ledger, kit.app.state.center.policy, at or kit.app.state.center.cutoff())  # type: ignore[attr-defined]
    return {r[0]: tuple(r[2:]) for r in rel.fetchall()}


# -- 1. the objection's confirmation, per tagged_people ----------------------------------------------


@pytest.mark.parametrize("policy", ["recommended", "meta-2024", "blur-file"])
def test_the_objection_confirmation_says_what_happens_to_photos_one_is_tagged_in(
        center_factory, tmp_path, policy: str) -> None:  # noqa: ANN001
    """Finding: done.html said "Photos of others in which you are tagged are
    left out too" whatever the policy; under meta-2024 (tagged people ignored)
    a build made after the objection keeps Bob's photo with Alice's id in its
    `tagged` column, and under blur it keeps it with the faces blurred."""
    kit = center_factory(policy=policy)
    alice = kit.signed_in_client(ALICE)
    done = page_text(kit.post_form(alice, "/me/object").text)
    assert "Your objection is recorded" in done, done
    now = datetime.now(UTC)
    engine = _engine(kit, now)
    if policy == "recommended":
        assert LEFT_OUT in done
        assert engine["b-photo"][:2] == (False, "tagged_person")
        assert "b-photo" not in _built(kit, now, "s", tmp_path)
        return
    assert LEFT_OUT not in done and "left out" not in done, done
    assert "none of your content, including what you posted before, is used in any training data set" in done
    if policy == "meta-2024":
        assert ("Photos of others in which you are tagged may still be used: the policy in use does not check "
                "the people tagged in them.") in done, done
        assert engine["b-photo"] == (True, "eligible")
        assert _built(kit, now, "s", tmp_path)["b-photo"] == (BOB, [ALICE])  # what the tester found in the bytes
    else:
        assert "Photos of others in which you are tagged may still be used, with your face blurred." in done, done
        assert engine["b-photo"] == (True, "eligible", True)  # kept on condition that faces are blurred


# -- 2. reasons for photos one is tagged in, per tagged_people ----------------------------------------


def test_under_ignore_a_photo_left_out_for_the_authors_reasons_is_not_blamed_on_the_reader(center_factory) -> None:  # noqa: ANN001
    """Finding: under meta-2024 Alice's /me and download said Bob's photo is not
    used because "you objected" (`tagged_person`), yet her objection never keeps
    a photo of someone else out under that policy: it was Bob's reason."""
    kit = center_factory(policy="meta-2024")
    alice = kit.signed_in_client(ALICE)
    assert kit.post_form(alice, "/me/object").status_code == 200
    kit.record(BOB, "objected")
    assert _engine(kit)["b-photo"] == (False, "objected")  # Bob's own rule, none of Alice's business
    assert me_rows(alice.get("/me").text)["b-photo"] == ("tagged", "no", NOT_ABOUT_YOU)
    tagged, decisions = _download(alice)
    assert tagged["b-photo"]["meaning"] == NOT_ABOUT_YOU
    assert (tagged["b-photo"]["reason"], tagged["b-photo"]["about_you"]) == (None, None)
    assert decisions["b-photo"] == {"eligible": False, "reason": None, "about_you": None}
    # Bob withdraws: the photo is used, though Alice objected (the policy does not check tagged people).
    kit.record(BOB, "objection_withdrawn")
    assert _engine(kit)["b-photo"] == (True, "eligible")
    assert me_rows(alice.get("/me").text)["b-photo"] == ("tagged", "yes", MEANING[Reason.eligible])


@pytest.fixture
def photo_export(tmp_path: Path) -> Path:
    """The center's export, Bob's photo of Alice with its image file (a blur needs one)."""
    content = [dict(c, media_path="media/b.jpg") if c["item_id"] == "b-photo" else c for c in CONTENT]
    folder = write_export(tmp_path / "export-photo", USERS, content, TAGS)
    (folder / "media").mkdir(exist_ok=True)
    Image.new("RGB", (64, 48), (30, 30, 200)).save(folder / "media" / "b.jpg", "JPEG")
    return folder


def test_under_blur_a_photo_the_reader_fails_in_is_said_to_be_used_with_their_face_blurred(
        center_factory, photo_export) -> None:  # noqa: ANN001
    """Finding: under `tagged_people: blur`, Alice objected and her /me said of
    Bob's photo only "yes, it may be used": the engine keeps it on condition
    that faces are blurred (`blur_faces`), and that is what she is told now."""
    kit = center_factory(policy="blur-file", data=photo_export)
    alice = kit.signed_in_client(ALICE)
    assert me_rows(alice.get("/me").text)["b-photo"] == ("tagged", "yes", MEANING[Reason.eligible])
    assert kit.post_form(alice, "/me/object").status_code == 200
    assert _engine(kit)["b-photo"] == (True, "eligible", True)
    assert me_rows(alice.get("/me").text)["b-photo"] == ("tagged", "yes", BLURRED)
    tagged, decisions = _download(alice)
    assert tagged["b-photo"]["meaning"] == BLURRED and tagged["b-photo"]["eligible"] is True
    assert decisions["b-photo"] == {"eligible": True, "reason": None, "about_you": "objected", "blur_faces": True}
    # Left out for Bob's reason: not used, and nothing of Alice's is blamed (her rule never keeps it out).
    kit.record(BOB, "objected")
    assert me_rows(alice.get("/me").text)["b-photo"] == ("tagged", "no", NOT_ABOUT_YOU)
    assert _download(alice)[1]["b-photo"] == {"eligible": False, "reason": None, "about_you": None}


def test_under_blur_a_photo_without_an_image_to_blur_is_not_said_to_be_used(center_factory, tmp_path) -> None:  # noqa: ANN001
    """A build leaves out an item kept only on condition that faces are blurred
    when it has no image to blur (`no_image_to_blur`); /me said "yes" for it."""
    kit = center_factory(policy="blur-file", cutoff=PAST)
    alice = kit.signed_in_client(ALICE)
    assert kit.post_form(alice, "/me/object").status_code == 200
    rows = me_rows(alice.get("/me").text)
    assert rows["b-photo"] == ("tagged", "no", ABOUT_YOU[Reason.objected])
    assert "b-photo" not in _built(kit, PAST, "s", tmp_path)


# -- 3. /me once the cut-off has passed ---------------------------------------------------------------


def _used_on_me(client) -> set[str]:  # noqa: ANN001
    return {i for i, (_role, used, _why) in me_rows(client.get("/me").text).items() if used == "yes"}


def _alices(rows: dict[str, tuple[str, list[str]]]) -> set[str]:
    return {i for i, (author, tagged) in rows.items() if author == ALICE or ALICE in tagged}


def test_after_the_cutoff_me_says_what_a_build_at_it_made_now_holds(center_factory, tmp_path) -> None:  # noqa: ANN001
    """Finding: with the configured cut-off in the past, Alice objected and /me
    said "None of your content is used" over "Your content at the next cut-off
    (...): 3 of 6 items may be used", each "yes"; a build at that cut-off made
    now leaves them all out (it applies who fails a person rule now, and the
    third-party objections in force now). /me and the download follow the build."""
    kit = center_factory(cutoff=PAST)
    alice = kit.signed_in_client(ALICE)
    page = page_text(alice.get("/me").text)
    assert "next cut-off" not in page, page
    assert f"Your content if a data set with the cut-off of {when_text(PAST)} were built now" in page, page
    assert _used_on_me(alice) == _alices(_built(kit, PAST, "s0", tmp_path)) == {"a-post", "a-photo", "b-photo"}

    # Someone without an account objects to Alice's post, after the cut-off.
    kit.ledger.append([NewEvent(item_id="a-post", type=EventType.third_party_objected, at=datetime.now(UTC),
                                channel=Channel.web, actor="test")])
    assert me_rows(alice.get("/me").text)["a-post"] == ("author", "no", MEANING[Reason.third_party_objected])
    assert _used_on_me(alice) == _alices(_built(kit, PAST, "s1", tmp_path)) == {"a-photo", "b-photo"}

    # Bob, tagged in Alice's photo and author of the one she is in, objects.
    kit.record(BOB, "objected")
    rows = me_rows(alice.get("/me").text)
    assert rows["a-photo"] == ("author", "no", MEANING[Reason.tagged_person])
    assert rows["b-photo"] == ("tagged", "no", NOT_ABOUT_YOU)
    assert _used_on_me(alice) == _alices(_built(kit, PAST, "s2", tmp_path)) == set()
    kit.record(BOB, "objection_withdrawn")
    assert _used_on_me(alice) == {"a-photo", "b-photo"}

    # Alice objects: nothing of hers is used, and the page says so from top to bottom.
    assert kit.post_form(alice, "/me/object").status_code == 200
    page = alice.get("/me").text
    assert "None of your content is used" in page_text(page) and "0 of 6 items may be used" in page_text(page)
    rows = me_rows(page)
    assert rows["a-post"] == ("author", "no", ABOUT_YOU[Reason.objected])
    assert rows["b-photo"] == ("tagged", "no", ABOUT_YOU[Reason.objected])
    assert _used_on_me(alice) == _alices(_built(kit, PAST, "s3", tmp_path)) == set()
    _tagged, decisions = _download(alice)
    assert not any(d["eligible"] for d in decisions.values()), decisions
    assert decisions["a-post"] == {"eligible": False, "reason": "objected"}
    assert decisions["b-photo"] == {"eligible": False, "reason": "tagged_person", "about_you": "objected"}


def test_after_the_cutoff_an_item_deleted_since_is_not_used_on_me(center_factory, tmp_path) -> None:  # noqa: ANN001
    """Finding: with the configured cut-off in the past, Alice's post deleted
    after it (before now) was "yes, it may be used" on /me and in the download,
    while a build at that cut-off made now leaves it out (its rows say
    `since_cutoff:content_deleted`). The page and the build now read one
    engine order (`Compiler.left_out_now_sql`)."""
    deleted = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    assert deleted > PAST
    content = [dict(c, deleted_at=iso(deleted)) if c["item_id"] == "a-post" else c for c in CONTENT]
    kit = center_factory(cutoff=PAST, data=write_export(tmp_path / "export", USERS, content, TAGS))
    alice = kit.signed_in_client(ALICE)
    rows = me_rows(alice.get("/me").text)
    assert rows["a-post"][:2] == ("author", "no"), rows
    assert rows["a-post"][2] == ABOUT_YOU[Reason.content_deleted], rows
    assert _used_on_me(alice) == _alices(_built(kit, PAST, "s0", tmp_path)) == {"a-photo", "b-photo"}
    _tagged, decisions = _download(alice)
    assert decisions["a-post"] == {"eligible": False, "reason": "content_deleted"}, decisions
    # The download says when it was decided, and that the cut-off had passed (a trial read its reasons
    # against `evaluate --at CUTOFF`, which does not count what happened since).
    z = zipfile.ZipFile(io.BytesIO(alice.get("/me/download").content))
    whole = json.loads(z.read("decisions.json"))
    assert whole["cutoff_passed"] is True and parse_instant(whole["decided_at"]) > deleted, whole
    # Deleted before the cut-off, as the engine decides at it (rule 5): the page says the same.
    assert rows["a-gone"] == ("author", "no", ABOUT_YOU[Reason.content_deleted]), rows


def test_after_the_cutoff_the_notice_page_does_not_call_it_the_next(center_factory) -> None:  # noqa: ANN001
    """Finding (noticed): with the configured cut-off in the past, /notice said
    "The next training data set is built at <that past date>"."""
    kit = center_factory(cutoff=PAST)
    notice = page_text(kit.client.get("/notice").text)
    assert "The next training data set" not in notice, notice
    assert (f"The training data set with the cut-off of {when_text(PAST)} takes content as it was then. "
            "No date is set yet for the next one.") in notice, notice
    ahead = page_text(center_factory().client.get("/notice").text)
    assert "The next training data set is built at" in ahead, ahead


def test_consent_then_an_objection_is_not_called_may_be_used(center_factory) -> None:  # noqa: ANN001
    """Finding (trial, a consent jurisdiction): Carol consented, then objected;
    /me said both "You have given consent. Your public content may be used."
    and "Your objection is in force ... None of your content is used." The
    objection decides (rule 11), and the page now says only that."""
    kit = center_factory(policy="consent-file")
    carol = kit.signed_in_client(CAROL)
    assert kit.post_form(carol, "/me/consent").status_code == 200
    assert "Your public content may be used" in page_text(carol.get("/me").text)
    assert kit.post_form(carol, "/me/object").status_code == 200
    text = page_text(carol.get("/me").text)
    assert "You have given consent." in text and "Your public content may be used" not in text, text
    assert "None of your content is used" in text, text
    assert kit.decisions()["c-post"][1:] == (False, "objected")


def test_before_the_cutoff_me_still_speaks_of_the_next_cutoff(center: CenterKit) -> None:
    """The planned cut-off (2030) is ahead: /me decides at it, as before."""
    alice = center.signed_in_client(ALICE)
    text = page_text(alice.get("/me").text)
    assert f"Your content at the next cut-off ({when_text(center.settings.cutoff)})" in text, text  # type: ignore[arg-type]


# -- 4. /others: the real wait --------------------------------------------------------------------


def test_a_second_request_on_others_within_the_minute_gives_the_real_wait(center: CenterKit) -> None:
    """Finding: a second /others request for one address within a minute said
    "Please wait an hour before asking for another link", without Retry-After;
    the spacing is 60 s, and the first link is on its way."""
    c = center.new_client()
    form = {"email": "stranger@example.net", "items": "a-photo"}
    assert center.post_form(c, "/others", form, page="/others").status_code == 200
    center.inbox.wait(to="stranger@example.net", kind="third_party")
    r = center.post_form(c, "/others", form, page="/others")
    assert r.status_code == 429
    assert 0 < int(r.headers["retry-after"]) <= 60, r.headers
    text = page_text(r.text)
    assert "an hour" not in text, text
    assert ("a link to confirm your objection was made a short while ago and is on its way. It works once, "
            "for 15 minutes: use that one, or ask for a new one in 1 minute.") in text, text
    center.inbox.assert_none(to="stranger@example.net", settle=0.1)


# -- 5. a rejection nobody could be told of -------------------------------------------------------------

GROUNDS = "Court order 2024/17: these records must stay in the archive"


@pytest.mark.parametrize("uid", [DORA, "not-in-the-export"])
def test_a_rejection_is_refused_when_the_person_cannot_be_told(center: CenterKit, uid: str) -> None:
    """Finding: for Dora (no address in the export) the reviewer's rejection was
    recorded and nobody was told (CONTRACT §2: it "is itself shown to the
    person"); she cannot sign in to see it either. Refused, nothing written."""
    assert EMAIL.get(uid) is None
    center.record(uid, "objected")
    admin = center.admin_client()
    before = center.snapshot()
    r = center.post_form(admin, "/admin/reject", {"user_id": uid, "grounds": GROUNDS}, page="/admin")
    assert r.status_code == 409, r.text
    text = page_text(r.text)
    assert "nothing was recorded" in text and "cannot be shown to them" in text, text
    assert center.snapshot() == before and center.ledger.state(uid).objects
    assert center.ledger.state(uid).objection != "objection_rejected"
