"""A notice campaign: tell every affected person, exactly once, before use.

Every outbox row moves pending -> sending -> committing -> sent, each step
committed. `committing` is written just before the SMTP server gets the
final dot, the last moment at which the server still discards a mail if this
process dies; the person's `notified` event is written with `sent`, once the
server has answered the dot with 250. Rerunning after a crash therefore:
- resends `sending` rows: the server never took them, so nobody gets two mails;
- counts `committing` rows as sent and writes their `notified` events (at
  the moment of the dot): their mail was handed over, or this process died
  within a few system calls of it.
The one gap left is a death between the `committing` commit and the next
socket write (one syscall); such a person is recorded as notified without
the mail, which the summary cannot see. A refusal, at RCPT or in answer to
the final dot (where content filters answer), is recorded as bounced or
deferred and writes no `notified` event: a person who was never told is never
used. (The event used to be written before the dot, and a dot refused then
left a person recorded as notified whom no mail reached.)
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, insert, or_, select, update

from ..controller import Controller
from ..errors import ConsentryError, InputError
from ..i18n import gettext
from ..ledger import Channel, EventType, Ledger, NewEvent, Prepared, chain
from ..mail.message import parse_mailbox, render
from ..policy import Policy
from ..sources import Export
from ..timeutil import from_micros, to_micros
from ..words import count
from .audience import audience
from .links import objection_token
from .mailer import Mailer, MailError, Message, PermanentFailure, how_to_fix, is_setup_failure
from .tables import NoticeState, campaigns, outbox
from .text import TEMPLATE_VERSION, render_notice

CHANNELS = ("email", "in_app")
_LINK = "\x00objection-link\x00"  # stands for each person's own link in the cached text


#: The states a notice is in until the server has accepted its mail.
_NOT_SENT = (NoticeState.sending, NoticeState.committing)

#: An e-mail notice whose address cannot be used (not an address, two of them, blank): no mail and no
#: `notified` event by mail; the person's in-app notice is unaffected. Final: a re-run does not try it.
BAD_ADDRESS = NoticeState.bad_address

#: Recipients in a row whose mail failed for want of a connection (each after its retries): then the
#: server is down, and the run stops instead of trying everyone (227 people took 2m19s in a trial).
MAX_CONNECTION_FAILURES = 3

#: A notice's outbox row at its commit (a campaign commits hundreds a second).
_COMMITTING = Prepared(update(outbox).where(outbox.c.dedupe_key == bindparam("key"))
                       .values(state=NoticeState.committing, updated_us=bindparam("now")))


def _now_us() -> int:
    return to_micros(datetime.now(UTC))


class _Pace:
    """At most `rate` starts per second across all senders (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = time.perf_counter()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.perf_counter()
            at = max(self.next_at, now)
            self.next_at = at + self.interval
        if at > now:
            time.sleep(at - now)


@dataclass
class Plan:
    people: int = 0
    added: int = 0
    per_jurisdiction_language: dict[tuple[str, str], int] = field(default_factory=dict)
    without_email: int = 0
    #: What their notice speaks of ('own', 'tagged', 'both'; see `audience.scope_of`).
    per_scope: dict[str, int] = field(default_factory=dict)
    #: Left out: already told by another campaign of the same policy and cut-off (unless re-notified).
    already_notified: int = 0
    already_by: list[str] = field(default_factory=list)  # those campaigns' ids
    #: E-mail notices not yet delivered whose address the export now gives otherwise (corrected after a
    #: `bad_address` or a bounce): they go to the new address on this run.
    readdressed: int = 0


class _GroupCommit:
    """The notices of senders that reach their final dot together, committed
    in one transaction (group commit). The first sender to arrive leads: it
    waits up to `wait` seconds for the others (at most `size`, one per
    connection), writes them all, then sends every member's final dot itself,
    one socket write after another with no thread hand-off between them, so
    the crash gap stays a few system calls wide. With one connection every
    batch is one notice, as before."""

    #: Batches between two calls of `tidy` (a WAL checkpoint), made after a
    #: batch's dots are out, never between its commit and its dots.
    tidy_every = 200

    def __init__(self, write: Callable[[list[tuple[str, NewEvent]]], None], size: int, wait: float = 0.002,
                 tidy: Callable[[], None] = lambda: None) -> None:
        self._write, self._size, self._wait, self._tidy = write, max(1, size), wait, tidy
        self._batches = 0
        self._cv = threading.Condition()
        self._open: dict | None = None  # the batch still taking notices: items, dots, errors, done
        self._busy = False  # a batch is being written and its dots sent

    def commit(self, key: str, event: NewEvent, send_dot: Callable[[], None]) -> None:
        """Make this notice durable and send its final dot; raise what failed.
        Members wait on their batch's own event, so a finished batch wakes its
        members only (waking every sender on every commit cost a fifth of a
        campaign's CPU at 8 connections)."""
        with self._cv:
            batch, lead = self._open, self._open is None
            if lead:
                batch = self._open = {"items": [], "dots": [], "errors": {}, "done": threading.Event()}
            me = len(batch["items"])
            batch["items"].append((key, event))
            batch["dots"].append(send_dot)
            if not lead:
                if len(batch["items"]) >= self._size:
                    self._cv.notify_all()  # the leader waits for a full batch (or its deadline)
        if not lead:
            batch["done"].wait()
            if (error := batch["errors"].get(me)) is not None:
                raise error
            return
        with self._cv:
            while self._busy:  # one commit at a time: while one is written, the next batch fills up
                self._cv.wait()
            deadline = time.monotonic() + self._wait
            while len(batch["items"]) < self._size and (left := deadline - time.monotonic()) > 0:
                self._cv.wait(left)
            self._open, self._busy = None, True  # later arrivals start the next batch
        try:
            self._write(batch["items"])
        except BaseException as exc:  # nobody's dot is sent: the server drops every mail of the batch
            batch["errors"] = dict.fromkeys(range(len(batch["items"])), exc)
        else:
            for i, dot in enumerate(batch["dots"]):
                try:
                    dot()
                except BaseException as exc:  # noqa: BLE001 - that sender reports it
                    batch["errors"][i] = exc
            self._batches += 1
            if self._batches % self.tidy_every == 0:
                try:
                    self._tidy()
                except Exception:  # noqa: BLE001, S110 - a checkpoint can wait for the next one
                    pass
        with self._cv:
            self._busy = False
            self._cv.notify_all()  # the next batch's leader waits for this one
        batch["done"].set()
        if (error := batch["errors"].get(me)) is not None:
            raise error


def summarize(people: list[dict], already: dict[str, str] | None = None) -> Plan:
    """Counts per jurisdiction, language and scope, and how many have no
    address, of the people still to tell: those in `already` (user_id ->
    campaign, from `audience.already_told`) are counted apart."""
    from .audience import scope_of

    already = already or {}
    left_out = [r for r in people if r["user_id"] in already]
    people = [r for r in people if r["user_id"] not in already]
    result = Plan(people=len(people), already_notified=len(left_out),
                  already_by=sorted({already[r["user_id"]] for r in left_out}))
    for r in people:
        key = (r["jurisdiction"], r["language"])
        result.per_jurisdiction_language[key] = result.per_jurisdiction_language.get(key, 0) + 1
        result.without_email += r["email"] is None
        scope = scope_of(r)
        result.per_scope[scope] = result.per_scope.get(scope, 0) + 1
    return result


@dataclass
class RunSummary:
    sent: int = 0
    bounced: int = 0  # refused for good by the server for that recipient (5xx to RCPT TO or to the mail)
    deferred: int = 0  # temporary failures: tried again on the next run
    recovered: int = 0  # found `committing` after a crash: counted as sent
    resent_after_crash: int = 0
    seconds: float = 0.0
    limit: float = 0.0  # the pace asked for, mails/s (0: none)
    bad_address: int = 0  # set aside now: the address cannot be used (state `bad_address`); never tried again
    #: rows an earlier version recorded as bounced for a failure of the sender's setup (no recipient's
    #: fault): pending again, so this run sends them
    unbounced: int = 0
    #: Why the run stopped before the end (the mail server went away, or refused this sender's setup,
    #: with the fix), or None. The mails not sent stay pending for the next run: a caller should
    #: report this and exit non-zero.
    stopped: str | None = None
    left_pending: int = 0  # e-mail notices still to be sent after this run (the next run sends them)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def _who(controller: Controller | None) -> tuple[str, Controller | None]:
    """Who a notice names: the platform (its name, else "the platform") and the controller."""
    return (controller.platform if controller else None) or "the platform", controller


@dataclass
class Acknowledged:
    """What `Campaign.acknowledge` made of a list of shown notices."""

    shown: int = 0  # recorded now
    already: int = 0  # recorded before, or given twice
    unknown_keys: list[str] = field(default_factory=list)  # no in-app notice of this campaign has them, in given order
    #: Shown after the last moment that still gives the person's notice period before the cut-off:
    #: not recorded (a `notified` event then would pass a person who was not told in time).
    too_late_keys: list[str] = field(default_factory=list)
    #: The last moment a notice of this campaign counted, per jurisdiction, for the message.
    deadlines: dict[str, datetime] = field(default_factory=dict)

    @property
    def unknown(self) -> int:
        return len(self.unknown_keys)

    @property
    def too_late(self) -> int:
        return len(self.too_late_keys)


def check_cutoff(policy: Policy, cutoff: datetime, *, now: datetime | None = None) -> None:
    """Refuse a cut-off that a notice sent now could not precede by the
    policy's longest notice period: nobody told today could be used then.
    A dry run asks it too, so that it previews what the real run does. The
    cut-off it suggests passes: the first midnight (UTC) at least an hour past
    the earliest one (the earliest date itself, truncated, was refused again)."""
    from datetime import timedelta

    now = now or datetime.now(UTC)
    longest = max((j.notice_days for j in policy.jurisdictions if j.notice_days is not None), default=0)
    earliest = now + timedelta(days=longest)
    if cutoff >= earliest and cutoff > now:
        return
    margin = earliest + timedelta(hours=1)
    day = margin.date() + timedelta(days=1 if margin.time() != datetime.min.time() else 0)
    fix = f"announce a cut-off on or after {day.isoformat()} (--cutoff {day.isoformat()}T00:00:00Z)"
    if cutoff <= now:
        raise InputError(
            f"the cut-off {cutoff.isoformat()} is in the past: a notice announces a use still to come"
            + (f", at least {count(longest, 'day', 'days')} ahead under policy '{policy.name}'" if longest else ""),
            fix=fix,
        )
    raise InputError(
        f"the cut-off {cutoff.isoformat()} is less than {count(longest, 'day', 'days')} away: under policy "
        f"'{policy.name}' a person told today could not be used then",
        fix=fix,
    )


class Campaign:
    def __init__(self, ledger: Ledger, campaign_id: str) -> None:
        self.ledger = ledger
        self.id = campaign_id
        with ledger.reader.connect() as conn:
            row = conn.execute(select(campaigns).where(campaigns.c.campaign_id == campaign_id)).mappings().first()
        if row is None:
            raise InputError(f"there is no campaign '{campaign_id}'", fix="start it with `consentry notify`")
        self.row = dict(row)

    @property
    def cutoff(self) -> datetime:
        return from_micros(self.row["cutoff_us"])

    @property
    def version(self) -> str:
        """What the person was shown: the policy's rules and the template."""
        return f"policy {self.row['policy_hash']}, template {self.row['template_version']}"

    @classmethod
    def open(cls, ledger: Ledger, campaign_id: str, policy: Policy, cutoff: datetime) -> Campaign:
        """Create the campaign, or resume it; refuse to resume under other rules,
        and refuse a cut-off that a notice sent now could not precede by the
        policy's notice period (nobody told today could be used then)."""
        check_cutoff(policy, cutoff)
        with ledger.transaction() as conn:
            row = conn.execute(select(campaigns).where(campaigns.c.campaign_id == campaign_id)).mappings().first()
            if row is None:
                conn.execute(
                    insert(campaigns).values(
                        campaign_id=campaign_id, policy_name=policy.name, policy_hash=policy.hash,
                        template_version=TEMPLATE_VERSION, cutoff_us=to_micros(cutoff), created_us=_now_us(),
                    )
                )
                chain.append(conn, [chain.Record("campaign_opened", {
                    "campaign": campaign_id, "policy": policy.name, "policy_hash": policy.hash,
                    "cutoff": cutoff.isoformat(), "template_version": TEMPLATE_VERSION}, subject=campaign_id)])
            elif row["policy_hash"] != policy.hash or row["cutoff_us"] != to_micros(cutoff):
                raise InputError(
                    f"campaign '{campaign_id}' was started with policy {row['policy_hash']} and cut-off "
                    f"{from_micros(row['cutoff_us']).isoformat()}; it cannot resume with other rules",
                    fix="resume it with the same --policy and --cutoff, or start a campaign with a new id",
                )
            elif row["template_version"] != TEMPLATE_VERSION:
                # Its `notified` events name the template it started with; this consentry writes another text.
                raise InputError(
                    f"campaign '{campaign_id}' was started with notice template {row['template_version']}; this "
                    f"version of consentry writes template {TEMPLATE_VERSION}, so it cannot resume it",
                    fix="start a campaign with a new id (people it told are not told again)",
                )
        return cls(ledger, campaign_id)

    # -- planning --------------------------------------------------------------------------

    def plan(self, export: Export, policy: Policy, *, channels: tuple[str, ...] = CHANNELS, dry_run: bool = False,
             backend=None, renotify: bool = False) -> Plan:  # noqa: ANN001 - an engine.backend.Backend: where the audience is computed
        """Queue a notice per person and channel. People another campaign of the
        same policy and cut-off has already told (`audience.already_told`) are
        left out and counted, unless `renotify`: they hold a `notified` event
        for the very same notice. Each row keeps what the person's notice speaks
        of (`scope`)."""
        from .audience import already_told, scope_of

        rows = audience(export, self.ledger, policy, self.cutoff, backend=backend).to_pylist()
        already = {} if renotify else already_told(self.ledger, policy, self.cutoff, besides=self.id)
        result = summarize(rows, already)
        if dry_run:
            return result
        rows = [r for r in rows if r["user_id"] not in already]
        now = _now_us()
        out = []
        for r in rows:
            for channel in channels:
                if channel == "email" and not r["email"]:
                    continue
                out.append(
                    {
                        "dedupe_key": f"{self.id}:{r['user_id']}:{channel}",
                        "campaign_id": self.id, "user_id": r["user_id"], "channel": channel,
                        "address": r["email"] if channel == "email" else None, "language": r["language"],
                        "jurisdiction": r["jurisdiction"], "state": NoticeState.pending, "attempts": 0, "updated_us": now,
                        "scope": scope_of(r),
                    }
                )
        dialect = self.ledger.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        with self.ledger.transaction() as conn:
            before = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.campaign_id == self.id)).scalar_one()
            result.readdressed = self._readdress(conn, out, now)
            for i in range(0, len(out), 5000):
                conn.execute(dialect_insert(outbox).on_conflict_do_nothing(index_elements=["dedupe_key"]), out[i : i + 5000])
            after = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.campaign_id == self.id)).scalar_one()
        result.added = after - before
        return result

    #: E-mail notices that may take a corrected address: never handed to a server, or refused for good.
    _READDRESSABLE = (NoticeState.pending, NoticeState.deferred, NoticeState.bad_address, NoticeState.bounced)

    def _readdress(self, conn, out: list[dict], now: int) -> int:  # noqa: ANN001 - a connection
        """Give the e-mail notices not yet delivered the address the export has now, and send them
        again from `pending`: a set-aside row tells the operator to correct the address in the
        platform's data, so the next run must use it. A notice the server took keeps the address it
        went to."""
        stored = dict(conn.execute(
            select(outbox.c.dedupe_key, outbox.c.address).where(
                outbox.c.campaign_id == self.id, outbox.c.channel == "email", outbox.c.state.in_(self._READDRESSABLE))
        ).all())
        changed = [{"key": r["dedupe_key"], "address": r["address"]} for r in out
                   if r["dedupe_key"] in stored and stored[r["dedupe_key"]] != r["address"]]
        if changed:
            conn.execute(
                update(outbox).where(outbox.c.dedupe_key == bindparam("key"),  # executemany takes no IN list
                                     or_(*(outbox.c.state == state for state in self._READDRESSABLE)))
                .values(address=bindparam("address"), state=NoticeState.pending, attempts=0, last_error=None,
                        updated_us=now),
                changed,
            )
        return len(changed)

    # -- sending ------------------------------------------------------------------------------

    #: The `last_error` of a row bounced for a failure that was the sender's (connect, EHLO, TLS, login,
    #: the sender refused), as versions before the fix recorded it: `MailError.render()` with no recipient,
    #: or at MAIL FROM "sender refused".
    _SETUP_BOUNCE = re.compile(r"SMTP \S+, (?:(?:connect|connect \(TLS\)|EHLO|STARTTLS|AUTH): "
                               r"|MAIL FROM for <[^>]*>: sender refused)")

    def recover(self) -> tuple[int, int, int]:
        """After a crash: `committing` rows are sent, with their `notified`
        events at the moment of their dot; `sending` rows go back to pending
        (the server discarded them). Rows bounced for a failure of the
        sender's setup (earlier versions recorded a missing STARTTLS as every
        recipient's bounce) go back to pending too: no mail left for them and
        no `notified` event was written. Returns (recovered, resent, unbounced)."""
        with self.ledger.transaction() as conn:
            setup_bounces = [key for key, error in conn.execute(
                select(outbox.c.dedupe_key, outbox.c.last_error).where(
                    outbox.c.campaign_id == self.id, outbox.c.channel == "email", outbox.c.state == NoticeState.bounced)
            ) if error and self._SETUP_BOUNCE.match(error)]
            for i in range(0, len(setup_bounces), 1000):
                conn.execute(
                    update(outbox).where(outbox.c.dedupe_key.in_(setup_bounces[i : i + 1000]),
                                         outbox.c.state == NoticeState.bounced)
                    .values(state=NoticeState.pending, updated_us=_now_us())
                )
            found = conn.execute(
                select(outbox.c.dedupe_key, outbox.c.user_id, outbox.c.channel, outbox.c.updated_us)
                .where(outbox.c.campaign_id == self.id, outbox.c.state == NoticeState.committing)
            ).all()
            self._record_sent(conn, [(key, self._notified(user_id, Channel(channel), at=from_micros(us)))
                                     for key, user_id, channel, us in found])
            recovered = len(found)
            resend = conn.execute(
                update(outbox).where(outbox.c.campaign_id == self.id, outbox.c.state == NoticeState.sending)
                .values(state=NoticeState.pending, updated_us=_now_us())
            ).rowcount
            conn.execute(
                update(outbox).where(outbox.c.campaign_id == self.id, outbox.c.state == NoticeState.deferred)
                .values(state=NoticeState.pending, updated_us=_now_us())
            )
        return recovered, resend, len(setup_bounces)

    def counts(self) -> dict[tuple[str, str], int]:
        with self.ledger.reader.connect() as conn:
            rows = conn.execute(
                select(outbox.c.channel, outbox.c.state, func.count())
                .where(outbox.c.campaign_id == self.id).group_by(outbox.c.channel, outbox.c.state)
            ).all()
        return {(ch, st): n for ch, st, n in rows}

    def send_mail(
        self,
        mailer: Mailer,
        policy: Policy,
        *,
        secret: str,
        base_url: str,
        rate: float = 50.0,
        progress: Callable[[int], None] | None = None,
        controller: Controller | None = None,
        connections: int = 1,
    ) -> RunSummary:
        """Send every pending mail of the campaign; `rate` mails/s at most (0: no
        limit) over `connections` SMTP connections, kept open for the whole run.

        Each notice is committed (`committing`) just before its own final
        dot, and its `notified` event written once the server accepted the
        mail (in bulk, with `sent`). With more
        than one connection, the senders that get there together share one
        commit and the leader of that commit sends all their dots
        (`_GroupCommit`), which is what makes more connections faster; a crash
        between that commit and the last dot can then leave up to one person
        per connection recorded as notified without the mail (see the module
        docstring). A mail that fails temporarily waits for the next run."""
        # One run of a campaign at a time: a second one took the first's `sending` rows back for itself
        # (recover) and mailed most people twice.
        with self.ledger.exclusive(f"campaign:{self.id}", busy=(
                f"campaign '{self.id}' is being sent by another run right now; nothing was sent by this one. Wait "
                "for that run to end: running the campaign again afterwards resumes where it stopped")):
            summary = RunSummary(limit=rate)
            who = _who(controller)  # once a run, not once a mail
            summary.recovered, summary.resent_after_crash, summary.unbounced = self.recover()
            if to_send := self._mail_pending():
                self._check_server(mailer, to_send)
            started = time.perf_counter()
            pace = _Pace(rate)
            lock = threading.Lock()
            work: queue.Queue = queue.Queue(maxsize=2000)
            errors: list[BaseException] = []
            # The run stops at a failure of the sender's setup that will not pass (a refused login, a
            # refused sender) or after MAX_CONNECTION_FAILURES recipients in a row without a connection.
            stop = threading.Event()
            halted: list[tuple[MailError, int]] = []  # what stopped it, and after how many failures in a row
            in_a_row = [0]

            def worker() -> None:
                try:
                    with mailer.session() as session:
                        while (row := work.get()) is not None:
                            if stop.is_set():
                                continue  # left `sending`, back to pending below: the server never saw it
                            pace.wait()
                            try:
                                sent = self._send_one(session, row, policy, secret, base_url, who, summary, lock,
                                                      batches)
                            except MailError as exc:  # the sender's setup or the server: not this recipient's
                                with lock:
                                    in_a_row[0] += 1
                                    if (isinstance(exc, PermanentFailure) or in_a_row[0] >= MAX_CONNECTION_FAILURES) \
                                            and not stop.is_set():
                                        halted.append((exc, in_a_row[0]))
                                        stop.set()
                                    if progress:
                                        progress(summary.sent + summary.bounced + summary.deferred + summary.bad_address)
                                continue
                            with lock:
                                in_a_row[0] = 0
                                if sent is not None:
                                    sent_keys.append((row["dedupe_key"], sent))
                                if progress:
                                    progress(summary.sent + summary.bounced + summary.deferred + summary.bad_address)
                except BaseException as exc:  # noqa: BLE001 - reported by the run, never silently
                    errors.append(exc)
                    while work.get() is not None:  # keep the feeder from blocking
                        pass

            sent_keys: list[tuple[str, NewEvent]] = []  # accepted by the server, their events not yet written
            batches = _GroupCommit(self._commit_notices, size=connections, tidy=self.ledger.checkpoint)
            threads = [threading.Thread(target=worker, name=f"notice-sender-{i}") for i in range(max(1, connections))]
            for th in threads:
                th.start()
            try:
                while not errors and not stop.is_set():
                    with self.ledger.reader.connect() as conn:
                        batch = conn.execute(
                            select(outbox.c.dedupe_key).where(
                                outbox.c.campaign_id == self.id, outbox.c.channel == "email", outbox.c.state == NoticeState.pending
                            ).order_by(outbox.c.dedupe_key).limit(1000)
                        ).all()
                    if not batch:
                        break
                    claimed = self._claim([r[0] for r in batch])
                    with self.ledger.reader.connect() as conn:
                        rows = conn.execute(select(outbox).where(outbox.c.dedupe_key.in_(claimed))).mappings().all()
                    for row in rows:
                        work.put(dict(row))
                    with lock:
                        done, sent_keys[:] = list(sent_keys), []
                    self._mark_sent(done)
            finally:
                for _ in threads:
                    work.put(None)
                for th in threads:
                    th.join()
            with lock:
                self._mark_sent(list(sent_keys))
            with self.ledger.transaction() as conn:
                # Deferred rows sat out the rest of this run; the next one tries them. Rows still
                # `sending` were claimed but never tried (the run stopped): their mail never started.
                conn.execute(
                    update(outbox).where(outbox.c.campaign_id == self.id,
                                         outbox.c.state.in_((NoticeState.deferred, NoticeState.sending)))
                    .values(state=NoticeState.pending, updated_us=_now_us())
                )
                conn.execute(update(campaigns).where(campaigns.c.campaign_id == self.id).values(finished_us=_now_us()))
            self.ledger.checkpoint()
            if errors:
                raise errors[0]
            summary.left_pending = self._mail_pending()
            if halted:
                exc, failures = halted[0]
                why = (f"{failures} connection failures in a row" if not isinstance(exc, PermanentFailure)
                       else "the mail server refused this sender's setup")
                summary.stopped = (
                    f"stopped after {why}: {exc.render()}\n  fix: {how_to_fix(exc)}\n"
                    f"{count(summary.left_pending, 'e-mail notice stays', 'e-mail notices stay')} pending: run the "
                    "campaign again once the mail server works with this SMTP setting (--smtp or $CONSENTRY_SMTP); "
                    "it sends them"
                )
            summary.seconds = time.perf_counter() - started
            return summary

    def _mail_pending(self) -> int:
        """E-mail notices of this campaign still to be sent (after `recover`: all of them pending)."""
        with self.ledger.reader.connect() as conn:
            return conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.campaign_id == self.id, outbox.c.channel == "email",
                outbox.c.state.in_((NoticeState.pending, NoticeState.deferred, NoticeState.sending)))).scalar_one()

    @staticmethod
    def _check_server(mailer: Mailer, to_send: int) -> None:
        """Before the first mail: connect, EHLO, STARTTLS and AUTH as configured, then QUIT. A server
        that is down, or a setting it refuses, stops the run here with the fix, before anyone is tried
        (each recipient was tried three times, and a wrong setting recorded as everyone's bounce)."""
        try:
            with mailer.session() as probe:
                probe.check()
        except MailError as exc:
            raise ConsentryError(
                f"{exc.render()}\n  fix: {how_to_fix(exc)}\nNothing was sent: "
                f"{count(to_send, 'e-mail notice stays', 'e-mail notices stay')} pending; run the campaign again "
                "once the mail server works with this SMTP setting (--smtp or $CONSENTRY_SMTP)"
            ) from None

    def _claim(self, keys: list[str]) -> set[str]:
        """Move a batch from pending to sending in one transaction. A crash now
        costs nothing: sending rows go back to pending, their mail was never final."""
        with self.ledger.transaction() as conn:
            conn.execute(
                update(outbox).where(outbox.c.dedupe_key.in_(keys), outbox.c.state == NoticeState.pending)
                .values(state=NoticeState.sending, attempts=outbox.c.attempts + 1, updated_us=_now_us())
            )
            rows = conn.execute(
                select(outbox.c.dedupe_key).where(outbox.c.dedupe_key.in_(keys), outbox.c.state == NoticeState.sending)
            ).all()
        return {r[0] for r in rows}

    def _mark_sent(self, items: list[tuple[str, NewEvent]]) -> None:
        """committing -> sent with the `notified` events, in bulk, for mails the
        server accepted."""
        if items:
            with self.ledger.transaction() as conn:
                self._record_sent(conn, items)

    def _record_sent(self, conn, items: list[tuple[str, NewEvent]]) -> None:  # noqa: ANN001 - a Connection
        if not items:
            return
        conn.execute(
            update(outbox).where(outbox.c.dedupe_key.in_([k for k, _ in items]), outbox.c.state == NoticeState.committing)
            .values(state=NoticeState.sent, updated_us=_now_us())
        )
        self.ledger.append_in(conn, [e for _, e in items], returning=False)  # ids already stored are left alone

    def _commit_notices(self, items: list[tuple[str, NewEvent]]) -> None:
        """`committing` for a batch, in one transaction, before its dots."""
        now = _now_us()
        with self.ledger.transaction() as conn:
            _COMMITTING.many(conn, [{"key": k, "now": now} for k, _ in items])

    def _send_one(self, session, row, policy, secret, base_url, who, summary, lock, batches) -> NewEvent | None:  # noqa: ANN001
        """Send one claimed notice; its `notified` event when the server took it. An address that
        cannot be used is set aside (`bad_address`), never tried; a failure of the sender's setup or
        of the connection (`is_setup_failure`) is nobody's bounce: the row waits for the next run and
        the error is raised for the run to count (and stop)."""
        key = row["dedupe_key"]
        try:
            # One address, or none: never two in one To (the export's "a@x.org, b@y.org"), never a
            # traceback that stopped the whole campaign at the same row on every run.
            parse_mailbox(row["address"], what="address")
        except ValueError as exc:
            self._finish(key, BAD_ADDRESS, only_from=_NOT_SENT, error=(
                f"the address cannot be used, so no mail was sent: {exc}. Correct it in the platform's data; "
                "the in-app notice is unaffected"))
            with lock:
                summary.bad_address += 1
            return None
        link = f"{base_url}/o/{objection_token(secret, row['user_id'], self.id)}"
        subject, text, html = self._texts(row["language"], row["jurisdiction"], policy, base_url, who, scope=row["scope"])
        text, html = text.replace(_LINK, link), html.replace(_LINK, link)
        message = Message(
            to=row["address"], subject=subject, text=text, html=html,
            headers={"X-Consentry-Campaign": self.id, "X-Consentry-Notice": key},
            message_id=f"<{key.replace(':', '.')}@consentry>",
        )
        event = self._notified(row["user_id"], Channel.email)

        def commit_notice(send_dot: Callable[[], None]) -> None:
            batches.commit(key, event, send_dot)

        raw = render(message, sender=session.mailer.settings.sender)  # the one way mail is built
        try:
            session.send_raw(message, raw, attempts=3, backoff=0.2, hand_over_dot=commit_notice)
        except MailError as exc:
            # Only a refusal of this recipient (5xx at RCPT TO, or in answer to the final dot, when the
            # row is committing) is a bounce; a failure to connect, start TLS, log in or be taken as
            # the sender is the sender's: the row waits for the next run, and the run counts it.
            setup = is_setup_failure(exc)
            bounced = isinstance(exc, PermanentFailure) and not setup
            self._finish(key, NoticeState.bounced if bounced else NoticeState.deferred, error=exc.render(),
                         only_from=_NOT_SENT)
            with lock:
                if bounced:
                    summary.bounced += 1
                else:
                    summary.deferred += 1
            if setup:
                raise
            return None
        except Exception:
            # The notice could not be recorded (the ledger failed): the final dot
            # was never sent, so the server drops the mail; so must we, the
            # connection is mid-DATA.
            session.abort()
            self._finish(key, NoticeState.pending, error="the notice could not be recorded", only_from=(NoticeState.sending,))
            raise
        with lock:
            summary.sent += 1
        return event

    def _texts(self, lang: str, jurisdiction: str, policy: Policy, base_url: str, who: tuple,
               scope: str | None = None) -> tuple[str, str, str]:
        """The notice for a language, jurisdiction and scope (what it speaks of:
        'own', 'tagged', 'both'; an outbox row without one: 'own'), rendered
        once; only the link differs per person."""
        cache = self.__dict__.setdefault("_text_cache", {})
        k = (lang, jurisdiction, scope or "own")
        if k not in cache:
            cache[k] = render_notice(gettext(lang), policy, self.cutoff, f"{base_url}/o/{_LINK}", who[0], jurisdiction,
                                     who[1], scope=scope or "own")
            cache[k] = (cache[k][0], cache[k][1].replace(f"{base_url}/o/{_LINK}", _LINK), cache[k][2].replace(f"{base_url}/o/{_LINK}", _LINK))
        return cache[k]

    def _finish(self, key: str, state: str, *, error: str | None = None, message_id: str | None = None,
                only_from: tuple[str, ...] | None = None) -> None:
        values: dict = {"state": state, "updated_us": _now_us()}
        if error is not None:
            values["last_error"] = error[:2000]
        if message_id is not None:
            values["message_id"] = message_id
        q = update(outbox).where(outbox.c.dedupe_key == key)
        if only_from:
            q = q.where(outbox.c.state.in_(only_from))
        with self.ledger.transaction() as conn:
            conn.execute(q.values(**values))

    def _notified(self, user_id: str, channel: Channel, at: datetime | None = None) -> NewEvent:
        return NewEvent(
            event_id=f"notice:{self.id}:{user_id}:{channel.value}",
            user_id=user_id, type=EventType.notified, at=at or datetime.now(UTC), channel=channel,
            note=f"campaign {self.id}; {self.version}",
        )

    # -- in-app ----------------------------------------------------------------------------------

    def in_app_pending(self, limit: int | None = None, *, page: int = 10_000, policy: Policy | None = None,
                       now: datetime | None = None) -> Iterator[dict]:
        """The in-app notices not yet shown (`dedupe_key`, `user_id`, `language`,
        `jurisdiction`, `scope`): every one of
        them, or the first `limit`, read a page at a time. With the campaign's
        `policy`, only those that can still count: in a jurisdiction whose
        notice period still fits before the cut-off (`now` is at or before the
        cut-off minus its notice days), for people who have not since asked for
        erasure, nor objected where objections are honoured (their content is
        not used: telling them it will be is untrue)."""
        from sqlalchemy import and_, or_

        from ..ledger.tables import person_state as ps

        cols = [outbox.c.dedupe_key, outbox.c.user_id, outbox.c.language, outbox.c.jurisdiction, outbox.c.scope]
        where = [outbox.c.campaign_id == self.id, outbox.c.channel == "in_app", outbox.c.state == NoticeState.pending]
        source = outbox
        if policy is not None:
            in_time, _late = self._in_time(policy, now)
            honour = [j.name for j in policy.jurisdictions if j.honour_objections]
            source = outbox.outerjoin(ps, ps.c.user_id == outbox.c.user_id)
            where += [outbox.c.jurisdiction.in_(in_time), ps.c.erasure_us.is_(None),
                      or_(func.coalesce(ps.c.objection, "") != EventType.objected.value,
                          ~outbox.c.jurisdiction.in_(honour))]
        after, given = "", 0
        while limit is None or given < limit:
            size = page if limit is None else min(page, limit - given)
            with self.ledger.reader.connect() as conn:
                rows = conn.execute(
                    select(*cols).select_from(source).where(and_(*where), outbox.c.dedupe_key > after)
                    .order_by(outbox.c.dedupe_key).limit(size)
                ).mappings().all()
            yield from (dict(r) for r in rows)
            given += len(rows)
            if len(rows) < size:
                return
            after = rows[-1]["dedupe_key"]

    def _in_time(self, policy: Policy, now: datetime | None = None) -> tuple[list[str], dict[str, datetime]]:
        """The jurisdictions whose notice can still count (`now` at or before the
        cut-off minus their notice period), and the last moment of each that
        no longer can (its deadline)."""
        from datetime import timedelta

        now = now or datetime.now(UTC)
        in_time, late = [], {}
        for j in policy.jurisdictions:
            deadline = self.cutoff - timedelta(days=j.notice_days or 0)
            if now <= deadline:
                in_time.append(j.name)
            else:
                late[j.name] = deadline
        return in_time, late

    def in_app_withheld(self, policy: Policy, now: datetime | None = None) -> dict[str, int]:
        """The in-app notices not yet shown that `in_app_pending(policy=...)`
        leaves out, counted by why: `too_late` (their notice period no longer
        fits before the cut-off), then `erased` and `objected` (since planning)."""
        from sqlalchemy import and_

        from ..ledger.tables import person_state as ps

        in_time, late = self._in_time(policy, now)
        honour = [j.name for j in policy.jurisdictions if j.honour_objections]
        base = [outbox.c.campaign_id == self.id, outbox.c.channel == "in_app", outbox.c.state == NoticeState.pending]
        q = select(func.count()).select_from(outbox.outerjoin(ps, ps.c.user_id == outbox.c.user_id))
        with self.ledger.reader.connect() as conn:
            too_late = conn.execute(q.where(*base, outbox.c.jurisdiction.in_(list(late)))).scalar_one()
            base.append(outbox.c.jurisdiction.in_(in_time))
            erased = conn.execute(q.where(*base, ps.c.erasure_us.is_not(None))).scalar_one()
            objected = conn.execute(q.where(*base, ps.c.erasure_us.is_(None), and_(
                ps.c.objection == EventType.objected.value, outbox.c.jurisdiction.in_(honour)))).scalar_one()
        return {"too_late": int(too_late), "erased": int(erased), "objected": int(objected)}

    def _own_policy(self, policy: Policy | None) -> Policy:
        """The campaign's policy: `policy` if it is the one it started with, else
        the built-in one of its name if that is it; refused otherwise."""
        from ..policy import load_policy, preset_names

        if policy is None and self.row["policy_name"] in preset_names():
            policy = load_policy(self.row["policy_name"])
            if policy.hash != self.row["policy_hash"]:
                policy = None
        if policy is None or policy.hash != self.row["policy_hash"]:
            raise InputError(
                f"campaign '{self.id}' was started with policy '{self.row['policy_name']}' {self.row['policy_hash']}"
                + (f", not '{policy.name}' {policy.hash}" if policy is not None else ""),
                fix="pass the campaign's own --policy: its notice periods say until when a notice counts")
        return policy

    def in_app_notices(self, policy: Policy, *, secret: str, base_url: str, controller: Controller | None = None,
                       limit: int | None = None, now: datetime | None = None) -> Iterator[dict]:
        """The in-app notices not yet shown that can still count, each with
        what to show: the notice's `subject`, `text` and `html` in the person's
        language and their signed one-click `objection_url`, the very text a
        mail of this campaign carries, so that the `notified` event an
        acknowledgement writes names what the person saw (`version`). Notices
        past their jurisdiction's deadline (the cut-off minus its notice
        period), and people who have since objected or asked for erasure, are
        left out (`in_app_withheld` counts them)."""
        if policy.hash != self.row["policy_hash"]:
            raise InputError(
                f"campaign '{self.id}' was started with policy {self.row['policy_hash']}, not '{policy.name}' {policy.hash}",
                fix="pass the campaign's own --policy: its notices say what that policy does")
        if self.row["template_version"] != TEMPLATE_VERSION:
            raise InputError(
                f"campaign '{self.id}' was started with notice template {self.row['template_version']}; this version "
                f"of consentry writes template {TEMPLATE_VERSION}, so it cannot show that campaign's notices",
                fix="start a campaign with a new id (people it told are not told again)")
        who = _who(controller)
        base_url = base_url.rstrip("/")
        for row in self.in_app_pending(limit, policy=policy, now=now):
            subject, text, html = self._texts(row["language"], row["jurisdiction"], policy, base_url, who,
                                              scope=row.pop("scope", None))
            link = f"{base_url}/o/{objection_token(secret, row['user_id'], self.id)}"
            offered = _LINK in text  # none where the policy does not honour this person's objection
            yield {**row, "version": self.version, "subject": subject, "objection_url": link if offered else None,
                   "text": text.replace(_LINK, link), "html": html.replace(_LINK, link)}

    def acknowledge(self, dedupe_keys: list[str], policy: Policy | None = None, *,
                    now: datetime | None = None) -> Acknowledged:
        """The platform showed these in-app notices: record them, once each
        (a `notified` event per person, in one transaction). Keys already
        recorded, and keys that name no in-app notice of this campaign, are
        counted apart, so that a wrong file does not pass for a repeated one.
        A notice shown after its jurisdiction's deadline (the cut-off minus its
        notice period, of the campaign's `policy`; by default the built-in one
        it names) is not recorded: it is counted in `too_late_keys`, and its
        row stays pending, since the person was not told in time."""
        policy = self._own_policy(policy)
        in_time, late = self._in_time(policy, now)
        wanted = list(dict.fromkeys(dedupe_keys))
        result = Acknowledged(already=len(dedupe_keys) - len(wanted), deadlines=late)
        with self.ledger.transaction() as conn:
            for i in range(0, len(wanted), 1000):
                chunk = wanted[i : i + 1000]
                found = conn.execute(
                    select(outbox.c.dedupe_key, outbox.c.user_id, outbox.c.state, outbox.c.jurisdiction).where(
                        outbox.c.dedupe_key.in_(chunk), outbox.c.campaign_id == self.id, outbox.c.channel == "in_app")
                ).all()
                waiting = [(k, u, j) for k, u, state, j in found if state == NoticeState.pending]
                pending = [(k, u) for k, u, j in waiting if j in in_time]
                known = {k for k, *_ in found}
                result.unknown_keys += [k for k in chunk if k not in known]
                result.too_late_keys += [k for k, _, j in waiting if j not in in_time]
                result.already += len(found) - len(waiting)
                if not pending:
                    continue
                conn.execute(update(outbox).where(outbox.c.dedupe_key.in_([k for k, _ in pending]))
                             .values(state=NoticeState.shown, updated_us=_now_us()))
                self.ledger.append_in(conn, [self._notified(u, Channel.in_app) for _, u in pending], returning=False)
                result.shown += len(pending)
        return result
