"""The polars benchmark peer must decide exactly like the engine, or the
benchmark compares two different things."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from decide_helpers import assert_peer_agrees, engine_rows
from exportkit import item, user, write_export
from hypothesis import HealthCheck, given, settings
from test_properties import T, _engine, _policies, worlds

from consentry.ledger import Ledger, NewEvent
from consentry.policy import load_policy, parse_policy
from consentry.sources import Export
from consentry.timeutil import parse_instant

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from polars_baseline import decide_polars  # noqa: E402

pytestmark = pytest.mark.slow  # every test here: see the markers in pyproject.toml

CONSENTRY = Path(sys.executable).parent / "consentry"


_rows_engine = engine_rows


def _rows_polars(folder: Path, ledger: Ledger, policy, at) -> list[tuple[str, str, bool, str]]:
    events = ledger.events_arrow()
    # In ledger order and reversed: ties must be broken by seq, never by the
    # table's row order (which an unstable sort might happen to keep).
    reversed_ = events.take(pa.array(range(events.num_rows - 1, -1, -1), type=pa.int64()))
    answers = []
    for ev in (events, reversed_):
        df = decide_polars(folder, ev, policy, at)
        assert df.columns == ["item_id", "user_id", "eligible", "reason"]
        assert df.schema["eligible"] == pl.Boolean
        answers.append(sorted(
            (str(i), str(u), bool(e), str(r))
            for i, u, e, r in zip(df["item_id"], df["user_id"], df["eligible"], df["reason"].cast(str), strict=True)
        ))
    assert answers[0] == answers[1], "the answer depends on the events' row order"
    return answers[0]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(world=worlds())
def test_polars_baseline_agrees_with_the_engine(tmp_path, world):
    assert_peer_agrees(*_engine(tmp_path, world), _policies(), T, _rows_polars)


def test_ties_at_the_same_instant_go_by_ledger_order(tmp_path):
    """Random worlds rarely tie two events of one person; the contract says ledger
    order (seq) breaks ties, so pin it down."""
    ids = ("obj_wd_last", "obj_last", "consent_last", "consent_wd_last")
    tp = {"tp_dismissed_last": ("third_party_objected", "third_party_dismissed"),
          "tp_objected_last": ("third_party_dismissed", "third_party_objected")}
    write_export(tmp_path, [user(u) for u in ids],
                 [item(f"i_{u}", u) for u in ids] + [item(f"i_{i}", "consent_last") for i in tp])
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    tie = "2024-06-01T12:00:00Z"
    pairs = {
        "obj_wd_last": ("objected", "objection_withdrawn"),
        "obj_last": ("objection_withdrawn", "objected"),
        "consent_last": ("consent_withdrawn", "consent_given"),
        "consent_wd_last": ("consent_given", "consent_withdrawn"),
    }
    ledger.append(
        [NewEvent(user_id=u, type="notified", at="2024-01-01T00:00:00Z") for u in ids]
        + [NewEvent(user_id=u, type=t, at=tie) for u, ts in pairs.items() for t in ts]
        + [NewEvent(item_id=f"i_{i}", type=t, at=tie, note="grounds") for i, ts in tp.items() for t in ts]
    )
    try:
        for name, want in {
            "recommended": {
                "obj_wd_last": "eligible", "obj_last": "objected", "consent_last": "eligible", "consent_wd_last": "eligible",
                "i_tp_dismissed_last": "eligible", "i_tp_objected_last": "third_party_objected",
            },
            "consent-only": {
                "obj_wd_last": "no_consent", "obj_last": "no_consent", "consent_last": "eligible", "consent_wd_last": "no_consent",
                "i_tp_dismissed_last": "eligible", "i_tp_objected_last": "third_party_objected",
            },
        }.items():
            policy = load_policy(name)
            got = _rows_polars(tmp_path, ledger, policy, T)
            assert {r[0] if r[0].startswith("i_tp") else r[1]: r[3] for r in got} == want, name
            assert got == _rows_engine(Export(tmp_path), ledger, policy, T), name
    finally:
        ledger.close()


EDGES = """
name: edges
kinds: [post, photo]
minimum_age: 17
minimum_age_at_posting: true
content_since: 2020-01-01
tagged_people: require
unknown_country: strict
jurisdictions:
  - name: strict
    countries: [DE]
    basis: consent
    honour_objections: true
    notice_days: 10
  - name: lax
    countries: ["*"]
    basis: legitimate_interest
    honour_objections: false
    notice_days: null
"""


def test_edges_hypothesis_rarely_reaches(tmp_path):
    """Boundaries no preset or random world pins down: 29 February birthdays at
    posting (author and tagged), an unknown country under a named jurisdiction,
    the content window's first instant, events at exactly T and just after."""
    users = [
        user("leap", birth_date="2004-02-29", country="US"),  # 17 on 2021-03-01
        user("adult", birth_date="1980-01-01", country="US"),
        user("nowhere", birth_date="1980-01-01", country=None),  # strict: needs consent
        user("at_t", birth_date="1980-01-01", country="DE"),
        user("after_t", birth_date="1980-01-01", country="DE"),
        user("gone_at_t", birth_date="1980-01-01", country="US", deleted_at="2024-06-26T00:00:00Z"),
        user("erased_at_t", birth_date="1980-01-01", country="US"),
    ]
    items = [
        item("leap_early", "leap", created_at="2021-02-28T23:59:59Z"),
        item("leap_on_time", "leap", created_at="2021-03-01T00:00:00Z"),
        item("tags_leap_early", "adult", kind="photo", created_at="2021-02-28T12:00:00Z"),
        item("tags_leap_on_time", "adult", kind="photo", created_at="2021-03-01T00:00:00Z"),
        item("window_first", "adult", created_at="2020-01-01T00:00:00Z"),
        item("window_before", "adult", created_at="2019-12-31T23:59:59Z"),
        item("nowhere_post", "nowhere"),
        item("at_t_post", "at_t"),
        item("after_t_post", "after_t"),
        item("tp_at_t", "adult", kind="photo"),
        item("tp_after_t", "adult", kind="photo"),
        item("deleted_at_t", "adult", deleted_at="2024-06-26T00:00:00Z"),
        item("deleted_after_t", "adult", deleted_at="2024-06-26T00:00:01Z"),
        item("gone_post", "gone_at_t"),
        item("erased_post", "erased_at_t"),
    ]
    tags = [{"item_id": "tags_leap_early", "tagged_user_id": "leap"},
            {"item_id": "tags_leap_early", "tagged_user_id": "adult"},
            {"item_id": "tags_leap_on_time", "tagged_user_id": "leap"},
            {"item_id": "tags_leap_on_time", "tagged_user_id": "ghost"}]
    write_export(tmp_path, users, items, tags)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    notice = "2024-06-16T00:00:00Z"  # exactly T minus the 10 days' notice
    ledger.append([
        *(NewEvent(user_id=u, type="notified", at=notice) for u in ("at_t", "after_t")),
        NewEvent(user_id="at_t", type="consent_given", at="2024-06-26T00:00:00Z"),
        NewEvent(user_id="after_t", type="consent_given", at="2024-06-26T00:00:01Z"),
        NewEvent(item_id="tp_at_t", type="third_party_objected", at="2024-06-26T00:00:00Z"),
        NewEvent(item_id="tp_after_t", type="third_party_objected", at="2024-06-26T00:00:01Z"),
        NewEvent(user_id="ghost", type="erasure_requested", at="2020-01-01T00:00:00Z"),
        NewEvent(user_id="erased_at_t", type="erasure_requested", at="2024-06-26T00:00:00Z"),
    ])
    try:
        policy = parse_policy(EDGES)
        got = _rows_polars(tmp_path, ledger, policy, T)
        assert {r[0]: r[3] for r in got} == {
            "leap_early": "minor_at_posting", "leap_on_time": "eligible",
            "tags_leap_early": "tagged_person", "tags_leap_on_time": "eligible",
            "window_first": "eligible", "window_before": "before_window",
            "nowhere_post": "no_consent", "at_t_post": "eligible", "after_t_post": "no_consent",
            "tp_at_t": "third_party_objected", "tp_after_t": "eligible",
            "deleted_at_t": "content_deleted", "deleted_after_t": "eligible",
            "gone_post": "account_deleted", "erased_post": "account_deleted",
        }
        assert got == _rows_engine(Export(tmp_path), ledger, policy, T)
    finally:
        ledger.close()


def test_polars_baseline_agrees_on_a_generated_export(tmp_path):
    data = tmp_path / "exp"
    subprocess.run(
        [str(CONSENTRY), "generate", "--users", "300", "--seed", "3", "--media", "0", "--out", str(data)],
        check=True,
        capture_output=True,
    )
    ledger = Ledger(f"sqlite:///{tmp_path}/l.db")
    try:
        ledger.import_jsonl(data / "events.jsonl")
        export = Export(data)
        # Before, in the middle of and after the generated ledger's events.
        for at in ("2023-06-01T00:00:00Z", "2024-06-26T00:00:00Z", "2024-10-01T00:00:00Z"):
            at = parse_instant(at)
            for policy in _policies():
                got = _rows_polars(data, ledger, policy, at)
                want = _rows_engine(export, ledger, policy, at)
                assert len(want) > 5000
                assert got == want, (policy.name, at)
                assert len({r[3] for r in want}) > 3
    finally:
        ledger.close()
