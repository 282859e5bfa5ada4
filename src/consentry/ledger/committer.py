"""Group commit: many concurrent appends, one transaction and one fsync.

A request hands its event to the committer and waits until the transaction
holding it has committed, so "acknowledged" still means "durable". While one
transaction runs, the next requests queue up and go together in the next
one: no added delay when idle, far fewer fsyncs under load.

An event can carry work for the same transaction: the mails it causes
(`record(event, mails=[...])`), queued in the mail outbox only if the event
is committed, and built once its seq is known (a confirmation names it).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Protocol

from sqlalchemy import Connection, Select, func, select

from ..errors import NotInForce, ObjectionSuperseded
from ..timeutil import from_micros
from . import store
from . import tables as t
from .events import OBJECTION_TYPES, EventType, NewEvent, StoredEvent
from .store import ImportResult, Ledger

MAX_BATCH = 500


class EventMail(Protocol):
    """A mail to queue with an event (consentry.mail.outbox.OutgoingMail or
    MailForEvent): `enqueue` runs in the event's transaction, after it is stored.
    If it raises, the event is not committed and its waiter gets the error."""

    def enqueue(self, conn: Connection, event: StoredEvent) -> object: ...


class StillInForce:
    """An EventMail that mails nothing: run in the event's own transaction, it
    rolls a withdrawal back (NotInForce) unless the latest event of `kinds`
    before it is still `wanted`. A check before queueing reads the state
    outside the write, so ten concurrent withdrawals of one objection all
    passed it and all were recorded."""

    def __init__(self, kinds: Sequence[str], wanted: str) -> None:
        self.kinds, self.wanted = tuple(kinds), wanted

    def enqueue(self, conn: Connection, event: StoredEvent) -> None:
        latest = conn.execute(
            select(t.events.c.type).where(t.events.c.user_id == event.user_id, t.events.c.seq < event.seq,
                                          t.events.c.type.in_(self.kinds))
            .order_by(t.events.c.seq.desc()).limit(1)).scalar()
        if latest != self.wanted:
            raise NotInForce(f"{event.user_id}: nothing in force to withdraw")


def _latest_objection_events(user_ids: list[str], before_seq: int | None = None) -> Select:
    """The objection-type event each person's objection state comes from (the
    latest by `at`, ties by ledger order, as person_state folds them), before
    `before_seq` if given."""
    e = t.events.c
    where = [e.user_id.in_(user_ids), e.type.in_([k.value for k in OBJECTION_TYPES])]
    if before_seq is not None:
        where.append(e.seq < before_seq)
    ranked = select(
        e.user_id, e.seq, e.type, e.at_us, e.note,
        func.row_number().over(partition_by=e.user_id, order_by=(e.at_us.desc(), e.seq.desc())).label("rn"),
    ).where(*where).subquery()
    return select(ranked.c.user_id, ranked.c.seq, ranked.c.type, ranked.c.at_us, ranked.c.note).where(ranked.c.rn == 1)


def objections_in_force(conn: Connection, user_ids: list[str]) -> dict[str, tuple[int, int, str | None]]:
    """user_id -> (seq, at in µs, note) of the objection in force, for those of `user_ids` who have one."""
    if not user_ids:
        return {}
    rows = conn.execute(_latest_objection_events(user_ids)).all()
    return {str(r.user_id): (int(r.seq), int(r.at_us), r.note) for r in rows if r.type == EventType.objected.value}


class AnswersObjection:
    """An EventMail that mails nothing (as `ledger.StillInForce`): run in the
    rejection's own transaction, before its mail is queued, it rolls the
    rejection back unless an objection is still in force and, if `seq` is
    given, it is that one (the one the reviewer read). A check before the
    write read the ledger outside it: an objection made again in between was
    rejected on grounds written for the one before, its note never read."""

    def __init__(self, seq: int | None) -> None:
        self.seq = seq

    def enqueue(self, conn: Connection, event: StoredEvent) -> None:
        user_id = event.user_id or ""
        row = conn.execute(_latest_objection_events([user_id], before_seq=event.seq)).first()
        current = int(row.seq) if row is not None and row.type == EventType.objected.value else None
        if current is None and self.seq is None:
            raise NotInForce(f"{user_id}: nothing in force to reject")
        if current is None or (self.seq is not None and current != self.seq):
            raise ObjectionSuperseded(user_id, self.seq if self.seq is not None else 0, current)


_Item = tuple[NewEvent, "Future[StoredEvent]", Sequence[EventMail]]


class GroupCommitter:
    def __init__(self, ledger: Ledger, *, max_batch: int = MAX_BATCH) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, event: NewEvent, *, mails: Sequence[EventMail] = ()) -> Future[StoredEvent]:
        """Queue one event (and the mails it causes); the future resolves when it is committed."""
        self._ensure_thread()
        future: Future[StoredEvent] = Future()
        self._queue.put((event.with_id(), future, tuple(mails)))
        return future

    def record(self, event: NewEvent, timeout: float = 30.0, *, mails: Sequence[EventMail] = ()) -> StoredEvent:
        """Append one event; returns once it is committed (raises if it was not)."""
        return self.submit(event, mails=mails).result(timeout)

    async def arecord(self, event: NewEvent, timeout: float = 30.0, *, mails: Sequence[EventMail] = ()) -> StoredEvent:
        """The same for async code: waits without holding a thread."""
        import asyncio

        return await asyncio.wait_for(asyncio.wrap_future(self.submit(event, mails=mails)), timeout)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ledger-group-commit", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            batch += self._take(self.max_batch - 1)
            try:
                self._commit(batch)  # may grow `batch` by the events that came while it waited for the lock
            except Exception:
                # One bad event must not cost anyone else theirs: commit one by one.
                for item in batch:
                    try:
                        self._commit([item], gather=False)
                    except Exception as exc:  # this waiter learns its event was not committed
                        if not item[1].done():
                            item[1].set_exception(exc)

    def _take(self, n: int) -> list[_Item]:
        """Up to `n` queued items, without waiting."""
        out: list[_Item] = []
        while len(out) < n:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return out

    def _commit(self, batch: list[_Item], *, gather: bool = True) -> None:
        stored = self._append(batch, gather=gather)
        for event, future, _ in batch:
            if future.done():  # its waiter gave up (timed out): nobody to tell
                continue
            # Not in this transaction: it was already in the ledger (same event_id).
            found = stored.get(event.event_id or "") or self.ledger.get(event.event_id or "")
            try:
                if found is None:  # pragma: no cover - append either stores or finds it
                    future.set_exception(RuntimeError("event was not stored"))
                else:
                    future.set_result(found)
            except InvalidStateError:  # cancelled meanwhile
                pass

    def _append(self, batch: list[_Item], *, gather: bool = True) -> dict[str, StoredEvent]:
        """The store's own append for one batch, without reading the events back
        under the writer lock: seq and recorded_at are known, so they are built
        in memory (read back only if some were stored before). The mails of the
        events stored now are queued in the same transaction; an event that was
        already in the ledger had its mails queued when it was stored.

        With `gather`, the items queued while this batch waited for the ledger's
        lock (another worker's commit) join it once the lock is held: under
        load the batches grow instead of queueing behind each other, and a
        commit's fixed cost (its statements, its fsync) is shared by more
        events. When idle nothing waits: nothing is queued."""
        led = self.ledger
        events = [e for e, _, _ in batch]

        def more(room: int) -> list[NewEvent]:
            extra = self._take(min(room, self.max_batch - len(batch)))
            batch.extend(extra)
            return [e for e, _, _ in extra]

        result = ImportResult()
        with led._writing(), led.engine.begin() as conn:
            led._append(conn, events, result, returning=False, more=more if gather else None)
            if not result.added:
                return {}
            if result.already_there:
                q = select(t.events).where(t.events.c.seq >= result.first_seq).order_by(t.events.c.seq)
                stored = [store._row_to_stored(r) for r in conn.execute(q).mappings()]
            else:
                recorded_at = from_micros(result.recorded_us or 0)
                stored = [
                    StoredEvent(**e.model_dump(), seq=seq, recorded_at=recorded_at)
                    for seq, e in enumerate(events, start=result.first_seq)
                ]
            by_id = {e.event_id: e for e in stored}
            queued: set[str] = set()
            for event, _, mails in batch:
                now_stored = by_id.get(event.event_id or "")
                if now_stored is None or not mails or event.event_id in queued:
                    continue
                queued.add(now_stored.event_id or "")
                for mail in mails:
                    mail.enqueue(conn, now_stored)
        # Committed (durable) from here on.
        return by_id
