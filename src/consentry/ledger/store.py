"""The ledger: an append-only log of events in SQLite (default) or PostgreSQL.

Appends take the head row's lock, so sequence numbers are gap-free and in
commit order; the person_state table is updated in the same transaction.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func, select, text, update
from sqlalchemy.exc import DatabaseError, OperationalError, SQLAlchemyError

from .. import config
from ..errors import EventError, InputError, InputProblems, LedgerError
from ..timeutil import from_micros, iso, to_micros
from ..words import count
from . import chain
from . import tables as t
from .prepared import Prepared, Sent, pipeline, run
from .events import CONSENT_TYPES, OBJECTION_TYPES, THIRD_PARTY_TYPES, EventType, NewEvent, StoredEvent, one_event, some_events
from .state import PersonState

if TYPE_CHECKING:  # loaded where events are read into Arrow: a re-run through the extract never needs it
    import pyarrow as pa

CHUNK = 5_000
_HEAD = Prepared(select(t.head.c.last_seq).where(t.head.c.id == 1).with_for_update())
_TOP = Prepared(select(func.coalesce(func.max(t.events.c.seq), 0)))
_SET_HEAD = Prepared(update(t.head).where(t.head.c.id == 1).values(last_seq=bindparam("new_seq")))
_EVENT_COLS = [c.name for c in t.events.columns]
#: Refresh PostgreSQL's statistics after adding this many events in one transaction.
ANALYZE_FROM = 10_000




def ledger_url_of(url: object) -> str:
    """The URL `Ledger(url)` opens: a `pathlib.Path` is a SQLite file; None is
    the default. An empty string (which fell back to the default ledger
    without a word), a bare file name ("consentry.db", which SQLAlchemy could
    not parse) or another type is refused, saying what to write."""
    if url is None:
        return config.ledger_url()
    if isinstance(url, os.PathLike):
        path = os.fsdecode(os.fspath(url))
        if not path.strip():
            raise InputError("the ledger's path is empty", where="ledger", fix=_NAME_IT)
        return f"sqlite:///{path}"
    if not isinstance(url, str):
        raise InputError(f"{url!r} is not a ledger URL", where="ledger", fix=_NAME_IT)
    if not url.strip():
        raise InputError("the ledger URL is empty (it is not taken for the default ledger)", where="ledger",
                         fix=_NAME_IT + "; or pass None for the default ($CONSENTRY_LEDGER, else consentry.db in "
                             "$CONSENTRY_HOME)")
    if "://" not in url:
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", url):  # a scheme, but not a URL: sqlite:/x.db
            raise InputError("the ledger URL is not a database URL (SCHEME://..., with two slashes)", where="ledger",
                             fix=_NAME_IT)
        raise InputError(f"'{url}' is not a database URL but a file name", where="ledger",
                         fix=f"for the SQLite file write sqlite:///{url}" + (
                             "" if url.startswith("/") else f" (relative to the working folder; or sqlite:///"
                                                            f"{Path(url).absolute()})") + ", or pass a pathlib.Path")
    return url


_NAME_IT = ("name the ledger: sqlite:///consentry.db (a file in the working folder), sqlite:////abs/path/consentry.db, "
            "a pathlib.Path, or postgresql+psycopg://USER@HOST/DB")


def _parsed_url(url: str):  # noqa: ANN202 - a sqlalchemy URL
    """`url`, parsed; one SQLAlchemy cannot read is an InputError that does not
    repeat it (it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise InputError("the ledger URL cannot be read as a database URL", where="ledger", fix=_NAME_IT) from None


def missing_sqlite_file(parsed) -> Path | None:  # noqa: ANN001 - a sqlalchemy URL
    """The file of a SQLite ledger URL when it does not exist; None when it
    does, for an in-memory one, and for any other database."""
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return None if Path(db).exists() else Path(db).absolute()


def redact_url(url: str) -> str:
    """A URL safe to print: never show a password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable ledger URL>"


@functools.cache
def head_revision() -> str:
    """The newest schema revision: the migrations are one line, each file named
    after its revision ("0008_mail_outbox.py" is revision "0008", its
    `down_revision` the one before; a test holds Alembic to it)."""
    versions = resources.files("consentry.ledger") / "migrations" / "versions"
    return max(f.name[:4] for f in versions.iterdir() if f.name.endswith(".py") and f.name[:4].isdigit())


@dataclass
class ImportResult:
    read: int = 0
    added: int = 0
    already_there: int = 0
    #: lines whose event_id came earlier in the same file with the same content: imported once
    repeated: int = 0
    #: live appends only: event_ids stored with other content (kept as stored). An import
    #: refuses the whole file instead.
    conflicts: list[str] = field(default_factory=list)
    #: live appends only: event_ids stored for another person, item or type: (the stored
    #: event's seq, the stored event, the one given). Never a retry of the same act.
    clashes: list[tuple[int, NewEvent, NewEvent]] = field(default_factory=list)
    first_seq: int | None = None
    last_seq: int | None = None
    recorded_us: int | None = None  # when the events added were stored


def _sqlite_pragmas(dbapi_conn, _record, synchronous: str = "FULL") -> None:  # noqa: ANN001
    dbapi_conn.isolation_level = None  # we emit BEGIN IMMEDIATE ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL by default; a notice campaign uses NORMAL (durable if the process dies,
    # not on power loss: then a notice is lost, and the person is simply not used).
    cur.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
    cur.execute("PRAGMA busy_timeout=30000")
    if synchronous == "NORMAL":
        # A campaign checkpoints itself (Ledger.checkpoint) once a mail's final dot
        # is out: SQLite's automatic checkpoint runs inside the commit that fills
        # the WAL, with an fsync, i.e. between a notice's commit and its dot.
        cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


#: `Ledger.exclusive` on an in-memory SQLite ledger: one process, so a lock per ledger and name.
_MEMORY_LOCKS: dict[tuple[int, str], threading.Lock] = {}


def _pg_session(dbapi_conn, _record) -> None:  # noqa: ANN001
    """Every PostgreSQL session ends with its client. A killed client sends
    nothing; the server notices the closed socket when it next reads, but a
    statement still running would keep the ledger's lock until it finished.
    `client_connection_check_interval` (PostgreSQL 14+) makes the server poll
    the socket while it works, and TCP keepalives catch a vanished host.

    Every statement is planned for its own parameters (`force_custom_plan`).
    psycopg prepares a statement run five times on a connection, and the
    server may then keep one generic plan: made while a new ledger was small,
    it scanned whole tables, and a group commit's statements grew slower with
    every event the ledger took (at 9,000 events, a batch's person_state
    refresh took 0.85 ms and its DELETE 0.39 ms; planned afresh, 0.37 and
    0.17 ms with the planning)."""
    with dbapi_conn.cursor() as cur:
        cur.execute("SET plan_cache_mode = force_custom_plan")
        if dbapi_conn.info.server_version >= 140000:
            cur.execute("SET client_connection_check_interval = '1s'")
        cur.execute("SET tcp_keepalives_idle = 10")
        cur.execute("SET tcp_keepalives_interval = 5")
        cur.execute("SET tcp_keepalives_count = 3")
    dbapi_conn.commit()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front: a deferred transaction that later
    # writes can fail with SQLITE_BUSY instead of waiting its turn. Readers
    # (marked with the `consentry_read` option) must not: in WAL mode they
    # never block, and taking the lock would queue them behind every writer.
    if conn.get_execution_options().get("consentry_read"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def reader(engine: Engine) -> Engine:
    """The same database for reads only: no write lock on SQLite."""
    return engine.execution_options(consentry_read=True)



def _recorded_seq(data: str) -> int | None:
    """The last event an audit record of a ledger event (`seq`) or of a group of them (`last_seq`) chains; None
    when it cannot be read (`audit verify` names an edited record)."""
    try:
        d = json.loads(data)
        return int(d["last_seq"] if "last_seq" in d else d["seq"])
    except (ValueError, KeyError, TypeError):
        return None

class Ledger:
    """The append-only record of what people said and were told (CONTRACT §2), on SQLite or
    PostgreSQL: every event durable before it is acknowledged, chained into the audit log."""

    #: How long a writer waits for the ledger's head lock (PostgreSQL) before a
    #: clear "busy" error instead of hanging behind, say, a long import.
    lock_timeout_s: float = 30.0

    def __init__(self, url: str | os.PathLike[str] | None = None, *, migrate: bool = True, synchronous: str = "FULL",
                 extract_dir: Path | None = None, create: bool = True) -> None:
        """`url`: a database URL, a `pathlib.Path` of a SQLite file, or None for
        the default ($CONSENTRY_LEDGER, else consentry.db in $CONSENTRY_HOME).
        `create=False`: a SQLite file that does not exist is refused (a
        mistyped path made a new, empty ledger, and decisions from it knew of
        no objection); nothing is created then."""
        self.url = ledger_url_of(url)
        #: Where the decision engines' read of the events is kept per watermark (see `extract.py`); None: not kept.
        self.extract_dir = extract_dir
        parsed = _parsed_url(self.url)
        if not create and (missing := missing_sqlite_file(parsed)) is not None:
            raise InputError(
                f"there is no ledger at {missing}; nothing was read, and no empty ledger was made there",
                where=redact_url(self.url),
                fix="name the ledger that holds the events: sqlite:///FILE (an absolute path takes four slashes), a "
                    "pathlib.Path, or None for $CONSENTRY_LEDGER, else consentry.db in $CONSENTRY_HOME; to start a new, "
                    "empty ledger there, ask for it: Platform(..., create_ledger=True), or Ledger(url) (create=True)")
        try:
            if parsed.get_backend_name() == "postgres":  # Heroku's and libpq's spelling, which SQLAlchemy does not read
                raise LedgerError(
                    f"cannot open the ledger {redact_url(self.url)}: a PostgreSQL ledger's URL starts with "
                    f"postgresql+psycopg://, not postgres://; write {redact_url(self.url).replace('postgres://', 'postgresql+psycopg://', 1)}")
            if parsed.get_backend_name() not in ("sqlite", "postgresql"):
                raise LedgerError(
                    f"cannot open the ledger {redact_url(self.url)}: the ledger runs on SQLite or PostgreSQL, "
                    f"not {parsed.get_backend_name()}; use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB")
            args = {}
            if parsed.get_backend_name() == "postgresql" and "application_name" not in parsed.query:
                args["application_name"] = "consentry"
            self.engine: Engine = create_engine(self.url, future=True, connect_args=args)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise LedgerError(f"cannot open the ledger {redact_url(self.url)}: {exc}") from None
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.engine.dialect.name == "postgresql":
            event.listen(self.engine, "connect", _pg_session)
        self._thread_lock = threading.Lock()
        db = self.engine.url.database
        self._lock_path = f"{db}.writelock" if self.is_sqlite and db and db != ":memory:" else None
        if self.is_sqlite:
            event.listen(
                self.engine, "connect", lambda dbapi_conn, rec: _sqlite_pragmas(dbapi_conn, rec, synchronous)
            )
            event.listen(self.engine, "begin", _sqlite_begin)
        self.reader = reader(self.engine)
        if migrate:
            self.migrate()

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Ledger({redact_url(self.url)!r})"  # never the password

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (no-op when current).
        A current schema is recognised with one SELECT: importing Alembic and
        reading its scripts cost every command that opens the ledger 0.15 s."""
        if self._recorded_revisions() == [head_revision()]:
            return
        from alembic import command
        from alembic.config import Config
        from alembic.util import CommandError

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("consentry.ledger") / "migrations"))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except DatabaseError as exc:  # OperationalError (cannot open) is one; "file is not a database" another
            said = str(exc.orig).strip().splitlines()[0]
            if said == "file is not a database":
                said = f"{self.engine.url.database} is not a SQLite database (another file given as the ledger?)"
            db = self.engine.url.database
            if self.is_sqlite and db and db != ":memory:" and not Path(db).parent.is_dir():
                # sqlite:///FILE is relative to the working folder, sqlite:////FILE absolute: the usual slip.
                said = (f"the folder {Path(db).parent.resolve()} does not exist (sqlite:///FILE is relative to the "
                        "working folder; an absolute path takes four slashes: sqlite:////var/lib/consentry.db)")
            raise LedgerError(f"cannot reach the ledger {redact_url(self.url)}: {said}") from None
        except CommandError:  # a revision this code does not have: a newer consentry wrote the ledger
            found = ", ".join(self._recorded_revisions() or ["?"])
            raise LedgerError(
                f"the ledger {redact_url(self.url)} is at schema revision {found}, which this version of "
                f"consentry does not know (it knows up to {head_revision()}): a newer consentry wrote it. "
                "Use that version or a newer one with this ledger; nothing was changed"
            ) from None

    def _recorded_revisions(self) -> list[str] | None:
        """The schema revisions the ledger records; None when it cannot say (no
        schema yet, a database that cannot be reached: Alembic then creates
        it or says why not)."""
        try:
            with self.engine.connect() as conn:
                return [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
        except SQLAlchemyError:
            return None

    # -- writing ----------------------------------------------------------------

    def checkpoint(self) -> None:
        """Copy the SQLite WAL into the database without waiting for readers
        (PASSIVE); for a ledger opened with synchronous="NORMAL", which does not
        checkpoint on its own. Nothing to do on PostgreSQL."""
        if self.is_sqlite:
            raw = self.engine.raw_connection()  # outside a transaction: SQLite refuses a checkpoint in one
            try:
                raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                raw.close()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One writer at a time across threads and processes. For SQLite an
        flock wakes the next writer the moment the lock is free, where SQLite's
        own busy handler sleeps in steps of up to 100 ms."""
        with self._thread_lock:
            if self._lock_path is None:
                yield
                return
            with open(self._lock_path, "a+b") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def exclusive(self, name: str, busy: str) -> Iterator[None]:
        """Hold `name` for the block, or LedgerError(`busy`) at once when
        another process (or thread) holds it: for work that two runs would do
        twice, such as sending a campaign's mails. The lock dies with its
        holder: an flock beside a SQLite file, a PostgreSQL session's advisory
        lock on a connection of its own."""
        import hashlib

        key = hashlib.sha256(f"consentry:{name}".encode()).digest()
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                number = int.from_bytes(key[:8], "big", signed=True)
                if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": number}).scalar_one():
                    raise LedgerError(busy)
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": number})
            return
        db = self.engine.url.database
        path = f"{db}.{key[:8].hex()}.lock" if db and db != ":memory:" else None
        if path is None:  # one process: a lock per name in it
            lock = _MEMORY_LOCKS.setdefault((id(self), name), threading.Lock())
            if not lock.acquire(blocking=False):
                raise LedgerError(busy)
            try:
                yield
            finally:
                lock.release()
            return
        with open(path, "a+b") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LedgerError(busy) from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction holding the writer lock: for library code that
        must change its own tables and append events atomically."""
        with self._writing(), self.engine.begin() as conn:
            yield conn

    def append_in(self, conn: Connection, events: Iterable[NewEvent], *, returning: bool = True) -> list[StoredEvent]:
        """Append within a transaction from `transaction()`."""
        stored, _ = self._append(conn, [e.with_id() for e in some_events(events, "Ledger.append_in")], ImportResult(),
                                 returning=returning)
        return stored

    def append(self, events: Iterable[NewEvent]) -> list[StoredEvent]:
        """Append events in one transaction; ids already stored are left alone
        (a retry of the same act, even at another time, is stored once). An id
        stored for another person, item or type is refused, with nothing
        written: keeping the stored one silently lost the new event (an
        objection among them)."""
        batch = [e.with_id() for e in some_events(events)]
        with self._writing(), self.engine.begin() as conn:
            stored, result = self._append(conn, batch, ImportResult())
            if result.clashes:  # raised inside the transaction: none of the batch is committed
                seq, old, new = result.clashes[0]
                who = lambda e: f"{e.type.value} of {e.user_id or e.item_id}"  # noqa: E731
                raise EventError(
                    f"event_id '{new.event_id}' is already in the ledger as event #{seq} ({who(old)}); this event is "
                    f"a {who(new)}; the ledger is append-only, so nothing was recorded",
                    [], where="event_id",
                    fix="give each event its own event_id, or none (consentry then makes one from its content)")
        return stored

    def record(self, event: NewEvent) -> StoredEvent:
        """Append one event and return it as stored (committed when this returns)."""
        stored = self.append([one_event(event)])
        if stored:
            return stored[0]
        existing = self.get(event.with_id().event_id or "")
        assert existing is not None
        return existing

    def import_jsonl(self, path: str | Path, *, batch_size: int = 50_000) -> ImportResult:
        """Import a JSONL file of events: all or nothing, idempotent by event_id.

        Streams in batches inside one transaction: a bad line anywhere rolls
        back everything, and memory stays flat however long the file is. No
        event is ever dropped silently: an event_id repeated in the file with
        the same content is imported once (and counted as repeated); with other
        content, or stored in the ledger with other content, the whole file is
        refused, naming the lines (or the stored event)."""
        path = Path(path)
        result = ImportResult()
        with self._writing(), self.engine.begin() as conn:
            head = start = self._lock_head(conn)
            now_us = to_micros(datetime.now(UTC))
            for batch in iter_jsonl(path, batch_size):
                result.read += len(batch)
                fresh = [x for x in batch if not x.repeat]
                result.repeated += len(batch) - len(fresh)
                lines = {x.event.event_id: x.lineno for x in fresh}
                head = self._insert(conn, [x.event for x in fresh], head, now_us, set(), result, strict=(path, lines))
            self._commit_head(conn, start, head, result)
        return result

    def _append(
        self, conn: Connection, batch: list[NewEvent], result: ImportResult, *, returning: bool = True,
        more: Callable[[int], list[NewEvent]] | None = None,
    ) -> tuple[list[StoredEvent], ImportResult]:
        """Store `batch` (the events not stored yet). `more(room)` is asked, once
        the ledger's lock is held, for up to `room` further events to store in
        the same transaction; they are appended to `batch` itself. A group
        commit passes the events that arrived while it waited for the lock."""
        if not batch:
            return [], result
        # A batch small enough for INSERT (COPY cannot be pipelined) takes two round trips on
        # PostgreSQL: its reads, all sent at once behind the head's lock; then its writes
        # (three when `more` adds events: their stored copies are read once the lock is held).
        pipelined = len(batch) < chain.COPY_FROM
        with pipeline(conn, enabled=pipelined):
            locking = self._send_lock(conn)
            existing = self._send_existing(conn, [e.event_id for e in batch])
            chain_head = chain.send_head(conn)
            head = start = self._locked(locking)
            extra = more(chain.COPY_FROM - 1 - len(batch)) if more is not None and pipelined else []
            if extra:
                batch.extend(extra)
                existing += self._send_existing(conn, [e.event_id for e in extra])
            result.recorded_us = to_micros(datetime.now(UTC))
            head = self._insert(conn, batch, head, result.recorded_us, set(), result,
                                existing=self._existing_of(existing), chain_head=chain_head)
            self._commit_head(conn, start, head, result, people={e.user_id for e in batch if e.user_id})
        if head == start or not returning:
            return [], result
        rows = conn.execute(select(t.events).where(t.events.c.seq > start).order_by(t.events.c.seq)).mappings()
        return [_row_to_stored(r) for r in rows], result

    def _lock_head(self, conn: Connection) -> int:
        """Take the head row's lock and return the last seq (`_send_lock`, `_locked`)."""
        return self._locked(self._send_lock(conn))

    def _send_lock(self, conn: Connection) -> tuple[Sent, Sent]:
        """Send the head row's lock and the last seq stored. A writer waits at
        most `lock_timeout_s` (PostgreSQL; SQLite waits on the writer flock,
        which a killed process releases at once)."""
        if not self.is_sqlite:
            run(conn, f"SET LOCAL lock_timeout = '{int(self.lock_timeout_s * 1000)}ms'", None, fetch=False)
        return _HEAD.send(conn), _TOP.send(conn)

    def _locked(self, sent: tuple[Sent, Sent]) -> int:
        """The last seq, once the head row's lock is held. A head that disagrees
        with the events (edited by hand) refuses every append: numbering from it
        would collide with stored events or leave a gap."""
        try:
            head = int(sent[0].rows()[0][0])
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
                raise LedgerError(
                    f"the ledger is busy: another writer (an import?) has held it for {self.lock_timeout_s:g} s; "
                    "nothing was written, try again when it has finished"
                ) from None
            raise
        top = int(sent[1].rows()[0][0])
        if top != head:
            side = "behind" if head < top else "ahead of"
            raise LedgerError(
                f"the ledger's head is {side} its events: run `consentry audit verify` "
                f"(ledger_head.last_seq says #{head}, the events go up to #{top}); nothing was written"
            )
        return head

    def _insert(
        self,
        conn: Connection,
        batch: list[NewEvent],
        head: int,
        now_us: int,
        seen: set[str],
        result: ImportResult,
        *,
        strict: tuple[Path, dict[str, int]] | None = None,
        existing: dict[str, tuple[int, NewEvent]] | None = None,
        chain_head: Sent | None = None,
    ) -> int:
        """Insert the events not stored yet, numbering them from head + 1.
        `strict` (an import: the file and each event_id's line) refuses an
        event_id stored with other content instead of keeping the stored one."""
        if existing is None:
            existing = self._existing(conn, [e.event_id for e in batch])
        rows_out = []
        for e in batch:
            assert e.event_id is not None
            if e.event_id in existing or e.event_id in seen:
                result.already_there += 1
                old = existing.get(e.event_id)
                if old is not None and strict is not None:
                    diff = _difference(old[1], e, ("in the ledger", "here"), actor=True)
                    if diff:
                        path, lines = strict
                        raise InputError(
                            f"event_id '{e.event_id}' is already in the ledger as event #{old[0]} with different "
                            f"content ({diff}); the ledger is append-only; nothing was imported",
                            where=f"{path}, line {lines[e.event_id]}",
                            column="event_id",
                            fix="give this event its own event_id if it is a new event, or remove the line "
                                f"if event #{old[0]} is right (`consentry ledger show` prints it)",
                        )
                elif old is not None and _differs(old[1], e):
                    result.conflicts.append(e.event_id)
                    if any(getattr(old[1], k) != getattr(e, k) for k in ("user_id", "item_id", "type")):
                        result.clashes.append((old[0], old[1], e))
                continue
            seen.add(e.event_id)
            head += 1
            rows_out.append(
                {
                    "seq": head,
                    "event_id": e.event_id,
                    "user_id": e.user_id,
                    "item_id": e.item_id,
                    "type": e.type.value,
                    "at_us": to_micros(e.at),
                    "channel": e.channel.value,
                    "note": e.note,
                    "actor": e.actor,
                    "recorded_us": now_us,
                    "imported_from": e.imported_from,
                }
            )
        chain.bulk_insert(conn, t.events, rows_out)
        chain.append(conn, chain.event_records(rows_out, imported=strict is not None), sent_head=chain_head)
        result.added += len(rows_out)
        return head

    def _existing(self, conn: Connection, ids: list[str | None]) -> dict[str, tuple[int, NewEvent]]:
        """The stored events among `ids`: event_id -> (seq, event)."""
        return self._existing_of(self._send_existing(conn, ids))

    def _send_existing(self, conn: Connection, ids: list[str | None]) -> list[Sent]:
        """Send the reads of the stored events among `ids` (`_existing_of` reads them)."""
        if not ids:
            return []
        select_ = f"SELECT {', '.join(_EVENT_COLS)} FROM ledger_events WHERE event_id"
        if self.is_sqlite:
            return [Sent(conn, f"{select_} IN ({', '.join('?' * len(c))})", c) for c in
                    (ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK))]
        # one round trip with an array parameter, where IN lists cost a parse per chunk
        return [Sent(conn, f"{select_} = ANY(%s)", (ids,))]

    @staticmethod
    def _existing_of(sent: list[Sent]) -> dict[str, tuple[int, NewEvent]]:
        found: dict[str, tuple[int, NewEvent]] = {}
        for one in sent:
            for values in one.rows():
                row = dict(zip(_EVENT_COLS, values))
                found[row["event_id"]] = (row["seq"], _row_to_stored(row))
        return found

    def _commit_head(self, conn: Connection, start: int, head: int, result: ImportResult,
                     people: Collection[str] | None = None) -> None:
        """Move the head to `head` and refresh the state of the people concerned
        (`people`, when known: see `refresh_state`)."""
        if head == start:
            return
        _SET_HEAD.write(conn, new_seq=head)
        if not self.is_sqlite and head - start >= ANALYZE_FROM:
            # After a bulk load the planner's row counts are stale (autovacuum
            # cannot see uncommitted rows): refresh them for the statement below.
            run(conn, "ANALYZE ledger_events", None, fetch=False)
        refresh_state(conn, after_seq=start, people=people)
        result.first_seq, result.last_seq = start + 1, head

    # -- reading ----------------------------------------------------------------

    def watermark(self) -> int:
        """The last sequence number committed: everything up to it is visible."""
        with self.reader.connect() as conn:
            return int(conn.execute(select(t.head.c.last_seq).where(t.head.c.id == 1)).scalar_one())

    def numbering_problem(self) -> str | None:
        """Whether the events are numbered as consentry numbered them: the head
        is the last event, no number is missing below it (an event deleted
        outside consentry, such as an objection, would silently stop counting),
        and none the audit log records is gone from the end (deleted, with the
        head lowered to match). Index-only, so cheap enough before every build;
        `audit verify` checks the rest (content, against the audit chain). None
        when whole."""
        a = t.audit_log.c
        with self.reader.connect() as conn:
            # The audit log's last event record first: the event it names was committed with it, so the head
            # read after it is at least that event (a write in between cannot make a false alarm). By the
            # primary key, newest first: every live event gets a record, an import one per group.
            last_rec = conn.execute(select(a.seq, a.data).where(a.kind.in_(("ledger_event", "ledger_events")))
                                    .order_by(a.seq.desc()).limit(1)).first()
            head_seq = int(conn.execute(select(t.head.c.last_seq).where(t.head.c.id == 1)).scalar_one())
            n, lo, hi = conn.execute(select(func.count(), func.min(t.events.c.seq), func.max(t.events.c.seq))).one()
            hi = int(hi or 0)
            if head_seq != hi:
                return (f"the ledger's head says #{head_seq}, but its events go up to #{hi}: ledger_head.last_seq was "
                        "changed outside consentry (decisions read up to the head, so events after it were ignored); "
                        "set it back to the last event")
            gap = None
            if not (n == hi and (not n or lo == 1)):
                e2 = t.events.alias("e2")
                gap = conn.execute(select(func.min(t.events.c.seq + 1)).where(
                    t.events.c.seq < hi, ~select(e2.c.seq).where(e2.c.seq == t.events.c.seq + 1).exists())).scalar()
        if gap is not None or (n and lo != 1):
            first_missing = 1 if lo != 1 else int(gap)
            return (f"ledger event #{first_missing} is missing: the ledger holds {count(n, 'event', 'events')} numbered up to #{hi}, so "
                    "events were deleted outside consentry")
        recorded = _recorded_seq(last_rec[1]) if last_rec is not None else None
        if recorded is not None and recorded > hi:
            return (f"the audit log records ledger event #{recorded}, but the ledger's events and its head end at "
                    f"#{hi}: the events after #{hi} were deleted outside consentry and ledger_head was lowered to match "
                    f"(audit record {int(last_rec[0])} chains #{recorded}), so decisions would not count them (an "
                    "objection among them would let its rows in)")
        return None

    @property
    def _shared(self) -> bool:
        """Whether another connection sees this same database (a file, a
        server), so work can be read beside the caller's; a second connection
        to an in-memory SQLite ledger opens another, empty database."""
        return not self.is_sqlite or self._lock_path is not None

    def require_numbered(self, what: str) -> None:
        """Refuse to decide (`what`: a snapshot, decisions) from a ledger whose
        numbering shows events deleted outside consentry (`numbering_problem`)."""
        _refuse_unnumbered(self.numbering_problem(), what)

    @contextmanager
    def numbered_beside(self, what: str) -> Iterator[Callable[[], None]]:
        """`require_numbered`, run beside the block's own work where another
        connection sees the same database (a file, a server): its count of
        every event grows with the ledger (0.3 s warm, 1.4 s cold at 4.5M
        events), and the decisions need not wait for it. Yields `check`, which
        waits for the answer and raises as `require_numbered` does: call it
        before anything is published. In memory it runs first, as before.
        Leaving the block waits for the read, so none outlives it."""
        if not self._shared:
            self.require_numbered(what)
            yield lambda: None
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="consentry-numbering") as pool:
            answer = pool.submit(self.numbering_problem)
            yield lambda: _refuse_unnumbered(answer.result(), what)

    def pinned(self, watermark: int | None = None) -> int:
        """The watermark a decision reads up to: the head now, or `watermark`,
        which must be one this ledger has reached (it is recorded as the proof
        of what the decision read)."""
        head = self.watermark()
        if watermark is None:
            return head
        if isinstance(watermark, bool) or not isinstance(watermark, int) or not 0 <= watermark <= head:
            raise InputError(f"watermark {watermark!r} is not one this ledger has reached (0 to {head})",
                             where=redact_url(self.url), fix=f"pass a watermark from 0 to {head}, or none for the latest")
        return watermark

    def settled(self, upto_seq: int, now: datetime, *, after_seq: int = 0) -> int:
        """The highest watermark, at most `upto_seq`, whose events (those after
        `after_seq`) have all taken effect by `now`. A snapshot records it: an
        event dated later than its reader's clock (skew between hosts, or a
        ledger from before such events were refused) is left after the
        watermark, so the next purge reads it again, instead of being passed
        over for good."""
        e = t.events.c
        # By the time index alone (such events are rare: the answer is almost always empty); with the seq
        # range in the WHERE, SQLite scanned every event by seq instead.
        with self.reader.connect() as conn:
            ahead = [int(s) for (s,) in conn.execute(select(e.seq).where(e.at_us > to_micros(now)))]
        first = min((s for s in ahead if after_seq < s <= upto_seq), default=None)
        return upto_seq if first is None else first - 1

    def get(self, event_id: str) -> StoredEvent | None:
        with self.reader.connect() as conn:
            row = conn.execute(select(t.events).where(t.events.c.event_id == event_id)).mappings().first()
        return _row_to_stored(row) if row else None

    def history(self, user_id: str) -> list[StoredEvent]:
        q = select(t.events).where(t.events.c.user_id == user_id).order_by(t.events.c.at_us, t.events.c.seq)
        with self.reader.connect() as conn:
            return [_row_to_stored(r) for r in conn.execute(q).mappings()]

    def state(self, user_id: str) -> PersonState | None:
        with self.reader.connect() as conn:
            row = conn.execute(select(t.person_state).where(t.person_state.c.user_id == user_id)).mappings().first()
        return PersonState(**row) if row else None

    def in_force(self, user_id: str, type_: EventType, state: PersonState | None = None) -> StoredEvent | None:
        """The event that already did what a new `type_` event would ask, while
        it is in force (an objection, a consent, an erasure request), or None:
        then every face says nothing new was recorded instead of recording it
        twice. `state`: the person's state if the caller read it already."""
        state = state if state is not None else self.state(user_id)
        if state is None:
            return None
        already = {
            EventType.objected: state.objects,
            EventType.consent_given: state.consents,
            EventType.erasure_requested: state.erasure_us is not None,
        }.get(type_, False)
        if not already:
            return None
        # One dated later than now (a ledger from before such events were refused) is not in force
        # yet: the person's word now must be recorded, not turned away.
        now = datetime.now(UTC)
        matching = [e for e in self.history(user_id) if e.type is type_ and e.at <= now]
        if not matching:
            return None
        return matching[0] if type_ is EventType.erasure_requested else matching[-1]

    def latest_objections(self, limit: int = 100, offset: int = 0, user_id: str | None = None) -> tuple[list[tuple[str, int]], int]:
        """(user_id, objected at in µs) of the people whose objection is in force,
        newest first, `offset` of them skipped (or only `user_id`'s), and how many
        there are in all: the admin's review queue, a page at a time."""
        ps = t.person_state.c
        where = [ps.objection == EventType.objected.value] + ([ps.user_id == user_id] if user_id is not None else [])
        q = select(ps.user_id, ps.objection_us).where(*where).order_by(ps.objection_us.desc(), ps.user_id)
        with self.reader.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(t.person_state).where(*where)).scalar_one())
            return [(str(u), int(at)) for u, at in conn.execute(q.limit(limit).offset(offset))], total

    def count(self) -> int:
        from sqlalchemy import func

        with self.reader.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t.events)).scalar_one())

    def events_parquet(self, upto_seq: int) -> Path | None:
        """A Parquet file of every event up to `upto_seq` (and maybe later ones:
        cut at `seq <= upto_seq` when reading it), kept in `extract_dir`, for an
        engine that reads Parquet itself; None without an extract folder."""
        if self.extract_dir is None:
            return None
        from .extract import extract_file

        return extract_file(self, Path(self.extract_dir), upto_seq)

    def events_arrow(
        self,
        upto: datetime | None = None,
        *,
        upto_seq: int | None = None,
        users: list[str] | None = None,
        touched_after: int | None = None,
        after_seq: int | None = None,
    ) -> pa.Table:
        """Events with at <= `upto` (and `after_seq` < seq <= `upto_seq`) as
        Arrow, streamed in batches, for the decision engines: (seq, user_id,
        item_id, type, event_at). `users` and `touched_after` narrow the person
        events; third-party events (about items, few) are always read whole, so
        rule 15 sees each item's full history. With `extract_dir`, a read of
        every event up to a watermark goes through the extract kept there."""
        if self.extract_dir is not None and upto_seq is not None and users is None and touched_after is None \
                and after_seq is None:
            from .extract import events_through_extract

            return events_through_extract(self, Path(self.extract_dir), upto, upto_seq)
        q = select(t.events.c.seq, t.events.c.user_id, t.events.c.item_id, t.events.c.type, t.events.c.at_us)
        if upto is not None:
            q = q.where(t.events.c.at_us <= to_micros(upto))
        third_party = t.events.c.item_id.is_not(None)
        if users is not None:
            q = q.where(t.events.c.user_id.in_(users) | third_party)
        if touched_after is not None:  # the whole history of people with an event after this seq
            touched = select(t.events.c.user_id).where(t.events.c.seq > touched_after)
            if upto_seq is not None:
                touched = touched.where(t.events.c.seq <= upto_seq)
            q = q.where(t.events.c.user_id.in_(touched.distinct()) | third_party)
        whole = users is None and touched_after is None
        if self.is_sqlite and whole:  # read in parts of the seq range, each part its own bounds
            return self._events_sqlite(q, (after_seq or 0, upto_seq))
        if after_seq is not None:
            q = q.where(t.events.c.seq > after_seq)
        if upto_seq is not None:
            q = q.where(t.events.c.seq <= upto_seq)
        if self.is_sqlite:  # a few people's events: one statement, planned on their indexes
            return self._events_sqlite(q, None)
        table = self._events_adbc(upto, upto_seq, after_seq) if whole else None
        return table if table is not None else self._events_cursor(q)

    def _events_cursor(self, q) -> pa.Table:  # noqa: ANN001
        """Events of `q` as Arrow through a DB-API cursor: the portable read."""
        import pyarrow as pa

        schema = events_schema()
        sql, params = _compiled(q, self.engine)
        batches = []
        # A raw DB-API cursor: SQLAlchemy Row objects cost 5x more per event,
        # and this runs before every decision.
        with self.reader.connect() as conn:
            cur = conn.connection.dbapi_connection.cursor()
            try:
                cur.execute(sql, params)
                while part := cur.fetchmany(200_000):
                    seq, uid, item, typ, at = zip(*part)
                    batches.append(
                        pa.record_batch(
                            [
                                pa.array(seq, pa.int64()),
                                pa.array(uid, pa.string()),
                                pa.array(item, pa.string()),
                                pa.array(typ, pa.string()),
                                pa.array(at, pa.int64()).cast(pa.timestamp("us")),
                            ],
                            schema=schema,
                        )
                    )
            finally:
                cur.close()
        return pa.Table.from_batches(batches, schema=schema)

    def _events_sqlite(self, q, seqs: tuple[int, int | None] | None) -> pa.Table:  # noqa: ANN001
        """Events of `q` as Arrow, read from SQLite as JSON lines: SQLite writes
        them (in C) and pyarrow parses them (in C, on every core), where a
        Python cursor made five objects an event. With `seqs` (after, upto],
        the range is read in parts of `_JSON_PART` events (each one statement,
        its text well under SQLite's 1 GB limit, on the seq index: `q` must
        not bound seq itself, or SQLite ranges over its bound instead and
        reads to the end of the ledger for every part), several at a time on
        their own connections but in memory: 711k events in 0.55 s against
        1.64 s, 3.56M in 2.5-2.6 s against 8.1 s. The
        events up to a watermark never change, so the parts agree (upto is
        read first when None: the events stored, not the head, as the cursor
        read them). Without `seqs`, `q` is read in one statement."""
        import pyarrow as pa
        import pyarrow.json as pj  # here: only a read from SQLite needs it

        sql, params = _compiled(q, self.engine)
        lines = (f"SELECT CAST(group_concat(json_object('seq', seq, 'user_id', user_id, 'item_id', item_id, "
                 f"'type', type, 'at_us', at_us), char(10)) AS BLOB) FROM ({sql})")
        if seqs is None:
            parts: list[tuple[int, ...]] = [()]
        else:
            after_seq, upto_seq = seqs
            if upto_seq is None:
                with self.reader.connect() as conn:
                    upto_seq = int(conn.execute(select(func.coalesce(func.max(t.events.c.seq), 0))).scalar_one())
            lines += " WHERE seq > ? AND seq <= ?"
            parts = _seq_parts(after_seq, upto_seq, _JSON_PART)
        opts = pj.ParseOptions(explicit_schema=_json_schema(), unexpected_field_behavior="error")

        def read(part: tuple[int, ...]) -> pa.Table | None:
            with self.reader.connect() as conn:
                cur = conn.connection.dbapi_connection.cursor()
                try:
                    (blob,) = cur.execute(lines, (*params, *part)).fetchone()
                finally:
                    cur.close()
            return pj.read_json(pa.BufferReader(blob), parse_options=opts) if blob else None

        if len(parts) > 1 and self._shared:
            from concurrent.futures import ThreadPoolExecutor

            # A connection per core and one more (a part is parsed while others are read), within the
            # pool SQLAlchemy keeps (5, and 10 more on demand).
            with ThreadPoolExecutor(min(len(parts), (os.cpu_count() or 1) + 1, 8)) as pool:
                tables = [tb for tb in pool.map(read, parts) if tb is not None]
        else:
            tables = [tb for tb in map(read, parts) if tb is not None]
        if not tables:
            return events_schema().empty_table()
        raw = pa.concat_tables(tables)
        return raw.set_column(4, "event_at", raw.column("at_us").cast(pa.timestamp("us")))

    def _events_adbc(self, upto: datetime | None, upto_seq: int | None, after_seq: int | None = None) -> pa.Table | None:
        """Read events straight into Arrow with ADBC (PostgreSQL only, 5x faster
        than a Python cursor); None when no driver fits this ledger."""
        import pyarrow as pa

        url = self.engine.url
        try:
            # Never for SQLite: the ADBC driver carries its own copy of SQLite,
            # and two copies in one process break SQLite's locking. When that
            # copy closed it deleted the WAL file, and this process's later
            # commits went into a file no longer on disk, lost.
            if self.engine.dialect.name == "postgresql":
                import adbc_driver_postgresql.dbapi as adbc

                connect_args = (url.set(drivername="postgresql").render_as_string(hide_password=False),)
            else:
                return None
        except ImportError:
            return None
        where, params = [], []
        for column, op, value in (("at_us", "<=", to_micros(upto) if upto else None), ("seq", "<=", upto_seq),
                                  ("seq", ">", after_seq)):
            if value is not None:
                params.append(value)
                where.append(f"{column} {op} " + ("?" if self.is_sqlite else f"${len(params)}"))
        sql = "SELECT seq, user_id, item_id, type, at_us FROM ledger_events" + (f" WHERE {' AND '.join(where)}" if where else "")
        with adbc.connect(*connect_args) as conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
            raw = cur.fetch_arrow_table()
        at = raw.column("at_us").cast(pa.int64()).cast(pa.timestamp("us"))
        return pa.table(
            {
                "seq": raw.column("seq").cast(pa.int64()),
                "user_id": raw.column("user_id").cast(pa.string()),
                "item_id": raw.column("item_id").cast(pa.string()),
                "type": raw.column("type").cast(pa.string()),
                "event_at": at,
            }
        )

    def iter_events(self) -> Iterator[StoredEvent]:
        q = select(t.events).order_by(t.events.c.seq)
        with self.reader.connect() as conn:
            for row in conn.execution_options(stream_results=True, yield_per=10_000).execute(q).mappings():
                yield _row_to_stored(row)


def _refuse_unnumbered(problem: str | None, what: str) -> None:
    if problem is not None:
        raise LedgerError(f"{problem}. No {what} were made: they would not count the events that are gone. "
                          "`consentry audit verify` names every change; restore the ledger from a copy that verifies")


@functools.cache
def events_schema() -> pa.Schema:
    """The ledger as the decision engines read it."""
    import pyarrow as pa

    return pa.schema([("seq", pa.int64()), ("user_id", pa.string()), ("item_id", pa.string()), ("type", pa.string()),
                      ("event_at", pa.timestamp("us"))])


#: Events a part of a read from SQLite spans (by seq).
_JSON_PART = 250_000


@functools.cache
def _json_schema() -> pa.Schema:
    """`events_schema` as SQLite writes it in JSON lines (`_events_sqlite`): the instant in microseconds."""
    import pyarrow as pa

    return events_schema().set(4, pa.field("at_us", pa.int64()))


def _seq_parts(after: int, upto: int, size: int) -> list[tuple[int, int]]:
    """(after, upto] cut into spans of `size` seqs (none when it is empty)."""
    return [(lo, min(lo + size, upto)) for lo in range(after, upto, size)]


def _compiled(q, engine: Engine) -> tuple[str, tuple | dict]:  # noqa: ANN001
    """SQL text and parameters in the driver's own paramstyle."""
    c = q.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    if engine.dialect.paramstyle in ("qmark", "numeric", "format"):
        return str(c), tuple(c.params[k] for k in c.positiontup)
    return str(c), c.params


def _row_to_stored(row) -> StoredEvent:  # noqa: ANN001
    """A stored row as it is: read as a StoredEvent, which the rules for new
    events (ids that match an export, a time not in the future) do not bind."""
    return StoredEvent(
        event_id=row["event_id"],
        user_id=row["user_id"],
        item_id=row["item_id"],
        type=row["type"],
        at=from_micros(row["at_us"]),
        channel=row["channel"],
        note=row["note"],
        actor=row["actor"],
        imported_from=row["imported_from"],
        seq=row["seq"],
        recorded_at=from_micros(row["recorded_us"]),
    )


def _differs(a: NewEvent, b: NewEvent) -> bool:
    keys = ("user_id", "item_id", "type", "at", "channel", "note")
    return any(getattr(a, k) != getattr(b, k) for k in keys)


def _difference(a: NewEvent, b: NewEvent, names: tuple[str, str], *, actor: bool = True) -> str:
    """The fields where two events with one event_id differ, for a refusal ("" if none)."""
    keys = ("user_id", "item_id", "type", "at", "channel", "note") + (("actor",) if actor else ())
    parts = []
    for k in keys:
        x, y = getattr(a, k), getattr(b, k)
        if x != y:
            show = (lambda v: iso(v) if isinstance(v, datetime) else ("null" if v is None else str(v)[:60]))
            parts.append(f"{k}: {show(x)} {names[0]}, {show(y)} {names[1]}")
    return "; ".join(parts)


def _line_at(path: Path, offset: int) -> NewEvent:
    """The event on the line starting at byte `offset` (already parsed once, so valid)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        raw = fh.readline()
    if offset == 0 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    return _parse_line(path, 0, raw.decode("utf-8"), str(path.resolve()))


BOM = b"\xef\xbb\xbf"


class Line(NamedTuple):
    """A parsed line of a ledger file. `repeat`: its event_id was on an
    earlier line with the same content (counted, stored once)."""

    lineno: int
    event: NewEvent
    repeat: bool


def iter_jsonl(path: Path, batch_size: int = 50_000) -> Iterator[list[Line]]:
    """Parsed events in batches, each marked with the file it came from. A bad
    line stops the batches but not the reading: every bad line is reported at
    once (`InputProblems`; one alone as itself), an event_id on two lines with
    different content among them, since one event_id is one event."""
    if not path.is_file():
        raise InputError("is a folder, not a file" if path.is_dir() else "no such file", where=str(path),
                         fix="pass the path of a JSONL file of ledger events")
    batch: list[Line] = []
    source = str(path.resolve())
    seen: dict[str, tuple[int, int]] = {}  # event_id -> (line, byte offset) of its first line
    offset = 0
    problems: list[InputError] = []
    bad = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            at = offset
            offset += len(raw)
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            try:
                line = raw.decode("utf-8")
                e = _parse_line(path, lineno, line, source) if line.strip() else None
                repeat = e is not None and _repeated(path, seen, lineno, at, e)
            except (UnicodeDecodeError, InputError) as exc:
                bad += 1
                if len(problems) < InputProblems.SHOWN:
                    problems.append(exc if isinstance(exc, InputError) else _not_utf8(path, lineno, raw, exc))
                continue
            if e is None or bad:  # a blank line; or the file is refused: read on only to find its other bad lines
                continue
            batch.append(Line(lineno, e, repeat))
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if bad:
        raise problems[0] if bad == 1 else InputProblems(str(path), problems, bad)
    if batch:
        yield batch


def _repeated(path: Path, seen: dict[str, tuple[int, int]], lineno: int, offset: int, e: NewEvent) -> bool:
    """Whether `e`'s event_id was on an earlier line (then with the same
    content, else InputError); a first sighting is remembered in `seen`."""
    assert e.event_id is not None
    first = seen.setdefault(e.event_id, (lineno, offset))
    if first[0] == lineno:
        return False
    diff = _difference(_line_at(path, first[1]), e, (f"on line {first[0]}", f"on line {lineno}"))
    if diff:
        raise InputError(
            f"event_id '{e.event_id}' is on line {first[0]} and on line {lineno} with different "
            f"content ({diff}); one event_id is one event; nothing was imported",
            where=f"{path}, line {lineno}",
            column="event_id",
            fix=f"give one of lines {first[0]} and {lineno} its own event_id, or remove the wrong one",
        )
    return True


def _not_utf8(path: Path, lineno: int, raw: bytes, exc: UnicodeDecodeError) -> InputError:
    """A file saved as Latin-1 or Windows-1252: say so, and name the field if we can."""
    text_ = raw.decode("latin-1")
    column = None
    try:
        data = json.loads(text_)
        if isinstance(data, dict):
            column = next((k for k, v in data.items() if isinstance(v, str) and not v.isascii()), None)
    except json.JSONDecodeError:
        pass
    return InputError(
        f"the file is not UTF-8; save it as UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line "
        "is not UTF-8: the file looks like Latin-1 or Windows-1252); nothing was imported",
        where=f"{path}, line {lineno}",
        column=column,
        row=text_.strip()[:200],
        fix=f"convert the file, e.g. `iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8.jsonl`, and import that",
    )


def _one_value_per_key(pairs: list[tuple[str, object]]) -> dict:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _RepeatedKey(dup)
    return data


class _RepeatedKey(Exception):
    pass


_STRING_FIELDS = ("event_id", "user_id", "item_id", "note", "actor")


def _parse_line(path: Path, lineno: int, line: str, source: str) -> NewEvent:
    where = f"{path}, line {lineno}"
    fix = "correct that line and import the file again (events already in the ledger are skipped)"
    try:
        data = json.loads(line, object_pairs_hook=_one_value_per_key)
    except _RepeatedKey as exc:
        raise InputError(
            "the field appears twice on this line, so its value is ambiguous; nothing was imported",
            where=where, column=str(exc), row=line.strip()[:200], fix="keep one value for the field",
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON ({exc.msg}, character {exc.pos + 1}); nothing was imported",
            where=where,
            row=line.strip()[:200],
            fix="one JSON object per line",
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            "each line must be a JSON object; nothing was imported",
            where=where,
            row=line.strip()[:200],
            fix='one JSON object per line, e.g. {"user_id": "u1", "type": "objected", "at": "2024-06-26T00:00:00Z"}',
        )
    if "imported_from" in data:
        raise InputError(
            "imported_from is set by consentry, not by the file; nothing was imported",
            where=where,
            column="imported_from",
            row=line.strip()[:200],
            fix="remove the field",
        )
    if "\\u0000" in line:  # PostgreSQL cannot store NUL; an id must never be changed quietly, so refuse
        for k in _STRING_FIELDS:
            if isinstance(data.get(k), str) and "\x00" in data[k]:
                raise InputError(
                    "contains a NUL character (\\u0000), which cannot be stored; nothing was imported",
                    where=where, column=k, row=line.strip()[:200].replace("\x00", "\\u0000"),
                    fix="remove the \\u0000 from that value (and check how the export wrote it)",
                )
    try:
        # Built as users' code builds one: model_validate would go through NewEvent.__init__ as well
        # (pydantic calls a model's own), about 3 µs an event more.
        return NewEvent(**{**data, "imported_from": source}).with_id()
    except EventError as exc:
        err = exc.details[0]
        fieldname = ".".join(str(x) for x in err["loc"]) or None
        msg = err["msg"].removeprefix("Value error, ")
        if fieldname is None:  # a rule across fields: name the one to fix
            fieldname = next((f for f in ("user_id", "item_id", "note") if f in msg), None)
        if err["type"] == "extra_forbidden":
            msg = "unknown field (allowed: event_id, user_id, item_id, type, at, channel, note, actor)"
        elif err["type"] == "enum":
            msg += f" (got {err.get('input')!r})"
        elif err["type"] == "string_unicode":
            msg = "is not valid Unicode (an unpaired surrogate such as \\ud800)"
        raise InputError(
            f"{msg}; nothing was imported",
            where=where,
            column=fieldname,
            row=line.strip()[:200],
            fix=fix,
        ) from None


_OBJ = ", ".join(f"'{x}'" for x in OBJECTION_TYPES)
_CONS = ", ".join(f"'{x}'" for x in CONSENT_TYPES)
_GROUP = f"CASE WHEN type IN ({_OBJ}) THEN 'o' WHEN type IN ({_CONS}) THEN 'c' ELSE 'x' END"
# No DISTINCT: with it SQLite scans the whole user index on every batch (its
# cost grew with the ledger); IN does not need it.
_AFFECTED = "SELECT user_id FROM ledger_events WHERE seq > :after AND user_id IS NOT NULL"
_STATE_COLS = "user_id, objection, objection_us, consent, consent_us, erasure_us, first_notified_us, last_notified_us, last_seq"


def _fold(where: str) -> tuple[str, str]:
    """person_state as the fold of the events matching `where`, set-based: the
    WITH clause and the SELECT that reads it (PersonState.apply, in SQL). One
    sort, one window and one GROUP BY, with no joins: PostgreSQL's planner,
    which cannot estimate rows of a CTE after a bulk load, once chose nested
    loops over these and an import of 130k events spent minutes here."""
    with_ = f"""
WITH ev AS (
  SELECT user_id, type, at_us, seq, {_GROUP} AS grp FROM ledger_events WHERE {where}
    AND type NOT IN ({", ".join(f"'{x}'" for x in THIRD_PARTY_TYPES)})
),
ranked AS (
  SELECT user_id, type, at_us, seq, grp,
    ROW_NUMBER() OVER (PARTITION BY user_id, grp ORDER BY at_us DESC, seq DESC) AS rn
  FROM ev
)"""
    select_ = """
SELECT user_id,
  MAX(CASE WHEN grp = 'o' AND rn = 1 THEN type END) AS objection,
  MAX(CASE WHEN grp = 'o' AND rn = 1 THEN at_us END) AS objection_us,
  MAX(CASE WHEN grp = 'c' AND rn = 1 THEN type END) AS consent,
  MAX(CASE WHEN grp = 'c' AND rn = 1 THEN at_us END) AS consent_us,
  MIN(CASE WHEN type = 'erasure_requested' THEN at_us END) AS erasure_us,
  MIN(CASE WHEN type = 'notified' THEN at_us END) AS first_notified_us,
  MAX(CASE WHEN type = 'notified' THEN at_us END) AS last_notified_us,
  MAX(seq) AS last_seq
FROM ranked GROUP BY user_id
"""
    return with_, select_


_W, _S = _fold(f"user_id IN ({_AFFECTED})")
_REFRESH = f"{_W}\nINSERT INTO person_state ({_STATE_COLS}){_S}"
_W, _S = _fold("user_id IS NOT NULL")
#: The first person whose person_state row is not the fold of their events
#: (a row edited, missing or extra), or NULL.
STATE_MISMATCH = f"""{_W},
fold AS ({_S}),
diff AS (
  SELECT user_id FROM (SELECT {_STATE_COLS} FROM fold EXCEPT SELECT {_STATE_COLS} FROM person_state) d1
  UNION ALL
  SELECT user_id FROM (SELECT {_STATE_COLS} FROM person_state EXCEPT SELECT {_STATE_COLS} FROM fold) d2
)
SELECT MIN(user_id) FROM diff"""
del _W, _S
_DELETE_STATE = Prepared(text(f"DELETE FROM person_state WHERE user_id IN ({_AFFECTED})"))
_INSERT_STATE = Prepared(text(_REFRESH))
_W, _S = _fold("user_id = ANY(:people)")
_DELETE_PEOPLE = Prepared(text("DELETE FROM person_state WHERE user_id = ANY(:people)"))
_INSERT_PEOPLE = Prepared(text(f"{_W}\nINSERT INTO person_state ({_STATE_COLS}){_S}"))
del _W, _S


def refresh_state(conn: Connection, *, after_seq: int, people: Collection[str] | None = None) -> None:
    """Recompute person_state for everyone with an event after `after_seq`,
    set-based, from their whole history ordered by (at, seq).

    `people`: the people of those events, when the caller knows them (a live
    append). On PostgreSQL they are then named in an array, and their rows are
    found through the indexes whatever the planner believes of the tables: on a
    ledger not analysed since it grew (a new deployment, autovacuum not yet
    round), `seq > :after` was planned as a scan of both tables, 2 ms a batch
    at 10,000 events and growing with the ledger, under the writer's lock."""
    if people is not None and conn.dialect.name == "postgresql":
        if people:
            ids = sorted(people)
            _DELETE_PEOPLE.write(conn, people=ids)
            _INSERT_PEOPLE.write(conn, people=ids)
        return
    _DELETE_STATE.write(conn, after=after_seq)
    _INSERT_STATE.write(conn, after=after_seq)
