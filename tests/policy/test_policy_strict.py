"""Policies are read strictly: a wrong type is refused, never converted (findings 1-5)."""

from __future__ import annotations

import pytest

from consentry.errors import PolicyError
from consentry.policy import load_policy, parse_policy, preset_names, preset_text

BASE = preset_text("recommended")
EUROPE_NOTICE = "    notice_days: 30\n  - name: rest_of_world"
#: The built-in policies' hashes (README, snapshots and reports name them): no change here may move them.
HASHES = {"consent-only": "sha256:ecc8756b226a05ab", "meta-2024": "sha256:09ae0be7ec66fcfb",
          "recommended": "sha256:b4f884948f621b68"}
EUROPE_OBJECTIONS = "    honour_objections: true\n    notice_days: 30\n  - name: rest_of_world"


def _refused(text: str) -> str:
    with pytest.raises(PolicyError) as exc:
        parse_policy(text, source="my-policy.yaml")
    return str(exc.value)


# -- finding 1: wrong types are refused, not converted ---------------------------------------

@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (EUROPE_NOTICE, EUROPE_NOTICE.replace("30", "no"), "jurisdictions[0].notice_days"),
        (EUROPE_NOTICE, EUROPE_NOTICE.replace("30", "yes"), "jurisdictions[0].notice_days"),
        (EUROPE_NOTICE, EUROPE_NOTICE.replace("30", "'30'"), "jurisdictions[0].notice_days"),
        (EUROPE_NOTICE, EUROPE_NOTICE.replace("30", "30.0"), "jurisdictions[0].notice_days"),
        ("minimum_age: 18", "minimum_age: yes", "minimum_age"),
        ("minimum_age: 18", "minimum_age: '18'", "minimum_age"),
        ("minimum_age: 18", "minimum_age: 18.0", "minimum_age"),
        ("content_since: null", "content_since: 0", "content_since"),
        ("content_since: null", "content_since: 1700000000", "content_since"),
        ("content_since: null", "content_since: '0'", "content_since"),
        ("content_since: null", "content_since: true", "content_since"),
        # DPO trial: unquoted, YAML reads these as times; the offset was dropped and the day taken
        ("content_since: null", "content_since: 2024-06-26T00:00:00+05:00", "content_since"),
        ("content_since: null", "content_since: 2024-06-26 23:00:00-05:00", "content_since"),
        (EUROPE_OBJECTIONS, EUROPE_OBJECTIONS.replace("true", '"false"', 1), "jurisdictions[0].honour_objections"),
        (EUROPE_OBJECTIONS, EUROPE_OBJECTIONS.replace("true", "1", 1), "jurisdictions[0].honour_objections"),
        ("minimum_age_at_posting: true", "minimum_age_at_posting: 1", "minimum_age_at_posting"),
        ("minimum_age_at_posting: true", "minimum_age_at_posting: 'true'", "minimum_age_at_posting"),
        ("honour_third_party_objections: true", "honour_third_party_objections: 'no'",
         "honour_third_party_objections"),
        ("redact_emails: true", "redact_emails: 'yes'", "transforms.redact_emails"),
    ],
)
def test_wrong_types_are_refused_not_converted(old, new, field):
    assert old in BASE
    msg = _refused(BASE.replace(old, new, 1))
    assert "my-policy.yaml" in msg
    assert f"{field}:" in msg
    assert "fix:" in msg
    assert "Traceback" not in msg


def test_wrong_type_messages_say_what_to_write():
    assert "true or false" in _refused(BASE.replace(EUROPE_OBJECTIONS, EUROPE_OBJECTIONS.replace("true", '"false"', 1)))
    assert "whole number" in _refused(BASE.replace("minimum_age: 18", "minimum_age: yes"))
    assert "null" in _refused(BASE.replace(EUROPE_NOTICE, EUROPE_NOTICE.replace("30", "no")))
    assert "2024-06-26" in _refused(BASE.replace("content_since: null", "content_since: 0"))
    said = _refused(BASE.replace("content_since: null", "content_since: 2024-06-26 23:00:00-05:00"))
    assert "not a time" in said and "(got 2024-06-26T23:00:00-05:00)" in said and "datetime.datetime" not in said, said


@pytest.mark.parametrize("since", ["2024-06-26", "'2024-06-26'", '"2024-06-26"'])
def test_documented_dates_are_still_accepted(since):
    policy = parse_policy(BASE.replace("content_since: null", f"content_since: {since}"))
    assert str(policy.content_since) == "2024-06-26"


def test_builtin_policies_still_load_and_a_dumped_policy_reloads():
    for name in preset_names():
        policy = load_policy(name)
        from consentry.policy import Policy
        assert Policy.model_validate(policy.model_dump(mode="json")).hash == policy.hash
    since = parse_policy(BASE.replace("content_since: null", "content_since: 2024-06-26"))
    from consentry.policy import Policy
    assert Policy.model_validate(since.model_dump(mode="json")).hash == since.hash


# -- finding 2: notice_days is required in every jurisdiction ----------------------------------

def test_a_jurisdiction_without_notice_days_is_refused():
    text = BASE.replace(EUROPE_NOTICE, "  - name: rest_of_world", 1)
    assert "notice_days" in text  # the other jurisdiction keeps its own
    msg = _refused(text)
    assert "jurisdictions[0].notice_days:" in msg
    assert "null" in msg and "notice rule" in msg
    assert "my-policy.yaml" in msg


def test_notice_days_null_is_still_the_explicit_no_notice_rule():
    policy = parse_policy(BASE.replace(EUROPE_NOTICE, EUROPE_NOTICE.replace("30", "null"), 1))
    assert policy.jurisdictions[0].notice_days is None


def test_builtin_policies_keep_their_hashes():
    # The hashes the built-in policies had before notice_days became required (and strict types).
    assert {n: load_policy(n).hash for n in preset_names()} == HASHES


# -- finding 3: a file that is not UTF-8 -----------------------------------------------------

@pytest.mark.parametrize(("encoding", "named"), [("utf-16", "UTF-16"), ("utf-16-le", None), ("latin-1", None)])
def test_a_policy_file_that_is_not_utf8_is_refused_with_the_fix(tmp_path, encoding, named):
    path = tmp_path / "my-policy.yaml"
    text = BASE.replace("name: recommended", "name: mine").replace("# consentry's", "# Zürich's consentry's")
    path.write_bytes(text.encode(encoding))
    with pytest.raises(PolicyError) as exc:
        load_policy(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "not UTF-8" in msg
    assert "iconv" in msg
    if named:
        assert named in msg


def test_a_utf8_policy_file_with_a_bom_still_loads(tmp_path):
    path = tmp_path / "my-policy.yaml"
    path.write_bytes(BASE.replace("name: recommended", "name: mine").encode("utf-8-sig"))
    assert load_policy(path).hash == HASHES["recommended"]


def test_policy_check_refuses_a_utf16_file_without_a_traceback(tmp_path, monkeypatch):
    from cli_kit import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "win.yaml").write_bytes(BASE.replace("name: recommended", "name: mine").encode("utf-16"))
    result = cli("policy", "check", "win.yaml")
    text = result.stdout + result.stderr
    assert result.exit_code == 2, text
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in text and "UnicodeDecodeError" not in text
    assert "UTF-16" in text and "iconv" in text and "win.yaml" in text


# -- finding 4: YAML merge keys ----------------------------------------------------------------

MERGED = """\
name: merged
kinds: [post, photo, caption, comment, story]
minimum_age: 18
minimum_age_at_posting: true
content_since: null
tagged_people: require
jurisdictions:
  - &europe
    name: europe
    countries: [EEA, GB, CH]
    basis: legitimate_interest
    honour_objections: true
    notice_days: 30
  - <<: *europe
    name: rest_of_world
    countries: ["*"]
"""


def test_merge_keys_are_accepted():
    policy = parse_policy(MERGED)
    assert policy.hash == HASHES["recommended"]
    assert policy.jurisdictions[1].notice_days == 30 and policy.jurisdictions[1].countries == ["*"]


def test_merge_keys_with_a_list_of_anchors_are_accepted():
    text = MERGED.replace("  - <<: *europe\n", "  - <<: [*europe]\n")
    assert parse_policy(text).hash == HASHES["recommended"]


def test_a_key_given_twice_is_still_refused_next_to_a_merge_key():
    text = MERGED.replace('    countries: ["*"]\n', '    countries: ["*"]\n    name: again\n')
    msg = _refused(text)
    assert "'name' is given twice" in msg and "line" in msg
    assert "given twice" in _refused(BASE.replace("minimum_age: 18\n", "minimum_age: 18\nminimum_age: 16\n"))


# -- finding 5: NO read as false; kinds that are typos of the contract's -----------------------

def test_norway_read_as_false_is_explained():
    text = BASE.replace("countries: [EEA, GB, CH]", "countries: [DE, NO, GB]")
    msg = _refused(text)
    assert "jurisdictions[0].countries[1]:" in msg
    assert "NO (Norway)" in msg and "false" in msg
    assert 'fix: quote it: "NO"' in msg
    ok = parse_policy(BASE.replace("countries: [EEA, GB, CH]", 'countries: [DE, "NO", GB]'))
    assert "NO" in ok.jurisdictions[0].countries


@pytest.mark.parametrize(("typo", "kind"), [("phot", "photo"), ("stroy", "story"), ("coment", "comment"),
                                             ("captoin", "caption"), ("psot", "post")])
def test_a_typo_of_a_contract_kind_is_refused(typo, kind):
    msg = _refused(BASE.replace("kinds: [post, photo, caption, comment, story]",
                                f"kinds: [post, {typo}, caption, comment, story]".replace(f", {kind},", ", ")))
    assert f"'{typo}'" in msg and f"'{kind}'" in msg
    assert "post, photo, caption, comment, story" in msg


def test_a_typo_of_private_message_is_refused_as_rule_1():
    msg = _refused(BASE.replace("kinds: [post,", "kinds: [private_mesage, post,"))
    assert "private_message can never be used" in msg


@pytest.mark.parametrize("kind", ["video", "reel", "repost", "poll", "live", "note"])
def test_kinds_of_the_platforms_own_are_still_accepted(kind):
    policy = parse_policy(BASE.replace("kinds: [post,", f"kinds: [{kind}, post,"))
    assert kind in policy.kinds
