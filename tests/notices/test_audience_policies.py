"""The notice audience follows the policy's own rules (finding 7): an objection
leaves a person out of the audience only where their jurisdiction honours it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consentry.engine import decide
from consentry.ledger import Ledger, NewEvent
from consentry.notices.audience import audience
from consentry.policy import parse_policy, preset_text
from consentry.sources import Export
from consentry.timeutil import parse_instant
from exportkit import item, user, write_export

T = parse_instant("2025-09-01T00:00:00Z")

#: recommended, but the rest of the world is told 30 days ahead and its objections are not honoured.
TOLD_NOT_HONOURED = parse_policy(
    preset_text("recommended").replace("name: recommended", "name: told-not-honoured")
    .replace('    countries: ["*"]          # everywhere else, and people whose country is unknown\n'
             "    basis: legitimate_interest\n    honour_objections: true",
             '    countries: ["*"]\n    basis: legitimate_interest\n    honour_objections: false'))


@pytest.fixture
def world(tmp_path):
    users = [user("de_objector", country="DE"), user("us_objector", country="US"), user("us_adult", country="US")]
    content = [item(f"p-{u['user_id']}", u["user_id"]) for u in users]
    export = Export(write_export(tmp_path / "export", users, content, []))
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    led.append([NewEvent(user_id=u, type="objected", at="2025-05-01T00:00:00Z", channel="web")
                for u in ("de_objector", "us_objector")])
    yield export, led
    led.close()


def test_an_objector_where_objections_are_not_honoured_is_told(world):
    export, led = world
    assert [j.honour_objections for j in TOLD_NOT_HONOURED.jurisdictions] == [True, False]
    got = set(audience(export, led, TOLD_NOT_HONOURED, T)["user_id"].to_pylist())
    assert got == {"us_objector", "us_adult"}  # de_objector's objection is honoured: never used, not told


def test_told_objectors_are_then_usable_as_the_policy_says(world):
    """Notify the audience, then decide: rule 11 does not apply outside europe, so the US
    objector's post is eligible, not left out as not_notified."""
    export, led = world
    rows = audience(export, led, TOLD_NOT_HONOURED, T).to_pylist()
    led.append([NewEvent(user_id=r["user_id"], type="notified", at="2025-06-01T00:00:00Z", channel="email")
                for r in rows])
    decided = {r[0]: r[1] for r in decide(export, led, TOLD_NOT_HONOURED, T + timedelta(days=1))
               .select("item_id, reason").fetchall()}
    assert decided == {"p-de_objector": "objected", "p-us_objector": "eligible", "p-us_adult": "eligible"}
