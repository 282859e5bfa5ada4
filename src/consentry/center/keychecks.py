"""API keys checked together: one question to the database for the requests
that arrived together.

Every API request has its key checked against the database, never against a
cache, so that a revoked key stops at once. Asked one request at a time, each
check held the event loop for a round trip to the database: under load on
PostgreSQL a worker spent its time waiting instead of answering, and intake
stopped near 1,600 objections/s (benchmarks/objection_intake.py). Here the
requests that reach the check in the same turn of the event loop wait for the
next turn, and their keys are looked up in one statement. Each request is still
answered from a read made after it arrived.
"""

from __future__ import annotations

import asyncio

from ..access import ApiClients

Found = tuple[str, frozenset[str]]


class KeyChecks:
    """`ApiClients.verify_client` for async code, asked in batches, one batch
    per event loop (a test client may run the app on another loop)."""

    def __init__(self, clients: ApiClients) -> None:
        self.clients = clients
        self._waiting: dict[asyncio.AbstractEventLoop, list[tuple[str, asyncio.Future[Found | None]]]] = {}

    async def verify_client(self, key: str) -> Found | None:
        """(client id, scopes) for a valid, unrevoked key, else None."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Found | None] = loop.create_future()
        waiting = self._waiting.get(loop)
        if waiting is None:  # the first in this turn asks for everyone who comes before the next
            waiting = self._waiting[loop] = []
            loop.call_soon(self._ask, loop)
        waiting.append((key, future))
        return await future

    def _ask(self, loop: asyncio.AbstractEventLoop) -> None:
        waiting = self._waiting.pop(loop, [])
        try:
            found = self.clients.verify_clients({key for key, _ in waiting})
        except BaseException as exc:  # the database failed: every waiter gets the error, as a lone check would
            for _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for key, future in waiting:
            if not future.done():  # a waiter whose request was cancelled meanwhile
                future.set_result(found.get(key))
