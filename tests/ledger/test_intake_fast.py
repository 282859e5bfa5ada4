"""The fast intake path: the group committer's own batch append (state refreshed
for the batch's people by name, events built in memory rather than read back)
and the API key check through the DB-API. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from conftest import T
from sqlalchemy import select

from consentry.access import ApiClients
from consentry.ledger import Channel, EventType, GroupCommitter, Ledger, NewEvent
from consentry.ledger import tables as t

pytestmark = pytest.mark.slow  # every test here: see the markers in pyproject.toml


def _ev(user: str, type_: EventType, minutes: int, note: str | None = None) -> NewEvent:
    return NewEvent(user_id=user, type=type_, at=T + timedelta(minutes=minutes), channel=Channel.api, note=note,
                    actor="client:test")


def _state(led: Ledger) -> list[dict]:
    with led.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t.person_state).order_by(t.person_state.c.user_id)).mappings()]


def _events(led: Ledger) -> list[dict]:
    cols = [c for c in t.events.c if c.name != "recorded_us"]
    with led.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(*cols).order_by(t.events.c.seq)).mappings()]


SCRIPT = [
    [_ev("ann", EventType.notified, 0), _ev("bob", EventType.objected, 1)],
    [_ev("ann", EventType.objected, 2, "no thanks"), _ev("ann", EventType.consent_given, 3)],
    # out of order in time: the state follows `at`, not arrival
    [_ev("bob", EventType.objection_withdrawn, 5), _ev("bob", EventType.objected, 4), _ev("cy", EventType.erasure_requested, 6)],
    [_ev("ann", EventType.objection_withdrawn, 7), _ev("cy", EventType.notified, 8), _ev("cy", EventType.notified, 9)],
]


def test_committer_batches_leave_the_same_ledger_and_state_as_append(ledger_url: str, tmp_path) -> None:  # noqa: ANN001
    reference = Ledger(f"sqlite:///{tmp_path / 'reference.db'}")
    with Ledger(ledger_url) as led:
        committer = GroupCommitter(led)
        for batch in SCRIPT:
            reference.append(batch)
            got = committer._append([(e.with_id(), None, ()) for e in batch])
            assert [got[e.with_id().event_id] for e in batch] == [led.get(e.with_id().event_id) for e in batch]
        assert _events(led) == _events(reference)
        assert _state(led) == _state(reference)
        assert not led.state("bob").objects  # withdrawn at 5, after the objection at 4 (which arrived later)
    reference.close()


def test_an_event_already_stored_or_repeated_in_a_batch_is_returned_not_duplicated(ledger_url: str) -> None:
    with Ledger(ledger_url) as led:
        committer = GroupCommitter(led)
        first = committer.record(_ev("ann", EventType.objected, 1))
        a, b = _ev("bob", EventType.objected, 2), _ev("cy", EventType.consent_given, 3)
        futures = [committer.submit(e) for e in (_ev("ann", EventType.objected, 1), a, b, a)]
        results = [f.result(10) for f in futures]
        assert results[0] == first
        assert results[1] == results[3] == led.get(a.with_id().event_id)
        assert results[2] == led.get(b.with_id().event_id)
        assert led.count() == 3
        assert [r.seq for r in results] == [1, 2, 3, 2]
        assert led.state("bob").objects and led.state("cy").consents


def test_many_threads_through_the_committer_lose_nothing(ledger_url: str) -> None:
    with Ledger(ledger_url) as led:
        committer = GroupCommitter(led)
        got: list = []

        def work(i: int) -> None:
            for j in range(20):
                got.append(committer.record(_ev(f"p{i}-{j}", EventType.objected, j)))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(got) == led.count() == 160
        assert sorted(e.seq for e in got) == list(range(1, 161))
        for e in got[:: 17]:
            assert led.get(e.event_id) == e
            assert led.state(e.user_id).objects


def test_verify_sees_a_revocation_at_once_and_leaves_the_pool_clean(ledger_url: str) -> None:
    with Ledger(ledger_url) as led:
        clients = ApiClients(led.engine)
        cid, key = clients.create("platform")
        assert clients.verify(key) == cid
        assert clients.verify(key + "x") is None
        # Revoked through another engine (another worker process would be the same).
        other = Ledger(ledger_url, migrate=False)
        assert ApiClients(other.engine).revoke(cid)
        other.close()
        assert clients.verify(key) is None
        assert led.engine.pool.checkedout() == 0
        # The pooled connection went back usable for writes (no open transaction, no autocommit left on).
        led.append([_ev("ann", EventType.objected, 1)])
        cid2, key2 = clients.create("again")
        assert clients.verify(key2) == cid2
        with led.engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert not getattr(dbapi, "autocommit", False) or led.is_sqlite


def _wait_until(check, timeout: float = 10.0) -> None:  # noqa: ANN001
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_events_queued_while_the_committer_waits_for_the_lock_join_its_transaction(ledger_url: str) -> None:
    """Another writer (another worker) holds the ledger. The committer has taken
    its first event and waits for the lock; the events queued meanwhile are
    stored in the same transaction once it has the lock (one recorded_at), not
    in a transaction of their own after it."""
    holder, led = Ledger(ledger_url), Ledger(ledger_url)
    try:
        committer = GroupCommitter(led)
        with holder.transaction() as conn:
            holder.append_in(conn, [_ev("holder", EventType.notified, 0)])
            first = committer.submit(_ev("p0", EventType.objected, 1))
            _wait_until(committer._queue.empty)  # the committer has taken it and is waiting for the lock
            rest = [committer.submit(_ev(f"p{i}", EventType.objected, 1)) for i in range(1, 9)]
            assert not first.done()
        stored = [f.result(30) for f in [first, *rest]]
        assert [e.seq for e in stored] == list(range(2, 11))
        assert {e.recorded_at for e in stored} == {stored[0].recorded_at}
        assert [led.get(e.event_id) for e in stored] == stored
    finally:
        holder.close()
        led.close()


def test_two_workers_committers_taking_turns_lose_nothing(ledger_url: str) -> None:
    """Two committers on one ledger, as two web workers have, each fed by four
    threads: every event is stored once, numbered without a gap, and chained."""
    from consentry.audit.log import verify

    leds = [Ledger(ledger_url), Ledger(ledger_url)]
    try:
        committers = [GroupCommitter(x) for x in leds]
        got: list = []

        def work(i: int) -> None:
            for j in range(25):
                got.append(committers[i % 2].record(_ev(f"w{i}-{j}", EventType.objected, j)))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(got) == leds[0].count() == 200
        assert sorted(e.seq for e in got) == list(range(1, 201))
        assert len({e.event_id for e in got}) == 200
        for e in got[::13]:
            assert leds[1].get(e.event_id) == e
        assert verify(leds[0]).ok
    finally:
        for x in leds:
            x.close()


def test_a_write_refused_when_the_pipeline_is_answered_is_not_acknowledged(pg_url: str) -> None:
    """On PostgreSQL a batch's writes are answered only when its pipeline is
    left. A write the server refuses (here a trigger) must fail the batch
    there: its waiter gets the error and the event is not stored, the others
    are committed one by one and acknowledged, and the connections go back
    to the pool clean."""
    holder, led = Ledger(pg_url), Ledger(pg_url)
    try:
        with led.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION consentry_test_refuse() RETURNS trigger AS $$ BEGIN "
                "IF NEW.user_id = 'refused' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; "
                "END $$ LANGUAGE plpgsql")
            conn.exec_driver_sql("CREATE TRIGGER consentry_test_refuse BEFORE INSERT ON ledger_events "
                                 "FOR EACH ROW EXECUTE FUNCTION consentry_test_refuse()")
        committer = GroupCommitter(led)
        with holder.transaction() as conn:  # hold the lock, so that all of them go in one batch
            holder.append_in(conn, [_ev("holder", EventType.notified, 0)])
            futures = [committer.submit(_ev(u, EventType.objected, 1)) for u in ("a", "refused", "b")]
            _wait_until(committer._queue.empty)
        with pytest.raises(Exception, match="refused by the test"):
            futures[1].result(30)
        a, b = futures[0].result(30), futures[2].result(30)
        assert led.count() == 3 and {e.user_id for e in led.iter_events()} == {"holder", "a", "b"}
        assert led.get(a.event_id) == a and led.get(b.event_id) == b
        assert led.state("refused") is None
        # The connections go back to the pool clean: the next batches on them commit.
        after = [committer.record(_ev(f"after{i}", EventType.objected, 2)) for i in range(6)]
        assert [e.seq for e in after] == list(range(4, 10))
    finally:
        with led.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS consentry_test_refuse ON ledger_events")
        holder.close()
        led.close()
