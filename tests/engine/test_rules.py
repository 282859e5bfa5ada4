"""Each rule of CONTRACT §3, its boundaries and its place in the order."""

from __future__ import annotations

import pytest

from consentry.policy import load_policy, parse_policy, preset_text
from consentry.timeutil import parse_instant
from decide_helpers import ev, reasons
from exportkit import item, user

NOTIFIED = "2024-05-01T00:00:00Z"  # well before T - 30 days


@pytest.fixture
def run(tmp_path, ledger, cutoff):
    def _run(users, content, tags=None, events=None, policy="recommended", at=cutoff, notify=True):
        events = list(events or [])
        if notify:
            events = [ev(u["user_id"], "notified", NOTIFIED) for u in users] + events
        return reasons(tmp_path / "export", ledger, at, users, content, tags, events, policy)

    return _run


# -- item rules ------------------------------------------------------------------------


@pytest.mark.slow
def test_eligible_baseline(run):
    assert run([user("u1")], [item("i1", "u1")]) == {"i1": "eligible"}


@pytest.mark.slow
def test_rule1_private_message_beats_everything(run):
    # private, after the cut-off, deleted, by a minor: still reported as private_message
    got = run(
        [user("u1", birth_date="2015-01-01")],
        [item("i1", "u1", kind="private_message", visibility="private", created_at="2025-01-01T00:00:00Z",
              deleted_at="2025-02-01T00:00:00Z")],
    )
    assert got == {"i1": "private_message"}


def test_policy_allowing_private_messages_is_refused():
    text = preset_text("recommended").replace("kinds: [post,", "kinds: [private_message, post,")
    with pytest.raises(Exception, match="private_message can never be used"):
        parse_policy(text)


@pytest.mark.slow
def test_rule2_kind_not_allowed_and_listed_other_kinds(run, tmp_path):
    content = [item("i1", "u1", kind="video"), item("i2", "u1", kind="reel")]
    assert run([user("u1")], content) == {"i1": "kind_not_allowed", "i2": "kind_not_allowed"}
    text = preset_text("recommended").replace("kinds: [post,", "kinds: [video, post,")
    custom = parse_policy(text)
    got = reasons(tmp_path / "e2", __import__("consentry.ledger", fromlist=["Ledger"]).Ledger(
        f"sqlite:///{tmp_path/'l2.db'}"), parse_instant("2024-06-26T00:00:00Z"),
        [user("u1")], content, events=[ev("u1", "notified", NOTIFIED)], policy=custom)
    assert got == {"i1": "eligible", "i2": "kind_not_allowed"}


@pytest.mark.slow
@pytest.mark.parametrize("visibility", ["friends", "private", "followers"])
def test_rule3_only_exactly_public(run, visibility):
    # "Public" (another spelling of the contract's own value) is refused by validation now: it used to be
    # decided not_public without a word (tests/sources/test_export_trial_fixes.py).
    assert run([user("u1")], [item("i1", "u1", visibility=visibility)]) == {"i1": "not_public"}


@pytest.mark.slow
def test_rule4_after_cutoff_boundary(run):
    got = run(
        [user("u1")],
        [
            item("at", "u1", created_at="2024-06-26T00:00:00Z"),
            item("after", "u1", created_at="2024-06-26T00:00:00.000001Z"),
        ],
    )
    assert got == {"at": "eligible", "after": "after_cutoff"}


@pytest.mark.slow
def test_rule5_content_deleted_boundary(run):
    got = run(
        [user("u1")],
        [
            item("at", "u1", deleted_at="2024-06-26T00:00:00Z"),
            item("later", "u1", deleted_at="2024-06-26T00:00:01Z"),
        ],
    )
    assert got == {"at": "content_deleted", "later": "eligible"}


# -- person rules -----------------------------------------------------------------------


@pytest.mark.slow
def test_rule6_account_deleted_and_erasure(run):
    users = [
        user("gone", deleted_at="2024-06-26T00:00:00Z"),
        user("later", deleted_at="2024-07-01T00:00:00Z"),
        user("erased"),
        user("erased_later"),
    ]
    content = [item(f"i_{u['user_id']}", u["user_id"]) for u in users]
    events = [
        ev("erased", "erasure_requested", "2024-06-26T00:00:00Z"),
        ev("erased_later", "erasure_requested", "2024-06-26T00:00:01Z"),
    ]
    assert run(users, content, events=events) == {
        "i_gone": "account_deleted",
        "i_later": "eligible",
        "i_erased": "account_deleted",
        "i_erased_later": "eligible",
    }


@pytest.mark.slow
def test_rule7_age_unknown(run):
    assert run([user("u1", birth_date=None)], [item("i1", "u1")]) == {"i1": "age_unknown"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        ("2006-06-26", "eligible"),  # 18 from 2024-06-26T00:00:00Z (the contract's example)
        ("2006-06-27", "minor"),  # one day short
        ("2006-06-25", "eligible"),
    ],
)
def test_rule8_minor_boundary(run, birth, expected):
    got = run([user("u1", birth_date=birth)], [item("i1", "u1", created_at="2024-06-26T00:00:00Z")])
    assert got == {"i1": expected}


@pytest.mark.slow
def test_rule8_leap_day_birthday_comes_of_age_on_1_march(run):
    users = [user("leap", birth_date="2008-02-29", country="US")]
    content = [item("i1", "leap", created_at="2020-01-01T00:00:00Z", kind="post")]
    for at, expected in [("2026-02-28T23:59:59Z", "minor"), ("2026-03-01T00:00:00Z", "eligible")]:
        got = run(users, content, policy="meta-2024", at=parse_instant(at), notify=False)
        assert got == {"i1": expected}, at


@pytest.mark.slow
def test_rule8_minimum_age_from_policy(run):
    text = preset_text("recommended").replace("minimum_age: 18", "minimum_age: 21")
    got = run([user("u1", birth_date="2004-01-01")], [item("i1", "u1", created_at="2024-01-01T00:00:00Z")],
              policy=parse_policy(text))
    assert got == {"i1": "minor"}


@pytest.mark.slow
def test_rule9_minor_at_posting_is_a_policy_switch(run):
    users = [user("u1", birth_date="2005-01-01")]  # 19 at T, 17 in 2022
    content = [item("young", "u1", created_at="2022-06-01T00:00:00Z"), item("adult", "u1", created_at="2023-01-01T00:00:00Z")]
    assert run(users, content) == {"young": "minor_at_posting", "adult": "eligible"}
    assert run(users, content, policy="meta-2024") == {"young": "eligible", "adult": "eligible"}


@pytest.mark.slow
def test_rule10_consent_in_consent_jurisdictions(run):
    users = [user(u) for u in ("none", "given", "withdrawn", "regiven", "future")]
    content = [item(f"i_{u['user_id']}", u["user_id"]) for u in users]
    events = [
        ev("given", "consent_given", "2024-01-01T00:00:00Z"),
        ev("withdrawn", "consent_given", "2024-01-01T00:00:00Z"),
        ev("withdrawn", "consent_withdrawn", "2024-06-26T00:00:00Z"),
        ev("regiven", "consent_given", "2024-01-01T00:00:00Z"),
        ev("regiven", "consent_withdrawn", "2024-02-01T00:00:00Z"),
        ev("regiven", "consent_given", "2024-03-01T00:00:00Z"),
        ev("future", "consent_given", "2024-06-26T00:00:01Z"),
    ]
    assert run(users, content, events=events, policy="consent-only") == {
        "i_none": "no_consent",
        "i_given": "eligible",
        "i_withdrawn": "no_consent",
        "i_regiven": "eligible",
        "i_future": "no_consent",
    }
    # legitimate interest jurisdictions do not look at consent
    assert set(run(users, content, events=events).values()) == {"eligible"}


@pytest.mark.slow
def test_rule11_objection_states(run):
    users = [user(u) for u in ("obj", "withdrawn", "rejected", "future", "again")]
    content = [item(f"i_{u['user_id']}", u["user_id"]) for u in users]
    events = [
        ev("obj", "objected", "2024-06-26T00:00:00Z"),  # at exactly T counts
        ev("withdrawn", "objected", "2024-06-01T00:00:00Z"),
        ev("withdrawn", "objection_withdrawn", "2024-06-10T00:00:00Z"),
        ev("rejected", "objected", "2024-06-01T00:00:00Z"),
        ev("rejected", "objection_rejected", "2024-06-02T00:00:00Z"),
        ev("future", "objected", "2024-06-26T00:00:01Z"),
        ev("again", "objected", "2024-06-01T00:00:00Z"),
        ev("again", "objection_withdrawn", "2024-06-02T00:00:00Z"),
        ev("again", "objected", "2024-06-03T00:00:00Z"),
    ]
    assert run(users, content, events=events) == {
        "i_obj": "objected",
        "i_withdrawn": "eligible",
        "i_rejected": "eligible",
        "i_future": "eligible",
        "i_again": "objected",
    }


@pytest.mark.slow
def test_rule11_withdrawal_after_cutoff_does_not_count(run):
    events = [ev("u1", "objected", "2024-06-01T00:00:00Z"), ev("u1", "objection_withdrawn", "2024-06-27T00:00:00Z")]
    assert run([user("u1")], [item("i1", "u1")], events=events) == {"i1": "objected"}


@pytest.mark.slow
def test_rule11_objection_applies_to_content_posted_before_it(run):
    """Not 'from then on': an objection excludes old content too."""
    events = [ev("u1", "objected", "2024-06-20T00:00:00Z")]
    got = run([user("u1")], [item("old", "u1", created_at="2012-01-01T00:00:00Z")], events=events)
    assert got == {"old": "objected"}


@pytest.mark.slow
def test_ties_at_the_same_instant_go_by_ledger_order(run):
    same = "2024-06-10T12:00:00Z"
    events = [
        ev("a", "objected", same, event_id="a1"),
        ev("a", "objection_withdrawn", same, event_id="a2"),
        ev("b", "objection_withdrawn", same, event_id="b1"),
        ev("b", "objected", same, event_id="b2"),
    ]
    users = [user("a"), user("b")]
    got = run(users, [item("ia", "a"), item("ib", "b")], events=events)
    assert got == {"ia": "eligible", "ib": "objected"}


@pytest.mark.slow
def test_rule11_objections_not_honoured_outside_europe_in_meta_2024(run):
    users = [user("us", country="US"), user("de", country="DE")]
    events = [ev("us", "objected", "2024-06-01T00:00:00Z"), ev("de", "objected", "2024-06-01T00:00:00Z")]
    content = [item("i_us", "us"), item("i_de", "de")]
    assert run(users, content, events=events, policy="meta-2024") == {"i_us": "eligible", "i_de": "objected"}
    assert run(users, content, policy="recommended") == {"i_us": "objected", "i_de": "objected"}


@pytest.mark.slow
def test_rule10_consent_then_objection_is_objected(run):
    events = [ev("u1", "consent_given", "2024-01-01T00:00:00Z"), ev("u1", "objected", "2024-06-01T00:00:00Z")]
    assert run([user("u1")], [item("i1", "u1")], events=events, policy="consent-only") == {"i1": "objected"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("notified", "expected"),
    [
        ("2024-05-27T00:00:00Z", "eligible"),  # exactly T - 30 days
        ("2024-05-27T00:00:01Z", "not_notified"),
        ("2024-06-20T00:00:00Z", "not_notified"),
        (None, "not_notified"),
    ],
)
def test_rule12_notice_period_boundary(run, notified, expected):
    events = [ev("u1", "notified", notified)] if notified else []
    got = run([user("u1")], [item("i1", "u1")], events=events, notify=False)
    assert got == {"i1": expected}


@pytest.mark.slow
def test_rule12_a_late_second_notice_does_not_undo_an_early_one(run):
    events = [ev("u1", "notified", "2024-05-01T00:00:00Z"), ev("u1", "notified", "2024-06-20T00:00:00Z")]
    assert run([user("u1")], [item("i1", "u1")], events=events, notify=False) == {"i1": "eligible"}


@pytest.mark.slow
def test_rule12_no_notice_needed_outside_europe_in_meta_2024(run):
    users = [user("us", country="US"), user("fr", country="FR"), user("nowhere", country=None)]
    content = [item("i_us", "us"), item("i_fr", "fr"), item("i_nowhere", "nowhere")]
    assert run(users, content, policy="meta-2024", notify=False) == {
        "i_us": "eligible",
        "i_fr": "not_notified",
        "i_nowhere": "eligible",
    }


@pytest.mark.parametrize("country", ["IS", "LI", "NO", "GB", "CH", "DE", "GR", "CY"])
def test_europe_covers_eea_uk_and_switzerland(country):
    assert load_policy("meta-2024").jurisdiction_for(country).name == "europe"
    assert load_policy("meta-2024").jurisdiction_for("US").name == "rest_of_world"


@pytest.mark.slow
def test_rule13_content_window(run):
    text = preset_text("recommended").replace("content_since: null", "content_since: 2020-01-01")
    content = [item("old", "u1", created_at="2019-12-31T23:59:59Z"), item("new", "u1", created_at="2020-01-01T00:00:00Z")]
    assert run([user("u1")], content, policy=parse_policy(text)) == {"old": "before_window", "new": "eligible"}


# -- tagged people ----------------------------------------------------------------------


def _tag_case():
    users = [
        user("author"),
        user("ok"),
        user("kid", birth_date="2012-01-01"),
        user("objector"),
        user("unknown_age", birth_date=None),
        user("teen_then", birth_date="2005-01-01"),
    ]
    content = [
        item(name, "author", kind="photo", created_at="2022-06-01T00:00:00Z")
        for name in ("p_ok", "p_kid", "p_obj", "p_unknown", "p_teen_then", "p_mixed", "p_none")
    ]
    tags = [
        {"item_id": "p_ok", "tagged_user_id": "ok"},
        {"item_id": "p_kid", "tagged_user_id": "kid"},
        {"item_id": "p_obj", "tagged_user_id": "objector"},
        {"item_id": "p_unknown", "tagged_user_id": "unknown_age"},
        {"item_id": "p_teen_then", "tagged_user_id": "teen_then"},
        {"item_id": "p_mixed", "tagged_user_id": "ok"},
        {"item_id": "p_mixed", "tagged_user_id": "kid"},
    ]
    events = [ev("objector", "objected", "2024-06-01T00:00:00Z")]
    return users, content, tags, events


@pytest.mark.slow
def test_rule14_tagged_people_must_pass_person_rules(run):
    users, content, tags, events = _tag_case()
    assert run(users, content, tags, events) == {
        "p_ok": "eligible",
        "p_kid": "tagged_person",
        "p_obj": "tagged_person",
        "p_unknown": "tagged_person",
        "p_teen_then": "tagged_person",  # 17 when the photo was taken
        "p_mixed": "tagged_person",
        "p_none": "eligible",
    }


@pytest.mark.slow
def test_rule14_meta_2024_ignores_tagged_people(run):
    users, content, tags, events = _tag_case()
    assert set(run(users, content, tags, events, policy="meta-2024").values()) == {"eligible"}


@pytest.mark.slow
def test_rule14_blur_keeps_items_and_marks_them(tmp_path, ledger, cutoff):
    from consentry.engine import decide
    from consentry.sources import Export

    users, content, tags, events = _tag_case()
    blur = parse_policy(preset_text("recommended").replace("tagged_people: require", "tagged_people: blur"))
    reasons(tmp_path / "x", ledger, cutoff, users, content, tags,
            events + [ev(u["user_id"], "notified", NOTIFIED) for u in users], blur)
    rows = decide(Export(tmp_path / "x"), ledger, blur, cutoff).fetchall()
    got = {r[0]: (r[3], r[4]) for r in rows}
    assert got["p_ok"] == ("eligible", False)
    assert got["p_kid"] == ("eligible", True)
    assert got["p_mixed"] == ("eligible", True)
    assert got["p_none"] == ("eligible", False)
    # A README walk-through: evaluate's summary did not say how many are usable only blurred; it counts them.
    from consentry.engine import evaluate

    e = evaluate(Export(tmp_path / "x"), ledger, blur, cutoff, tmp_path / "d.parquet")
    assert e.blurred == sum(1 for r in rows if r[4]) >= 2 and e.eligible == sum(1 for r in rows if r[3] == "eligible")
    assert evaluate(Export(tmp_path / "x"), ledger, parse_policy(preset_text("recommended")), cutoff,
                    tmp_path / "r.parquet").blurred is None


def tp(item_id: str, type_: str, at: str, **kw):
    from consentry.ledger import NewEvent

    note = "the requester is not in this photo" if type_ == "third_party_dismissed" else None
    return NewEvent(item_id=item_id, type=type_, at=at, note=note, **kw)


@pytest.mark.slow
def test_rule15_third_party_objection_protects_at_once(run):
    content = [item("obj", "u1", kind="photo"), item("dis", "u1", kind="photo"), item("again", "u1", kind="photo"),
               item("late", "u1", kind="photo"), item("at_t", "u1", kind="photo"), item("free", "u1", kind="photo")]
    events = [
        tp("obj", "third_party_objected", "2024-06-01T00:00:00Z"),
        tp("dis", "third_party_objected", "2024-06-01T00:00:00Z"),
        tp("dis", "third_party_dismissed", "2024-06-02T00:00:00Z"),
        tp("again", "third_party_objected", "2024-06-01T00:00:00Z"),
        tp("again", "third_party_dismissed", "2024-06-02T00:00:00Z"),
        tp("again", "third_party_objected", "2024-06-03T00:00:00Z"),  # another requester, later
        tp("late", "third_party_objected", "2024-06-26T00:00:00.000001Z"),  # after T: not yet
        tp("at_t", "third_party_objected", "2024-06-26T00:00:00Z"),  # exactly T counts
    ]
    assert run([user("u1")], content, events=events) == {
        "obj": "third_party_objected", "dis": "eligible", "again": "third_party_objected",
        "late": "eligible", "at_t": "third_party_objected", "free": "eligible",
    }


@pytest.mark.slow
def test_rule15_ties_at_the_same_instant_go_by_ledger_order(run):
    at = "2024-06-10T00:00:00Z"
    events = [
        tp("a", "third_party_objected", at), tp("a", "third_party_dismissed", at),  # dismissed last: free
        tp("b", "third_party_dismissed", at), tp("b", "third_party_objected", at),  # objected last: out
    ]
    got = run([user("u1")], [item("a", "u1", kind="photo"), item("b", "u1", kind="photo")], events=events)
    assert got == {"a": "eligible", "b": "third_party_objected"}


@pytest.mark.slow
def test_rule15_comes_after_rule14_and_is_a_policy_switch(run, tmp_path, ledger, cutoff):
    users, content, tags, events = _tag_case()
    events = events + [tp(c["item_id"], "third_party_objected", "2024-06-01T00:00:00Z") for c in content]
    got = run(users, content, tags, events)
    assert got["p_kid"] == "tagged_person" and got["p_ok"] == "third_party_objected"
    assert set(run(users, content, tags, [], policy="meta-2024").values()) == {"eligible"}
    ignore = parse_policy(
        preset_text("recommended").replace("honour_third_party_objections: true", "honour_third_party_objections: false")
    )
    assert ignore.hash != load_policy("recommended").hash
    assert run(users, content, tags, [], policy=ignore)["p_ok"] == "eligible"


@pytest.mark.slow
def test_rule15_holds_when_tagged_people_are_ignored(run):
    """Third-party objections ride in the tagged-items join when tags are
    checked; with `tagged_people: ignore` there is no such join, and rule 15
    must still hold on its own."""
    users, content, tags, events = _tag_case()
    events = events + [tp("p_ok", "third_party_objected", "2024-06-01T00:00:00Z")]
    ignore_tags = parse_policy(preset_text("recommended").replace("tagged_people: require", "tagged_people: ignore"))
    got = run(users, content, tags, events, policy=ignore_tags)
    assert got["p_ok"] == "third_party_objected" and got["p_kid"] == "eligible"


@pytest.mark.slow
def test_rule15_under_blur_keeps_the_item_with_faces_blurred(tmp_path, ledger, cutoff):
    from consentry.engine import decide
    from consentry.sources import Export

    blur = parse_policy(preset_text("recommended").replace("tagged_people: require", "tagged_people: blur"))
    reasons(tmp_path / "x", ledger, cutoff, [user("u1")], [item("p", "u1", kind="photo"), item("q", "u1", kind="photo")],
            events=[ev("u1", "notified", NOTIFIED), tp("p", "third_party_objected", "2024-06-01T00:00:00Z")], policy=blur)
    got = {r[0]: (r[3], r[4]) for r in decide(Export(tmp_path / "x"), ledger, blur, cutoff).fetchall()}
    assert got == {"p": ("eligible", True), "q": ("eligible", False)}


def test_third_party_events_are_well_formed():
    from consentry.ledger import NewEvent

    with pytest.raises(ValueError, match="leave user_id out"):
        NewEvent(user_id="u1", item_id="p", type="third_party_objected", at="2024-06-01T00:00:00Z")
    with pytest.raises(ValueError, match="needs the item_id"):
        NewEvent(type="third_party_objected", at="2024-06-01T00:00:00Z")
    with pytest.raises(ValueError, match="giving the grounds"):
        NewEvent(item_id="p", type="third_party_dismissed", at="2024-06-01T00:00:00Z")
    with pytest.raises(ValueError, match="only for third_party"):
        NewEvent(user_id="u1", item_id="p", type="objected", at="2024-06-01T00:00:00Z")


@pytest.mark.slow
def test_author_rules_come_before_tagged_rule(run):
    users, content, tags, events = _tag_case()
    users[0] = user("author", birth_date=None)
    assert set(run(users, content, tags, events).values()) == {"age_unknown"}


# -- the order ----------------------------------------------------------------------------


@pytest.mark.slow
def test_first_failed_rule_wins_in_contract_order(run):
    """Peel failures off one at a time: each item fails rules k..14, and must report k."""
    base = dict(created_at="2022-06-01T00:00:00Z")
    users = [
        user("bad", birth_date="2010-01-01", deleted_at="2024-01-01T00:00:00Z", country="DE"),
        user("no_bd", birth_date=None),
        user("kid", birth_date="2010-01-01"),
        user("teen_then", birth_date="2005-01-01"),
        user("obj_unnotified"),
        user("unnotified"),
        user("kid_tag", birth_date="2012-01-01"),
        user("good"),
    ]
    content = [
        item("r1", "bad", kind="private_message", visibility="private", created_at="2025-01-01T00:00:00Z"),
        item("r2", "bad", kind="video", visibility="private", created_at="2025-01-01T00:00:00Z"),
        item("r3", "bad", visibility="friends", created_at="2025-01-01T00:00:00Z"),
        item("r4", "bad", created_at="2025-01-01T00:00:00Z"),
        item("r5", "bad", deleted_at="2023-01-01T00:00:00Z", **base),
        item("r6", "bad", **base),
        item("r7", "no_bd", **base),
        item("r8", "kid", **base),
        item("r9", "teen_then", **base),
        item("r11", "obj_unnotified", kind="photo", **base),
        item("r12", "unnotified", kind="photo", **base),
        item("r14", "good", kind="photo", **base),
    ]
    tags = [{"item_id": i, "tagged_user_id": "kid_tag"} for i in ("r11", "r12", "r14")]
    events = [ev(u["user_id"], "notified", NOTIFIED) for u in users if u["user_id"] != "unnotified" and u["user_id"] != "obj_unnotified"]
    events.append(ev("obj_unnotified", "objected", "2024-06-01T00:00:00Z"))
    got = run(users, content, tags, events, notify=False)
    assert got == {
        "r1": "private_message",
        "r2": "kind_not_allowed",
        "r3": "not_public",
        "r4": "after_cutoff",
        "r5": "content_deleted",
        "r6": "account_deleted",
        "r7": "age_unknown",
        "r8": "minor",
        "r9": "minor_at_posting",
        "r11": "objected",
        "r12": "not_notified",
        "r14": "tagged_person",
    }


@pytest.mark.slow
def test_consent_rule_before_objection_rule(run):
    events = [ev("u1", "objected", "2024-06-01T00:00:00Z")]
    assert run([user("u1")], [item("i1", "u1")], events=events, policy="consent-only") == {"i1": "no_consent"}


@pytest.mark.slow
def test_before_window_after_person_rules_and_before_tags(run):
    text = preset_text("recommended").replace("content_since: null", "content_since: 2023-01-01")
    pol = parse_policy(text)
    users = [user("u1"), user("kid", birth_date="2012-01-01"), user("obj")]
    content = [item("old_tagged", "u1", kind="photo", created_at="2022-01-01T00:00:00Z"),
               item("old_obj", "obj", created_at="2022-01-01T00:00:00Z")]
    tags = [{"item_id": "old_tagged", "tagged_user_id": "kid"}]
    events = [ev("obj", "objected", "2024-06-01T00:00:00Z")]
    assert run(users, content, tags, events, policy=pol) == {"old_tagged": "before_window", "old_obj": "objected"}


@pytest.mark.slow
def test_unknown_country_goes_to_the_policys_choice(run):
    text = preset_text("meta-2024").replace("tagged_people: ignore", "tagged_people: ignore\nunknown_country: europe")
    pol = parse_policy(text)
    got = run([user("u1", country=None)], [item("i1", "u1")], policy=pol, notify=False)
    assert got == {"i1": "not_notified"}


@pytest.mark.slow
def test_cutoff_moves_decisions(run):
    """Same data, two cut-offs: the objection only counts from its receipt."""
    users = [user("u1")]
    content = [item("i1", "u1")]
    events = [ev("u1", "objected", "2024-06-10T08:30:00Z")]
    assert run(users, content, events=events, at=parse_instant("2024-06-10T08:29:59Z")) == {"i1": "eligible"}
    assert run(users, content, at=parse_instant("2024-06-10T08:30:00Z")) == {"i1": "objected"}
