"""`explain` says only true things under every `tagged_people` setting (finding 6)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli_kit import cli, ok
from consentry.policy import preset_text
from exportkit import item, user, write_export

AT = "2024-06-26T00:00:00Z"
USERS = [user("alice"), user("kid", birth_date="2010-01-01"), user("ann")]
CONTENT = [item("ph1", "alice", kind="photo", media_path="media/ph1.jpg"),
           item("ph2", "alice", kind="photo", media_path="media/ph2.jpg")]
TAGS = [{"item_id": "ph1", "tagged_user_id": "kid"}, {"item_id": "ph2", "tagged_user_id": "ann"}]
EVENTS = [{"event_id": f"n-{u}", "user_id": u, "type": "notified", "at": "2024-01-01T00:00:00Z", "channel": "email"}
          for u in ("alice", "kid", "ann")]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    monkeypatch.delenv("CONSENTRY_LEDGER", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    write_export(tmp_path / "export", USERS, CONTENT, TAGS)
    for mode in ("blur", "ignore"):
        (tmp_path / f"{mode}.yaml").write_text(
            preset_text("recommended").replace("name: recommended", f"name: tags-{mode}")
            .replace("tagged_people: require", f"tagged_people: {mode}"))
    return tmp_path


def _import(home: Path, events: list[dict]) -> None:
    (home / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    ok(cli("ledger", "import", "events.jsonl"))


def _explain(item_id: str, policy: str) -> str:
    return ok(cli("explain", item_id, "--data", "export", "--at", AT, "--policy", policy)).stdout


def test_blur_a_tagged_minor_at_the_cut_off_is_not_news_and_the_verdict_says_blurred(home):
    _import(home, EVENTS)
    out = _explain("ph1", "blur.yaml")
    flat = " ".join(out.split())
    # kid was a minor at T and is one now: counted at T (by blurring), so nothing "since".
    assert "Since the cut-off" not in out, out
    assert "kid now fails" not in flat
    assert "passes every rule" not in flat
    assert "only with every face blurred" in flat and "blur_faces" in flat
    # ph2's tagged adult passes: no blur there, and the verdict says so plainly.
    out2 = " ".join(_explain("ph2", "blur.yaml").split())
    assert "passes every rule" in out2 and "blurred" not in out2.split("may be used")[-1]


def test_blur_a_third_party_objection_at_exactly_the_cut_off_is_counted_at_it(home):
    _import(home, EVENTS + [{"event_id": "tp1", "user_id": None, "item_id": "ph2", "type": "third_party_objected",
                             "at": AT, "channel": "web"}])
    flat = " ".join(_explain("ph2", "blur.yaml").split())
    assert "Since the cut-off" not in flat, flat
    assert "objects to it now" not in flat
    assert "passes every rule" not in flat
    assert "only with every face blurred" in flat


def test_ignore_nothing_about_a_tagged_person_decides(home):
    _import(home, EVENTS)
    out = _explain("ph1", "ignore.yaml")
    assert "◀ decides" not in out, out
    assert not re.search(r"\bminor\s+FAIL", out), out
    flat = " ".join(out.split())
    assert "passes every rule" in flat
    assert "Since the cut-off" not in flat


def test_blur_a_tagged_person_who_fails_only_since_the_cut_off_is_said_with_what_a_build_does(home):
    _import(home, EVENTS + [{"event_id": "o1", "user_id": "ann", "type": "objected", "at": "2024-07-01T00:00:00Z",
                             "channel": "web"}])
    flat = " ".join(_explain("ph2", "blur.yaml").split())
    assert "passes every rule" in flat
    assert "tagged person ann now fails rule 11 (objected)" in flat
    assert "blurs every face in it rather than leaving it out" in flat
