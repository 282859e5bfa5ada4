"""API keys checked in batches (center/keychecks.py): the requests that come
together share one lookup, each still gets its own key's answer, read after it
arrived, and a failing database fails every waiter. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from center_kit import center_factory, export_dir, smtp  # noqa: F401  (fixtures)
from consentry.access import ApiClients
from consentry.center.keychecks import KeyChecks
from consentry.ledger import Ledger


class Counted(ApiClients):
    """The real lookup, counting how often the database is asked and for how many keys."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        super().__init__(engine)
        self.asked: list[int] = []

    def verify_clients(self, keys):  # noqa: ANN001, ANN201
        self.asked.append(len(keys))
        return super().verify_clients(keys)


@pytest.fixture
def clients(ledger_url: str):
    led = Ledger(ledger_url)
    yield Counted(led.engine)
    led.close()


def test_requests_that_come_together_share_one_lookup_and_each_gets_its_own_answer(clients: Counted) -> None:
    writer, wkey = clients.create("writer", ["write"])
    reader, rkey = clients.create("reader", ["read"])
    gone, gkey = clients.create("gone")
    assert clients.revoke(gone)
    checks = KeyChecks(clients)

    async def together() -> list:
        keys = [wkey, rkey, gkey, "csk_never-issued", wkey] * 20
        return await asyncio.gather(*(checks.verify_client(k) for k in keys))

    clients.asked.clear()
    answers = asyncio.run(together())
    assert clients.asked == [4]  # 100 checks, one question, for the 4 different keys
    assert answers[:5] == [(writer, frozenset({"write"})), (reader, frozenset({"read"})), None, None,
                           (writer, frozenset({"write"}))]
    assert answers == answers[:5] * 20


def test_a_key_revoked_between_two_turns_is_refused_on_the_next(clients: Counted) -> None:
    """Nothing is remembered from one lookup to the next: a revoked key stops at once."""
    cid, key = clients.create("integration")
    checks = KeyChecks(clients)

    async def twice() -> tuple:
        first = await checks.verify_client(key)
        clients.revoke(cid)
        return first, await checks.verify_client(key)

    first, second = asyncio.run(twice())
    assert first == (cid, frozenset({"read", "write"}))
    assert second is None
    assert len(clients.asked) == 2


def test_a_cancelled_waiter_leaves_the_others_their_answer(clients: Counted) -> None:
    cid, key = clients.create("integration")
    checks = KeyChecks(clients)

    async def one_cancelled() -> list:
        tasks = [asyncio.ensure_future(checks.verify_client(key)) for _ in range(3)]
        await asyncio.sleep(0)  # all three are waiting for the lookup
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    got = asyncio.run(one_cancelled())
    assert got[0] == got[2] == (cid, frozenset({"read", "write"}))
    assert isinstance(got[1], asyncio.CancelledError)


def test_when_the_database_fails_every_waiter_gets_the_error_and_none_is_let_in(clients: Counted) -> None:
    cid, key = clients.create("integration")
    with clients.engine.begin() as conn:
        conn.execute(text("ALTER TABLE api_clients RENAME TO api_clients_moved"))
    checks = KeyChecks(clients)

    async def together() -> list:
        return await asyncio.gather(*(checks.verify_client(key) for _ in range(5)), return_exceptions=True)

    try:
        got = asyncio.run(together())
    finally:
        with clients.engine.begin() as conn:
            conn.execute(text("ALTER TABLE api_clients_moved RENAME TO api_clients"))
    assert len(got) == 5 and all(isinstance(g, Exception) for g in got), got
    assert clients.asked == [1]
    # and the next turn asks again, and finds the key
    assert asyncio.run(checks.verify_client(key)) == (cid, frozenset({"read", "write"}))


def test_many_different_keys_are_asked_in_chunks_a_sqlite_statement_can_take(clients: Counted) -> None:
    made = [clients.create(f"c{i}", ["read"]) for i in range(3)]
    keys = [k for _, k in made] + [f"csk_unknown-{i}" for i in range(250)]
    found = clients.verify_clients(keys)
    assert found == {k: (cid, frozenset({"read"})) for cid, k in made}


def test_a_real_server_answers_each_request_of_a_shared_lookup_by_its_own_key(center_factory, ledger_url: str) -> None:  # noqa: ANN001, F811
    """Through uvicorn, on kept-alive connections (as a platform's client
    keeps them): while one lookup is held, twenty requests arrive with a
    writing key, a reading key and a key never issued. They share a lookup or
    two, and each gets its own key's answer: 201 and recorded, 403 or 401 and
    nothing written."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from browser_kit import AppServer

    kit = center_factory(ledger_url=ledger_url)
    _, write_key = ApiClients(kit.ledger.engine).create("writer", ["write"])
    _, read_key = ApiClients(kit.ledger.engine).create("reader", ["read"])
    center = kit.app.state.center
    lookup, held, asked = center.clients.verify_clients, threading.Event(), []

    def holding(keys):  # noqa: ANN001, ANN202
        asked.append(len(keys))
        if len(asked) == 1:
            held.wait(10)  # the event loop waits here: the others queue up behind it
        return lookup(keys)

    center.clients.verify_clients = holding
    server = AppServer().start(kit.app)
    keys = {"first-in": write_key} | {f"w{i}": write_key for i in range(10)} | \
        {f"r{i}": read_key for i in range(5)} | {f"x{i}": "csk_never-issued" for i in range(5)}
    clients = {u: httpx.Client(base_url=server.base_url, timeout=20) for u in keys}

    def post(user_id: str) -> tuple[str, int]:
        r = clients[user_id].post(f"/api/v1/people/{user_id}/objection",
                                  headers={"Authorization": f"Bearer {keys[user_id]}"})
        return user_id, r.status_code

    try:
        for c in clients.values():  # each connection opened and kept alive
            assert c.get("/static/site.css").status_code == 200
        with ThreadPoolExecutor(len(keys)) as pool:
            first = pool.submit(post, "first-in")
            deadline = time.monotonic() + 10
            while not asked and time.monotonic() < deadline:
                time.sleep(0.01)
            rest = [pool.submit(post, u) for u in keys if u != "first-in"]
            time.sleep(0.5)  # all twenty sent while the first lookup is held
            held.set()
            answers = dict(f.result() for f in [first, *rest])
    finally:
        held.set()
        for c in clients.values():
            c.close()
        server.stop()
    assert answers == {u: 201 if k == write_key else 403 if k == read_key else 401 for u, k in keys.items()}
    # The twenty shared a few lookups, not one each (the refused ones are asked
    # again by the documented route, which writes their error).
    assert len(asked) <= 6, asked
    recorded = {e.user_id for e in kit.events() if e.type == "objected"}
    assert recorded == {u for u, k in keys.items() if k == write_key}
