"""Every safeguard the GDPR documents state is true of the policy in use (a DPO's trial):

1. the LIA said "Notice in europe: every affected person is told ..., including people
   tagged in photos" under `meta-2024`, whose notice audience leaves out the people who are
   only in others' photos (`tagged_people: ignore`): with the author in NL and the person
   tagged in the photo in DE, `notify --dry-run --policy meta-2024` would notify 1 person,
   `recommended` 2;
2. under `consent-only` the tagged-people line said "(adult, told, not objecting, not
   erased)": "told" is no rule there, and consent was left out;
3. a transform the policy turns off (`strip_exif: false`, `redact_phones: false`) silently
   dropped off the list of transforms instead of being named as a gap.

What the documents say is derived from the Policy object (not its name): each check below is
made against the audience the notifier computes, or the rules the policy holds.
Real parts: a SQLite ledger, an export on disk, `audience()` as `notify` runs it."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consentry import i18n
from consentry.audit import build_documents
from consentry.audit.documents import LedgerFacts, render
from consentry.ledger import Ledger
from consentry.notices.audience import audience
from consentry.policy import Policy, load_policy, parse_policy, preset_text
from consentry.sources import Export
from exportkit import item, user, write_export

CUTOFF = datetime(2030, 1, 1, tzinfo=UTC)
FACTS = LedgerFacts(watermark=1, objecting_now=0, consenting_now=0, notified=0, erasure_requests=0, snapshots=0,
                    models=0)
LIA = "legitimate-interest-assessment"
TAGGED_CLAUSE = "including people tagged in photos"


def custom(base: str, name: str, *replacements: tuple[str, str]) -> Policy:
    """A built-in policy's text, renamed and edited: a policy of its own, known by no built-in name."""
    text = preset_text(base).replace(f"name: {base}", f"name: {name}")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return parse_policy(text, source=name)


def _transforms_off(*flags: str) -> Policy:
    return custom("recommended", "no-exif-no-phones", *((f"{f}: true", f"{f}: false") for f in flags))


def safeguards(policy: Policy, lang: str = "en") -> str:
    """The LIA's safeguards section as text: paragraphs, list items and gaps."""
    section = build_documents(policy, FACTS, cutoff=CUTOFF, language=lang).get(LIA).section("safeguards")
    return "\n".join(b.text or "\n".join(b.items) for b in section.blocks)


def gaps(policy: Policy, lang: str = "en") -> list[str]:
    section = build_documents(policy, FACTS, cutoff=CUTOFF, language=lang).get(LIA).section("safeguards")
    return [b.text for b in section.blocks if b.kind == "gap"]


def tagged_line(policy: Policy) -> str:
    return next(line for line in safeguards(policy).splitlines() if line.startswith("Tagged people:"))


def notice_lines(policy: Policy) -> list[str]:
    return [line for line in safeguards(policy).splitlines() if line.startswith("Notice in ")]


# -- 1. who is told ---------------------------------------------------------------------------------------


@pytest.fixture
def two_people(tmp_path: Path):  # noqa: ANN201
    """The trial's export: the author in NL posts a public photo of a person in DE, who posted nothing."""
    users = [user("author", country="NL", language="nl"), user("tagged", country="DE")]
    content = [item("photo", "author", kind="photo", media_path="media/photo.jpg")]
    export = Export(write_export(tmp_path / "export", users, content, [{"item_id": "photo", "tagged_user_id": "tagged"}]))
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield export, led
    led.close()


def _told(export: Export, led: Ledger, policy: Policy) -> set[str]:
    return set(audience(export, led, policy, CUTOFF)["user_id"].to_pylist())


def test_meta_2024_does_not_claim_to_tell_the_people_in_photos(two_people) -> None:
    export, led = two_people
    meta = load_policy("meta-2024")
    assert _told(export, led, meta) == {"author"}  # the trial's "Would notify 1 person"
    lines = notice_lines(meta)
    assert len(lines) == 1 and lines[0].startswith("Notice in europe:"), lines  # rest_of_world: no notice (a gap)
    assert TAGGED_CLAUSE not in lines[0]
    # what is true instead: their own content is announced, a photo of them posted by others is not
    assert "only tagged in others’ photos" in lines[0] and "NOT told" in lines[0], lines[0]
    assert "Minimum notice period in days: 30." in lines[0]


@pytest.mark.parametrize("policy", [
    load_policy("recommended"),
    custom("recommended", "blurring", ("tagged_people: require", "tagged_people: blur")),
], ids=["require", "blur"])
def test_a_policy_that_checks_the_people_in_photos_tells_them_and_says_so(two_people, policy: Policy) -> None:
    export, led = two_people
    assert _told(export, led, policy) == {"author", "tagged"}  # the trial's "recommended notifies 2"
    lines = notice_lines(policy)
    assert len(lines) == 2 and all(TAGGED_CLAUSE in line and "NOT told" not in line for line in lines), lines


def test_without_notice_nobody_is_said_to_be_told(two_people) -> None:
    export, led = two_people
    policy = load_policy("consent-only")
    assert _told(export, led, policy) == set()
    assert notice_lines(policy) == []


# -- 2. what a tagged person must pass --------------------------------------------------------------------


def test_recommended_lists_the_rules_a_tagged_person_must_pass() -> None:
    line = tagged_line(load_policy("recommended"))
    assert line == ("Tagged people: a photo is used only if every person tagged in it could be used too "
                    "(18 or older at the cut-off, and already when the photo was posted, told, not objecting, "
                    "not erased)."), line


def test_consent_only_asks_consent_of_a_tagged_person_and_tells_nobody() -> None:
    line = tagged_line(load_policy("consent-only"))
    assert "told" not in line, line  # no jurisdiction of consent-only has a notice rule (12)
    assert "consenting" in line, line  # rule 10: every jurisdiction uses consent
    assert line == ("Tagged people: a photo is used only if every person tagged in it could be used too "
                    "(18 or older at the cut-off, and already when the photo was posted, consenting, not objecting, "
                    "not erased)."), line


def test_the_rules_of_a_tagged_person_follow_each_jurisdiction() -> None:
    """meta-2024 with its tagged people checked: told and objections count in europe only."""
    policy = custom("meta-2024", "meta-checked", ("tagged_people: ignore", "tagged_people: require"),
                    ("minimum_age: 18", "minimum_age: 16"))
    line = tagged_line(policy)
    assert line == ("Tagged people: a photo is used only if every person tagged in it could be used too "
                    "(europe: 16 or older at the cut-off, told, not objecting, not erased; "
                    "rest_of_world: 16 or older at the cut-off, not erased)."), line
    assert "adult" not in line  # 16 is not what "adult" says
    # and the people only in others' photos are told where notice applies, as they are now checked
    assert all(TAGGED_CLAUSE in line for line in notice_lines(policy))


def test_meta_2024_does_not_check_tagged_people_and_says_so() -> None:
    assert tagged_line(load_policy("meta-2024")) == "Tagged people: not checked."


# -- 3. transforms the policy turns off ------------------------------------------------------------------


def test_a_transform_turned_off_is_named_as_a_gap() -> None:
    policy = _transforms_off("strip_exif", "redact_phones")
    found = gaps(policy)
    assert len(found) == 2, found
    phones = next(g for g in found if "redact_phones: false" in g)
    exif = next(g for g in found if "strip_exif: false" in g)
    assert "phone numbers replaced by [phone]" in phones
    assert "photos re-encoded without their metadata (EXIF, GPS, comments)" in exif
    text = safeguards(policy)
    assert "Gaps in this policy (2):" in text and "No gaps found" not in text
    applied = next(line for line in text.splitlines() if line.startswith("Transforms applied to kept items:"))
    assert "[phone]" not in applied and "EXIF" not in applied and "[email]" in applied
    # shown as gaps in both formats
    doc = build_documents(policy, FACTS, cutoff=CUTOFF).get(LIA)
    assert render(doc, "html").count('class="gap"') == 2
    assert render(doc, "md").count("redact_phones: false") == 1


def test_every_transform_turned_off_is_a_gap_and_none_when_all_are_on() -> None:
    flags = ("redact_emails", "redact_phones", "redact_ibans", "redact_cards", "mentions", "strip_exif")
    found = gaps(_transforms_off(*flags))
    assert sorted(re.findall(r"\((\w+): false\)", " ".join(found))) == sorted(flags), found
    assert gaps(load_policy("recommended")) == []
    assert not any(": false)" in g for g in gaps(load_policy("meta-2024")))


# -- the same in every language ----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", sorted(set(i18n.LANGUAGES) - {"en"}))
def test_the_new_sentences_are_translated(lang: str) -> None:
    """No English left of the new sentences, in any language; placeholders filled."""
    english = ("only tagged in others’ photos", "NOT told", "when the photo was posted", "consenting",
               "not objecting", "not erased", "because the policy turns it off")
    policies = [load_policy("meta-2024"), load_policy("consent-only"), _transforms_off("strip_exif", "redact_phones"),
                custom("meta-2024", "meta-checked", ("tagged_people: ignore", "tagged_people: require"))]
    for policy in policies:
        docs = build_documents(policy, FACTS, cutoff=CUTOFF, language=lang)
        text = html.unescape(render(docs.get(LIA), "html")) + render(docs.get(LIA), "md")
        left = [e for e in english if e in text]
        assert not left, (lang, policy.name, left)
        assert "%(" not in text, (lang, policy.name)
    assert len(gaps(_transforms_off("strip_exif", "redact_phones"), lang)) == 2
