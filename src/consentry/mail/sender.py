"""Delivers the outbox: claims due mails, hands them to a transport, marks them
sent, or tries again later with exponential backoff (10 s, 20 s, ... capped at
1 h) until a mail is delivered or expires. A permanent refusal (5xx) fails
the mail at once. Expired and failed mails are listed for administrators.

Each `serve` worker runs one Sender in a thread; `consentry mail send` runs
the same passes from the command line. Several senders on one database are
safe: a claim is a lease (see outbox.claim). A sender that dies after the
server took a mail but before marking it sent means the mail goes out twice
(at least once, never lost).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime

from ..ledger import Ledger
from ..words import agree, count
from . import outbox
from .errors import MailError, PermanentFailure
from .transport import Transport

log = logging.getLogger(__name__)


@dataclass
class Pass:
    """What one pass over the outbox did."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    expired: int = 0
    #: after `drain`: queued mails another sender holds (its lease runs), and when the last lease ends
    held: int = 0
    held_until: datetime | None = None


def _for_log(exc: BaseException) -> str:
    """An error as a log line may show it: no address, no server text (it can quote the address)."""
    if isinstance(exc, MailError):
        code = f" {exc.code}" if exc.code is not None else ""
        return f"{type(exc).__name__} at {exc.stage}{code} ({exc.server})"
    return type(exc).__name__


def _for_admin(exc: BaseException) -> str:
    """An error as the outbox keeps it: MailError text is already free of the password."""
    return exc.render() if isinstance(exc, MailError) else f"{type(exc).__name__}: {exc}"


class Sender:
    def __init__(
        self,
        ledger: Ledger,
        transport: Transport,
        *,
        backoff_s: float = 10.0,
        backoff_cap_s: float = 3600.0,
        lease_s: float = 300.0,
        batch: int = 20,
        poll_s: float = 5.0,
    ) -> None:
        self.ledger = ledger
        self.transport = transport
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self.lease_s = lease_s
        self.batch = batch
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one pass at a time: the transport is not thread-safe

    def delay_s(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt."""
        return min(self.backoff_cap_s, self.backoff_s * 2 ** max(0, attempts - 1))

    # -- one pass ------------------------------------------------------------------------------

    def run_once(self) -> Pass:
        """Expire what is overdue, then try each due mail (up to `batch`) once."""
        with self._lock:
            done = Pass()
            with self.ledger.reader.connect() as conn:  # idle: no write lock taken
                due = outbox.next_due_us(conn)
            if due is None or due > outbox.now_us():
                return done
            with self.ledger.transaction() as conn:
                done.expired = outbox.expire_overdue(conn)
                items = outbox.claim(conn, limit=self.batch, lease_s=self.lease_s)
            done.claimed = len(items)
            try:
                for i, item in enumerate(items):
                    try:
                        self.transport.deliver(item.recipient, item.raw)
                    except PermanentFailure as exc:
                        log.warning("a %s mail was refused for good: %s", item.kind, _for_log(exc))
                        with self.ledger.transaction() as conn:
                            outbox.give_up(conn, item, outbox.FAILED, _for_admin(exc))
                        done.failed += 1
                    except Exception as exc:  # noqa: BLE001 - temporary: an outage, a full disk
                        rest = items[i:] if _server_wide(exc) else [item]
                        self._later(rest, exc, done)
                        if len(rest) > 1:
                            break  # the server is down: the others would fail the same way
                    else:
                        with self.ledger.transaction() as conn:
                            outbox.mark_sent(conn, item.id)
                        done.sent += 1
            finally:
                self.transport.close()
            return done

    def _later(self, items: list[outbox.Claimed], exc: BaseException, done: Pass) -> None:
        now = outbox.now_us()
        with self.ledger.transaction() as conn:
            for item in items:
                at = now + int(self.delay_s(item.attempts) * 1e6)
                if outbox.retry_later(conn, item, at, _for_admin(exc)):
                    done.retrying += 1
                else:
                    done.expired += 1
        log.warning(
            "%s not delivered (%s); trying again in %.0f s or later",
            count(len(items), "mail", "mails"), _for_log(exc), self.delay_s(items[0].attempts),
        )

    def drain(self, timeout_s: float | None = None) -> Pass:
        """Passes until nothing is due right now (for `consentry mail send`);
        then says how many mails another sender holds, and until when: after a
        crash "0 sent" alone left the operator guessing why queued mails stayed."""
        total = Pass()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            one = self.run_once()
            for name in ("claimed", "sent", "retrying", "failed", "expired"):
                setattr(total, name, getattr(total, name) + getattr(one, name))
            if one.claimed < self.batch or (deadline is not None and time.monotonic() > deadline):
                break
        with self.ledger.reader.connect() as conn:
            held = outbox.held(conn)
        total.held, total.held_until = held.mails, held.until
        if held.mails:
            log.warning("%s held by another sender until %s UTC (its lease) and not tried now: that sender may "
                        "still deliver them. If it died, they are tried when the lease ends, or at once by --now on "
                        "the machine it ran on", agree("{n} {mail is|mails are}", held.mails),
                        f"{held.until:%Y-%m-%d %H:%M:%S}" if held.until else "?")
        return total

    # -- in the background ---------------------------------------------------------------------

    def start(self) -> None:
        """A daemon thread that sends whatever is due, woken by `wake()` after a
        commit in this process and every `poll_s` for mails queued by others."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=_loop, args=(weakref.ref(self), self._wake, self._stop), name="mail-sender", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _wait_s(self) -> float:
        with self.ledger.reader.connect() as conn:
            due = outbox.next_due_us(conn)
        if due is None:
            return self.poll_s
        return max(0.0, min(self.poll_s, (due - outbox.now_us()) / 1e6))


def _server_wide(exc: BaseException) -> bool:
    """A failure that is not about this recipient (no connection, no login)."""
    return not isinstance(exc, MailError) or exc.recipient is None


def _loop(ref: weakref.ref[Sender], wake: threading.Event, stop: threading.Event) -> None:
    """The thread holds its Sender only weakly: when the app that owns it is
    gone (tests build many), the thread ends at its next wake-up."""
    while not stop.is_set():
        sender = ref()
        if sender is None:
            return
        wake.clear()
        try:
            done = sender.run_once()
            wait = 0.0 if done.claimed >= sender.batch else sender._wait_s()
        except Exception as exc:  # noqa: BLE001 - the database may be down too: keep trying
            log.warning("the mail sender could not read the outbox: %s", type(exc).__name__)
            wait = sender.poll_s
        del sender
        if wait > 0:
            wake.wait(wait)
