"""Defects a notice-campaign trial reproduced (generate --users 300 --seed 3,
notify --cutoff 2027-02-04 --campaign c1 ...), each pinned here:

1. people who are only tagged in others' photos were sent "What is used: your
   public posts, ..." (they had none), and were told under `meta-2024`, which
   uses nothing of theirs that a notice could change;
2. in-app notices were served, and acknowledged as `notified`, after the point
   where they could still give the notice period; objectors were still listed;
3. a second campaign with the same policy and cut-off re-told everyone, silently;
4. the cut-off suggested by a refusal was itself refused; a past cut-off was
   called "less than 30 days away";
5. `--rate -5`, `--connections 0` and `--connections 100000` were taken;
6. people in a consent jurisdiction were offered only an objection link.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from cli_kit import cli, ok
from consentry.errors import InputError
from consentry.i18n import gettext
from consentry.ledger import Ledger, NewEvent
from consentry.notices.audience import audience
from consentry.notices.campaign import Campaign, check_cutoff
from consentry.notices.tables import campaigns as campaigns_table
from consentry.notices.tables import outbox as outbox_table
from consentry.notices.text import render_notice
from consentry.policy import Policy, load_policy
from consentry.sources import Export
from consentry.timeutil import iso, parse_instant, to_micros
from exportkit import item, user, write_export
from test_notices import BASE_URL, PIXGRAM, SECRET, WHO, home, led, notified  # noqa: F401 - fixtures

T = parse_instant("2030-01-01T00:00:00Z")
#: "What is used: your public ..." and "Public photos of you that others posted", as the German notice says them.
DE_OWN, DE_PHOTOS = "Was verwendet wird: Ihre öffentlichen", "Öffentliche Fotos von Ihnen, die andere veröffentlicht haben"
LINK = f"{BASE_URL}/o/TOKEN"


# -- 1. what is true for each person ------------------------------------------------------------------

USERS = [
    user("author"),  # posts a public photo that shows `tagged_only` and `both`
    user("tagged_only"),  # only a friends-only comment of her own; tagged in author's public photo
    user("both"),  # a public post of her own, and tagged in author's photo
    user("own_only"),  # a public post, tagged nowhere
    user("objector"),  # objected (Europe honours it): her photo is never used
    user("in_objectors_photo"),  # tagged only in the objector's photo
    user("self_tagged"),  # tags herself in her own photo: that is her own content
]
CONTENT = [
    item("author-photo", "author", kind="photo"),
    item("tagged-only-comment", "tagged_only", kind="comment", visibility="friends"),
    item("both-post", "both"),
    item("own-post", "own_only"),
    item("objector-photo", "objector", kind="photo"),
    item("self-photo", "self_tagged", kind="photo"),
]
TAGS = [
    {"item_id": "author-photo", "tagged_user_id": "tagged_only"},
    {"item_id": "author-photo", "tagged_user_id": "both"},
    {"item_id": "objector-photo", "tagged_user_id": "in_objectors_photo"},
    {"item_id": "self-photo", "tagged_user_id": "self_tagged"},
]


@pytest.fixture
def tagged_world(tmp_path: Path, led: Ledger) -> Path:
    led.append([NewEvent(user_id="objector", type="objected", at="2024-01-01T00:00:00Z", channel="web")])
    return write_export(tmp_path / "export", USERS, CONTENT, TAGS)


def _scopes(rows: list[dict]) -> dict[str, tuple[bool, bool]]:
    return {r["user_id"]: (r["own_content"], r["in_others_photos"]) for r in rows}


def test_the_audience_knows_whose_own_content_and_whose_photos_are_used(tagged_world, led) -> None:
    rows = audience(Export(tagged_world), led, load_policy("recommended"), T).to_pylist()
    assert _scopes(rows) == {
        "author": (True, False),
        "tagged_only": (False, True),
        "both": (True, True),
        "own_only": (True, False),
        "self_tagged": (True, False),
        # the objector's photo is never used, so nothing of `in_objectors_photo` is: not told
    }


def test_under_meta_2024_nobody_is_told_for_photos_of_them_alone(tagged_world, led) -> None:
    """meta-2024 ignores the people in photos: telling them changes nothing that is used."""
    rows = audience(Export(tagged_world), led, load_policy("meta-2024"), T).to_pylist()
    got = _scopes(rows)
    assert "tagged_only" not in got and "in_objectors_photo" not in got
    assert got["both"] == (True, True) and got["author"] == (True, False)


def test_under_require_a_photo_that_a_co_tagged_minor_keeps_out_tells_nobody(tmp_path, led) -> None:
    """Under `tagged_people: require` a photo is used only if everyone in it passes the person
    rules: one that tags a minor (or someone who objected) is never used, so it makes neither
    its author nor the others in it part of the audience for photos ("Public photos of you that
    others posted" was said to the adult beside the minor, and "your public posts" to an author
    whose only public item was that photo)."""
    users = [user("author"), user("adult"), user("kid", birth_date="2020-01-01"), user("friend"),
             user("objector2"), user("beside_objector")]
    content = [item("group-photo", "author", kind="photo"), item("friend-photo", "friend", kind="photo"),
               item("objector-tag-photo", "friend", kind="photo")]
    tags = [{"item_id": "group-photo", "tagged_user_id": "adult"},
            {"item_id": "group-photo", "tagged_user_id": "kid"},
            {"item_id": "friend-photo", "tagged_user_id": "adult"},
            {"item_id": "objector-tag-photo", "tagged_user_id": "objector2"},
            {"item_id": "objector-tag-photo", "tagged_user_id": "beside_objector"}]
    led.append([NewEvent(user_id="objector2", type="objected", at="2024-01-01T00:00:00Z", channel="web")])
    export = write_export(tmp_path / "export", users, content, tags)
    got = _scopes(audience(Export(export), led, load_policy("recommended"), T).to_pylist())
    # the author's only public item is the group photo, which the kid keeps out: nothing of hers is used
    assert "author" not in got, got
    # the adult is also in the friend's photo, which is used: told for photos of her
    assert got["adult"] == (False, True), got
    # the friend's own photo is used (the other one, with the objector in it, is not): told as before
    assert got["friend"] == (True, False), got
    assert "beside_objector" not in got and "kid" not in got and "objector2" not in got, got
    # under `ignore` photos are used whoever is in them: the author's photo is her own content
    base = load_policy("recommended").model_dump(mode="json")
    ignore = Policy.model_validate({**base, "name": "tagged-ignore", "tagged_people": "ignore"})
    assert _scopes(audience(Export(export), led, ignore, T).to_pylist())["author"] == (True, False)


def _flat(s: str) -> str:
    return " ".join(s.split())


@pytest.mark.parametrize("scope", ["own", "tagged", "both"])
def test_the_notice_says_what_is_used_of_this_person(scope) -> None:
    pol = load_policy("recommended")
    subject, text, html = render_notice(gettext("en"), pol, T, LINK, "Pixgram", "europe", PIXGRAM, scope=scope)
    text = _flat(text)
    own_line = "What is used: your public posts"
    photos_line = "Public photos of you that others posted: used only if the same rules allow it"
    assert (own_line in text) == (scope != "tagged"), text
    assert (photos_line in text) == (scope != "own"), text
    assert ("your public posts" in subject) == (scope != "tagged"), subject
    if scope == "tagged":
        assert "photos of you" in subject and "everything you ever posted" not in text
    assert LINK in text and f'href="{LINK}"' in html


def test_the_notice_follows_the_policys_rule_for_tagged_people() -> None:
    base = load_policy("recommended").model_dump(mode="json")
    for rule, words in (("blur", "used with your face blurred, unless the same rules allow it"),
                        ("ignore", "may be used whatever you choose")):
        pol = Policy.model_validate({**base, "name": f"tagged-{rule}", "tagged_people": rule})
        _s, text, _h = render_notice(gettext("en"), pol, T, LINK, "Pixgram", "europe", PIXGRAM, scope="both")
        assert words in _flat(text), (rule, text)


def test_each_person_is_shown_the_text_of_their_own_scope_in_app(tagged_world, led) -> None:
    """The campaign keeps each person's scope with their notice: in-app notices
    (and mails, when the sender passes the row's scope) say what is true for them."""
    pol = load_policy("recommended")
    camp = Campaign.open(led, "scoped", pol, T)
    camp.plan(Export(tagged_world), pol, channels=("in_app",))
    texts = {r["user_id"]: _flat(r["text"]) for r in camp.in_app_notices(pol, secret=SECRET, base_url=BASE_URL,
                                                                         controller=PIXGRAM)}
    assert DE_OWN not in texts["tagged_only"] and DE_PHOTOS in texts["tagged_only"]  # the export's people read German
    assert DE_PHOTOS not in texts["own_only"] and DE_OWN in texts["own_only"]


def test_the_texts_of_a_campaign_differ_per_scope(tagged_world, led) -> None:
    pol = load_policy("recommended")
    camp = Campaign.open(led, "scoped", pol, T)
    who = ("Pixgram", PIXGRAM)
    own = camp._texts("en", "europe", pol, BASE_URL, who)
    tagged = camp._texts("en", "europe", pol, BASE_URL, who, scope="tagged")
    assert own != tagged and "photos of you" in tagged[0]


# -- 2. in-app notices after the notice deadline, and people who objected since ----------------------


@pytest.fixture
def inapp_campaign(tmp_path: Path, led: Ledger) -> tuple[Path, Campaign]:
    ids = ["ann", "ben", "cat", "dan"]
    export = write_export(tmp_path / "export", [user(u) for u in ids], [item(f"i-{u}", u) for u in ids])
    pol = load_policy("recommended")
    cutoff = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    camp = Campaign.open(led, "late", pol, cutoff)
    camp.plan(Export(export), pol, channels=("in_app",))
    return export, camp


def _move_cutoff(led: Ledger, campaign: str, cutoff: datetime) -> Campaign:
    with led.engine.begin() as conn:
        conn.execute(update(campaigns_table).where(campaigns_table.c.campaign_id == campaign)
                     .values(cutoff_us=to_micros(cutoff)))
    return Campaign(led, campaign)


def test_in_app_notices_past_the_notice_deadline_are_not_served_nor_counted(home, tmp_path, led, inapp_campaign) -> None:
    pol = load_policy("recommended")
    # Time passes: the cut-off is now less than 30 days away (as 70 s later in the trial).
    camp = _move_cutoff(led, "late", datetime.now(UTC) + timedelta(days=30) - timedelta(seconds=5))
    assert list(camp.in_app_notices(pol, secret=SECRET, base_url=BASE_URL, controller=PIXGRAM)) == []
    done = camp.acknowledge(["late:ann:in_app", "late:ben:in_app"])
    assert done.shown == 0 and sorted(done.too_late_keys) == ["late:ann:in_app", "late:ben:in_app"]
    assert notified(led) == []

    r = cli("notices", "inapp", "late", "--ledger", led.url, *WHO)
    assert r.exit_code == 0 and r.stdout == "", r.output
    assert "4 in-app notices" in _flat(r.stderr) and "30 days" in r.stderr, r.stderr
    shown = tmp_path / "shown.jsonl"
    shown.write_text(json.dumps({"dedupe_key": "late:cat:in_app"}) + "\n")
    r = cli("notices", "ack", "late", shown, "--ledger", led.url)
    err = _flat(r.stderr)
    assert r.exit_code == 2 and "too late" in err and "30 days" in err and "no `notified` event" in err, r.output
    assert notified(led) == []


def test_in_app_notices_leave_out_people_who_objected_or_asked_for_erasure_since(home, led, inapp_campaign) -> None:
    pol = load_policy("recommended")
    now = datetime.now(UTC) - timedelta(seconds=1)
    led.append([NewEvent(user_id="ann", type="objected", at=now, channel="web"),
                NewEvent(user_id="ben", type="erasure_requested", at=now, channel="web")])
    camp = Campaign(led, "late")
    got = sorted(r["user_id"] for r in camp.in_app_notices(pol, secret=SECRET, base_url=BASE_URL, controller=PIXGRAM))
    assert got == ["cat", "dan"]
    r = ok(cli("notices", "inapp", "late", "--ledger", led.url, *WHO))
    assert sorted(json.loads(x)["user_id"] for x in r.stdout.splitlines()) == ["cat", "dan"]
    assert "objected" in r.stderr and "erasure" in r.stderr, r.stderr


# -- 3. a second campaign with the same notice ---------------------------------------------------------


def test_a_second_campaign_with_the_same_policy_and_cutoff_does_not_tell_people_again(home, tmp_path, led) -> None:
    ids = ["ann", "ben", "cat"]
    export = write_export(tmp_path / "export", [user(u) for u in ids], [item(f"i-{u}", u) for u in ids])
    pol = load_policy("recommended")
    c1 = Campaign.open(led, "c1", pol, T)
    c1.plan(Export(export), pol, channels=("in_app",))
    c1.acknowledge(["c1:ann:in_app", "c1:ben:in_app"])  # ann and ben were told; cat not yet

    r = ok(cli("notify", "--data", export, "--cutoff", iso(T), "--campaign", "c2", "--dry-run", "--ledger", led.url))
    out = _flat(r.stdout)
    assert "Would notify 1 person" in out, out
    assert "2 people were already notified for this cut-off and policy (campaign c1)" in out, out
    assert "--renotify" in out

    c2 = Campaign.open(led, "c2", pol, T)
    plan = c2.plan(Export(export), pol, channels=("in_app",))
    assert (plan.people, plan.already_notified, plan.added) == (1, 2, 1)
    c3 = Campaign.open(led, "c3", pol, T)
    plan = c3.plan(Export(export), pol, channels=("in_app",), renotify=True)
    assert (plan.people, plan.added) == (3, 3)
    # Another cut-off is another notice: everyone is told.
    c4 = Campaign.open(led, "c4", pol, T + timedelta(days=1))
    assert c4.plan(Export(export), pol, channels=("in_app",)).people == 3


# -- 4. the suggested cut-off passes; a past one is called past ---------------------------------------


def test_the_suggested_cutoff_is_accepted() -> None:
    pol = load_policy("recommended")
    for early in (timedelta(days=30) - timedelta(hours=1), timedelta(days=29, hours=23, minutes=59), timedelta(days=3)):
        with pytest.raises(InputError) as exc:
            check_cutoff(pol, datetime.now(UTC) + early)
        [suggested] = re.findall(r"on or after (\S+)", str(exc.value.fix))
        check_cutoff(pol, parse_instant(suggested.rstrip(".,)"), what="cut-off"))  # refused no more


def test_a_cutoff_in_the_past_is_called_past() -> None:
    with pytest.raises(InputError) as exc:
        check_cutoff(load_policy("recommended"), parse_instant("2024-06-26T00:00:00Z"))
    assert "is in the past" in str(exc.value) and "less than" not in str(exc.value)


def test_each_person_is_mailed_the_text_of_their_own_scope(tagged_world, led, server) -> None:
    """Finding (trial): a person with only photos of her posted by others was
    mailed "How Pixgram will use your public posts ..." and "What is used: your
    public posts, photos, ...", though she had none; the photos of her were
    never mentioned. The mail follows the scope kept with her notice."""
    from test_notices import mailer_for

    users = {u["user_id"]: u for u in USERS}
    pol = load_policy("recommended")
    camp = Campaign.open(led, "mailed", pol, T)
    camp.plan(Export(tagged_world), pol, channels=("email",))
    summary = camp.send_mail(mailer_for(server), pol, secret=SECRET, base_url=BASE_URL, controller=PIXGRAM)
    assert summary.sent == 5 and summary.stopped is None, summary
    mails = {m.rcpt_tos[0]: m.message for m in server.messages}

    def text_of(uid: str) -> str:
        part = mails[users[uid]["email"]].get_body(("plain",))
        return _flat(part.get_content())

    assert DE_OWN not in text_of("tagged_only") and DE_PHOTOS in text_of("tagged_only")  # they read German
    assert "Ihre öffentlichen Beiträge" not in mails[users["tagged_only"]["email"]]["Subject"]
    assert DE_OWN in text_of("own_only") and DE_PHOTOS not in text_of("own_only")
    assert DE_OWN in text_of("both") and DE_PHOTOS in text_of("both")


# -- 5. option values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--rate", "-5", "--rate must be 0 (no limit) or more"),
    ("--rate", "nan", "--rate must be 0 (no limit) or more"),
    ("--connections", "0", "--connections must be between 1 and 64"),
    ("--connections", "100000", "--connections must be between 1 and 64"),
])
def test_bad_rate_or_connections_are_refused(home, tmp_path, led, server, option, value, words) -> None:
    export = write_export(tmp_path / "export", [user("ann")], [item("i-ann", "ann")])
    smtp_url = f"smtp://{server.host}:{server.port}?sender=privacy@example.org"
    for extra in ([], ["--dry-run"]):
        r = cli("notify", "--data", export, "--cutoff", iso(T), "--campaign", "opt", "--smtp", smtp_url,
                "--ledger", led.url, option, value, *WHO, *extra)
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        err = _flat(r.stderr)
        assert words in err and "fix:" in err, err
    with led.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(campaigns_table)).scalar_one() == 0
    assert server.messages == []


# -- 6. consent jurisdictions ------------------------------------------------------------------------


def _consent_policy() -> Policy:
    data = load_policy("recommended").model_dump(mode="json")
    data["name"] = "europe-opt-in"
    data["jurisdictions"][0]["basis"] = "consent"
    return Policy.model_validate(data)


def test_in_a_consent_jurisdiction_the_notice_says_how_to_say_yes_not_only_how_to_object() -> None:
    pol = _consent_policy()
    subject, text, html = render_notice(gettext("de"), pol, T, LINK, "Pixgram", "europe", PIXGRAM)
    flat = _flat(text)
    assert "Wir stützen uns auf Ihre Einwilligung" in flat
    assert "Sie können jederzeit mit einem Klick widersprechen" not in flat
    assert LINK not in text and LINK not in html  # no objection link as the one action
    assert f"{BASE_URL}/" in text and f'href="{BASE_URL}/"' in html  # where to sign in and say yes
    assert "widersprechen" not in subject
    _s, en, _h = render_notice(gettext("en"), pol, T, LINK, "Pixgram", "europe", PIXGRAM)
    assert "To say yes, sign in at" in _flat(en), en
    # The rest of the world keeps its objection link.
    _s, other, _h = render_notice(gettext("en"), pol, T, LINK, "Pixgram", "rest_of_world", PIXGRAM)
    assert LINK in other and "To say yes" not in other
