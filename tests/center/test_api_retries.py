"""The API under a backend's retries and concurrent requests (integrator trial):
a withdrawal is recorded once however many race for one objection; a retry
carrying its Idempotency-Key finds the first request's event instead of
recording a second (a stale retried withdrawal undid a newer objection); a
consent or erasure already in force records nothing new, as on the pages."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from center_kit import CenterKit, center_factory, export_dir, smtp  # noqa: F401  (fixtures)
from consentry.ledger import EventType

pytestmark = pytest.mark.slow  # starts a center


@pytest.fixture
def kit(center_factory: Callable[..., CenterKit]) -> CenterKit:  # noqa: F811
    return center_factory()


def _poster(kit: CenterKit):  # noqa: ANN202
    _, key = kit.api_key("settings page")

    def post(user_id: str, what: str, idem: str | None = None, **kw):  # noqa: ANN003, ANN202
        headers = {"Authorization": f"Bearer {key}", **({"Idempotency-Key": idem} if idem else {})}
        return kit.new_client().post(f"/api/v1/people/{user_id}/{what}", headers=headers, **kw)
    return post


def _types(kit: CenterKit, user_id: str) -> list[str]:
    return [e.type.value for e in kit.ledger.history(user_id)]


def test_concurrent_withdrawals_of_one_objection_record_one(kit: CenterKit) -> None:
    """Ten concurrent withdrawals: 2 to 5 were recorded for one objection (the check ran outside the write)."""
    post = _poster(kit)
    assert post("p-race", "objection").status_code == 201
    with ThreadPoolExecutor(10) as pool:
        codes = sorted(r.status_code for r in pool.map(lambda _: post("p-race", "objection/withdrawal"), range(10)))
    assert codes == [201] + [409] * 9, codes
    assert _types(kit, "p-race") == ["objected", "objection_withdrawn"]


def test_a_retried_withdrawal_with_its_key_does_not_undo_a_newer_objection(kit: CenterKit) -> None:
    """The user switched off (a withdrawal, retried on a timeout), then on again: the late retry
    was recorded after the new objection and the person no longer objected, after a 201 for it."""
    post = _poster(kit)
    assert post("toggle", "objection", "on-1").status_code == 201
    first = post("toggle", "objection/withdrawal", "off-1")
    assert first.status_code == 201
    on2 = post("toggle", "objection", "on-2")
    assert on2.status_code == 201
    retry = post("toggle", "objection/withdrawal", "off-1")  # the network retry of the first withdrawal
    assert retry.status_code == 201 and retry.json()["seq"] == first.json()["seq"]
    assert _types(kit, "toggle") == ["objected", "objection_withdrawn", "objected"]
    assert kit.ledger.state("toggle").objects
    again = post("toggle", "objection", "on-2")  # a retried objection: the same event
    assert again.json()["seq"] == on2.json()["seq"] and len(_types(kit, "toggle")) == 3
    wrong = post("other", "objection", "on-2")  # one key, another request
    assert wrong.status_code == 422 and "Idempotency-Key was sent before with another request" in wrong.json()["detail"]
    assert _types(kit, "other") == []
    bad = post("toggle", "objection", "has space")
    assert bad.status_code == 422 and "printable ASCII" in bad.json()["detail"]


def test_a_consent_or_erasure_in_force_records_nothing_new(kit: CenterKit) -> None:
    """Two erasure requests gave two 201s and two events; the pages record one."""
    post = _poster(kit)
    for what, type_ in (("consent", EventType.consent_given), ("erasure", EventType.erasure_requested)):
        first = post("twice", what)
        second = post("twice", what)
        assert (first.status_code, second.status_code) == (201, 200), (what, second.text)
        assert second.json()["seq"] == first.json()["seq"]
        assert _types(kit, "twice").count(type_.value) == 1
