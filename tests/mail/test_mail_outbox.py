"""No mail is lost: the durable outbox, its sender, and the center's use of it.

Real parts only: aiosmtpd (tests/smtp_server.py), stopped and restarted on the
same port mid-test; SQLite, and PostgreSQL when CONSENTRY_TEST_POSTGRES_URL
is set. Waits poll the database or the server with a deadline.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import smtp_server
from center_kit import ALICE, EMAIL, METRICS_AUTH, CenterKit, center, center_factory, export_dir, page_text  # noqa: F401
from consentry.access.tables import signin_links
from consentry.cli import app as cli_app
from consentry.ledger import Channel, EventType, GroupCommitter, Ledger, NewEvent
from consentry.mail import (
    MailError,
    MemoryTransport,
    Message,
    OutgoingMail,
    PermanentFailure,
    Sender,
    SmtpSettings,
    SmtpTransport,
    TemporaryFailure,
    check_smtp,
)
from consentry.mail import outbox
from consentry.mail.outbox import MailForEvent
from consentry.mail.tables import mail_outbox
from smtp_server import SmtpTestServer

SENDER = "Privacy <privacy@example.org>"
USER, PASSWORD = "center", "s3cret-Pa55-word"


# -- helpers -----------------------------------------------------------------------------------


def wait_until(what: str, check: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(0.02)


def rows(led: Ledger) -> list[dict]:
    with led.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(mail_outbox).order_by(mail_outbox.c.created_us)).mappings()]


def restart_on_same_port(server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server comes back where the sender expects it (start() would pick a new port)."""
    port = server.port
    monkeypatch.setattr(smtp_server, "free_port", lambda: port)
    server.start()
    assert server.port == port


def mail(to: str = "zoe@example.net", kind: str = "test", expires_in: timedelta = timedelta(hours=1),
         text: str = "Beste Zoë,\nuw bezwaar is ontvangen.\n") -> OutgoingMail:
    return OutgoingMail.of(Message(to=to, subject="Bevestiging — ë", text=text, headers={"X-Consentry-Kind": kind}),
                           sender=SENDER, kind=kind, expires_in=expires_in)


def smtp_settings(server: SmtpTestServer, **kw: object) -> SmtpSettings:
    fields: dict = {"host": server.host, "port": server.port, "security": "none", "sender": SENDER, "timeout": 2}
    fields.update(kw)
    return SmtpSettings(**fields)


@pytest.fixture
def led(ledger_url: str) -> Iterator[Ledger]:
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.close()


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    """One server per test (overrides center_kit's module-wide one): these tests stop it."""
    server = SmtpTestServer()
    server.start()
    yield server
    server.stop()


# -- the outbox and its sender, with real SMTP ------------------------------------------------------


@pytest.mark.slow
def test_a_mail_queued_while_the_server_is_down_arrives_after_it_comes_back(
    led: Ledger, smtp: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp.stop()
    sender = Sender(led, SmtpTransport(smtp_settings(smtp)), backoff_s=0.1, backoff_cap_s=0.3, poll_s=0.1)
    with led.transaction() as conn:
        queued = mail()
        outbox.enqueue(conn, queued)
    sender.start()
    try:
        # It was tried, refused at connect, and kept.
        wait_until("two failed attempts", lambda: rows(led)[0]["attempts"] >= 2)
        row = rows(led)[0]
        assert row["state"] == "queued" and "cannot reach the server" in row["last_error"]
        assert f"{smtp.host}:{smtp.port}, connect" in row["last_error"]

        restart_on_same_port(smtp, monkeypatch)
        [got] = smtp.wait_for(1, timeout=10)
        assert got.rcpt_tos == ("zoe@example.net",)
        assert got.message["Message-ID"] == queued.message_id
        assert got.message.get_body(("plain",)).get_content() == "Beste Zoë,\nuw bezwaar is ontvangen.\n"
        wait_until("marked sent", lambda: rows(led)[0]["state"] == "sent")
        assert rows(led)[0]["raw"] is None, "a sent mail's content is not kept"
    finally:
        sender.stop()
    assert len(smtp.messages) == 1


@pytest.mark.slow
def test_the_sender_backs_off_exponentially_up_to_the_cap(led: Ledger) -> None:
    transport = MemoryTransport(SENDER)
    transport.failure = TemporaryFailure("down", server="h:25", stage="connect")
    sender = Sender(led, transport, backoff_s=10, backoff_cap_s=30)
    with led.transaction() as conn:
        outbox.enqueue(conn, mail())
    waits = []
    for _ in range(4):
        with led.transaction() as conn:  # make it due now, as time passing would
            outbox.retry_now(conn)
        before = outbox.now_us()
        assert sender.run_once().retrying == 1
        waits.append(round((rows(led)[0]["next_attempt_us"] - before) / 1e6))
    assert waits == [10, 20, 30, 30]
    assert transport.attempts == 4 and rows(led)[0]["attempts"] == 4


def test_a_permanent_refusal_fails_at_once(led: Ledger, smtp: SmtpTestServer) -> None:
    smtp.reject("gone@example.net", 550)
    with led.transaction() as conn:
        outbox.enqueue(conn, mail(to="gone@example.net"))
        outbox.enqueue(conn, mail(to="here@example.net"))
    done = Sender(led, SmtpTransport(smtp_settings(smtp))).run_once()
    assert (done.sent, done.failed, done.retrying) == (1, 1, 0)
    by_to = {r["recipient"]: r for r in rows(led)}
    assert by_to["gone@example.net"]["state"] == "failed" and "550" in by_to["gone@example.net"]["last_error"]
    assert by_to["gone@example.net"]["raw"] is None
    assert by_to["here@example.net"]["state"] == "sent"
    assert [m.rcpt_tos for m in smtp.wait_for(1)] == [("here@example.net",)]


@pytest.mark.slow
def test_a_mail_that_cannot_be_delivered_in_time_expires(led: Ledger) -> None:
    transport = MemoryTransport(SENDER)
    transport.failure = TemporaryFailure("down", server="h:25", stage="connect")
    sender = Sender(led, transport, backoff_s=0.05, backoff_cap_s=0.05)
    with led.transaction() as conn:
        outbox.enqueue(conn, mail(expires_in=timedelta(seconds=0.5)))
    wait_until("expired", lambda: sender.run_once() and rows(led)[0]["state"] == "expired", timeout=5)
    row = rows(led)[0]
    assert row["raw"] is None and "expired" in row["last_error"] and row["attempts"] >= 1
    with led.reader.connect() as conn:
        assert outbox.counts(conn) == {"queued": 0, "sent": 0, "expired": 1, "failed": 0}
        [listed] = outbox.undelivered(conn)
    assert listed["kind"] == "test" and listed["recipient"] == "zoe@example.net" and "raw" not in listed
    transport.failure = None
    assert sender.run_once().claimed == 0, "an expired mail is never sent"
    assert transport.delivered == []


@pytest.mark.slow
def test_a_sender_that_dies_mid_delivery_leaves_the_mail_to_another_after_its_lease(led: Ledger) -> None:
    """At least once: the mail may go out twice, but it is never lost."""
    with led.transaction() as conn:
        outbox.enqueue(conn, mail())
    with led.transaction() as conn:  # a sender claims it, then dies
        [claimed] = outbox.claim(conn, limit=10, lease_s=0.5)
    transport = MemoryTransport(SENDER)
    other = Sender(led, transport, lease_s=0.5)
    assert other.run_once().claimed == 0, "leased: not taken while the first sender may still deliver it"
    wait_until("re-delivered after the lease", lambda: other.run_once().sent == 1, timeout=5)
    assert [to for to, _ in transport.delivered] == ["zoe@example.net"]
    assert rows(led)[0]["attempts"] == 2 and rows(led)[0]["state"] == "sent"
    with led.transaction() as conn:  # the dead sender's late report changes nothing
        assert outbox.retry_later(conn, claimed, outbox.now_us(), "late") is True
    assert rows(led)[0]["state"] == "sent"


@pytest.mark.slow
def test_two_senders_deliver_each_mail_once(led: Ledger) -> None:
    with led.transaction() as conn:
        for i in range(60):
            outbox.enqueue(conn, mail(to=f"p{i}@example.net"))
    transport = MemoryTransport(SENDER)
    senders = [Sender(led, transport, batch=5) for _ in range(2)]
    errors: list[BaseException] = []

    def work(s: Sender) -> None:
        try:
            while s.run_once().claimed:
                pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    delivered = sorted(to for to, _ in transport.delivered)
    assert delivered == sorted(f"p{i}@example.net" for i in range(60))
    assert {r["state"] for r in rows(led)} == {"sent"}


# -- the same transaction as the event ------------------------------------------------------------


@pytest.mark.slow
def test_an_event_and_its_mail_are_committed_together_or_not_at_all(led: Ledger) -> None:
    committer = GroupCommitter(led)
    event = NewEvent(user_id="u1", type=EventType.objected, at=datetime.now(UTC), channel=Channel.web)

    def broken(stored):  # noqa: ANN001, ANN202
        raise RuntimeError("the template is broken")

    with pytest.raises(RuntimeError, match="template is broken"):
        committer.record(event, mails=[MailForEvent(broken)])
    assert led.history("u1") == [] and rows(led) == [], "no event without its mail"

    stored = committer.record(
        event, mails=[MailForEvent(lambda e: mail(text=f"Reference #{e.seq} ({e.event_id})\n"))]
    )
    [row] = rows(led)
    body = base64.b64decode(row["raw"].split(b"\r\n\r\n", 1)[1])  # a text-only mail: one base64 part
    assert f"#{stored.seq} ({stored.event_id})".encode() in body
    # The same event again (a retried request): stored once, mailed once.
    again = committer.record(event.model_copy(update={"event_id": stored.event_id}), mails=[mail()])
    assert again.seq == stored.seq and len(rows(led)) == 1


# -- the privacy center ---------------------------------------------------------------------------


def test_the_centers_shutdown_stops_its_mail_sender(center_factory) -> None:  # noqa: ANN001, F811
    """A sender left running after its center stopped goes on claiming the outbox's mails and holding them for
    its lease, out of reach of the senders still serving; CI once lost a test to one left by another test."""
    from starlette.testclient import TestClient

    kit: CenterKit = center_factory()
    thread = kit.app.state.center.outbox.sender._thread  # type: ignore[attr-defined]
    assert thread is not None and thread.is_alive(), "the center sends from the start"
    with TestClient(kit.app):  # startup, then shutdown, as uvicorn runs them
        assert thread.is_alive()
    assert not thread.is_alive(), "stopped at shutdown"
    assert kit.client.get("/").status_code == 200, "the ledger is opened again on use"


@pytest.mark.slow
def test_center_objection_during_an_outage_is_confirmed_after_a_restart(
    center_factory, smtp: SmtpTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001, F811
) -> None:
    url = f"sqlite:///{tmp_path / 'outage.db'}"
    kit: CenterKit = center_factory(ledger_url=url)
    alice = kit.signed_in_client(ALICE)
    smtp.stop()  # the mail server goes down

    r = kit.post_form(alice, "/me/object", {"note": ""}, page="/me")
    assert r.status_code == 200
    text = page_text(r.text)
    assert "We will mail you a confirmation." in text and "We have sent" not in text
    [event] = [e for e in kit.events(ALICE) if e.type == EventType.objected]
    wait_until("a failed attempt", lambda: [m for m in rows(kit.ledger) if m["kind"] == "objected"][0]["attempts"] >= 1)

    # The center restarts (its sender stops; a new one starts), then the server is back.
    kit.app.state.center.outbox.close()  # type: ignore[attr-defined]
    restart_on_same_port(smtp, monkeypatch)
    center_factory(ledger_url=url)
    got = kit.inbox.wait(to=EMAIL[ALICE], kind="objected", timeout=20)
    assert f"#{event.seq} ({event.event_id})" in got.text
    wait_until("sent", lambda: [m for m in rows(kit.ledger) if m["kind"] == "objected"][0]["state"] == "sent")


@pytest.mark.slow
def test_center_signin_link_and_its_mail_are_one_transaction_and_the_page_says_on_its_way(
    center: CenterKit, smtp: SmtpTestServer  # noqa: F811
) -> None:
    r = center.client.post("/signin", data={"email": EMAIL[ALICE], "csrf": center.csrf()})
    assert "a sign-in link is on its way" in page_text(r.text)
    center.inbox.wait(to=EMAIL[ALICE], kind="signin")
    with center.ledger.engine.connect() as conn:
        links = conn.execute(select(func.count()).select_from(signin_links)).scalar_one()
    [row] = [m for m in rows(center.ledger) if m["kind"] == "signin"]
    assert links == 1
    assert row["expires_us"] - row["created_us"] == pytest.approx(15 * 60e6, abs=5e6), "expires with the link"
    wait_until("sent", lambda: [m for m in rows(center.ledger) if m["kind"] == "signin"][0]["raw"] is None)


@pytest.mark.slow
def test_admin_sees_mails_that_were_refused_without_their_content(
    center: CenterKit, smtp: SmtpTestServer  # noqa: F811
) -> None:
    center.record(ALICE, "objected")
    smtp.reject(EMAIL[ALICE], 550)
    admin = center.admin_client()
    grounds = "Compelling grounds: the account is evidence in a fraud case 4711."
    r = center.post_form(admin, "/admin/reject", {"user_id": ALICE, "grounds": grounds}, page="/admin")
    assert r.status_code == 303
    wait_until("refused", lambda: [m for m in rows(center.ledger) if m["kind"] == "rejection"][0]["state"] == "failed")
    page = page_text(admin.get("/admin").text)
    assert "Mails not delivered" in page and "Not delivered (expired or refused): 1." in page  # it said "1 were"
    assert f"rejection · {EMAIL[ALICE]}" in page and "550" in page
    assert "fraud case 4711" not in page


@pytest.mark.slow
def test_center_with_a_mail_dir_writes_eml_files(center_factory, tmp_path: Path) -> None:  # noqa: ANN001, F811
    kit = center_factory(mail_dir=tmp_path / "mails")
    kit.client.post("/signin", data={"email": EMAIL[ALICE], "csrf": kit.csrf()})
    [eml] = wait_until("an .eml file", lambda: list((tmp_path / "mails").glob("*.eml")))
    raw = eml.read_bytes()
    assert b"X-Consentry-Kind: signin" in raw and b"\r\n" in raw
    kit.inbox.assert_none(to=EMAIL[ALICE], settle=0.2)


# -- the start-up check and the CLI ---------------------------------------------------------------


def test_check_smtp_passes_tls_and_auth_and_sends_nothing() -> None:
    with SmtpTestServer(starttls=True, auth=(USER, PASSWORD)) as server:
        check_smtp(smtp_settings(server, security="starttls", username=USER, password=PASSWORD, verify_tls=False))
        assert server.connections == 1 and server.messages == []


@pytest.mark.parametrize("case", ["wrong password"])
def test_serve_refuses_to_start_with_bad_smtp_settings(case: str, export_dir: Path, monkeypatch, tmp_path) -> None:  # noqa: ANN001, F811
    """(A server nobody listens on is an outage, not a mistake: tests/commands/test_serve_setup.py.)"""
    monkeypatch.setenv("CONSENTRY_SECRET_KEY", "k9fT2xQ7mZ4pL8sV1bN6cR3wY0hJ5dG2")
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "300")
    with SmtpTestServer(starttls=True, auth=(USER, PASSWORD)) as server:
        port = server.port if case == "wrong password" else smtp_server.free_port()
        url = f"smtp+starttls://{USER}:hunter2-wrong@{server.host}:{port}?sender=privacy@example.org&verify_tls=false"
        result = CliRunner().invoke(cli_app, ["serve", "--data", str(export_dir), "--ledger",
                                              f"sqlite:///{tmp_path / 'l.db'}", "--smtp", url])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert "not starting: the mail server check failed" in said and f"{server.host}:{port}" in said
    assert ("AUTH" in said and "535" in said) if case == "wrong password" else "connect" in said
    assert "hunter2" not in said and "--mail-dir" in said


@pytest.mark.slow
def test_mail_status_and_send_commands(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("COLUMNS", "300")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with Ledger(url) as led, led.transaction() as conn:
        outbox.enqueue(conn, mail(to="due@example.net"))
        outbox.enqueue(conn, mail(to="late@example.net", expires_in=timedelta(seconds=-1)))
    runner = CliRunner()
    sent = runner.invoke(cli_app, ["mail", "send", "--ledger", url, "--mail-dir", str(tmp_path / "out")])
    assert sent.exit_code == 1, sent.output  # one expired: the operator should look
    assert "1 sent" in sent.output and "1 expired" in sent.output
    assert len(list((tmp_path / "out").glob("*.eml"))) == 1
    status = runner.invoke(cli_app, ["mail", "status", "--ledger", url])
    assert status.exit_code == 0, status.output
    assert "0 queued, 1 sent, 1 expired, 0 failed" in status.output
    assert "late@example.net" in status.output and "due@example.net" not in status.output
    assert "Beste" not in status.output


@pytest.mark.slow
def test_errors_kept_for_admins_never_hold_the_password(led: Ledger) -> None:
    with SmtpTestServer(starttls=True, auth=(USER, PASSWORD)) as server:
        settings = smtp_settings(server, security="starttls", username=USER, password="hunter2-wrong", verify_tls=False)
        with led.transaction() as conn:
            outbox.enqueue(conn, mail())
        done = Sender(led, SmtpTransport(settings)).run_once()
    assert done.failed == 1  # a refused login is permanent
    assert "535" in rows(led)[0]["last_error"] and "hunter2" not in rows(led)[0]["last_error"]


def test_mail_errors_are_the_notices_mailer_errors() -> None:
    """One mail package: the campaign's mailer and the outbox raise the same classes."""
    from consentry.notices import mailer

    assert mailer.PermanentFailure is PermanentFailure and mailer.MailError is MailError


@pytest.mark.slow
def test_metrics_count_the_outbox_by_state(center: CenterKit, smtp: SmtpTestServer) -> None:  # noqa: F811
    smtp.reject(EMAIL[ALICE], 550)
    center.client.post("/signin", data={"email": EMAIL[ALICE], "csrf": center.csrf()})
    wait_until("refused", lambda: rows(center.ledger) and rows(center.ledger)[0]["state"] == "failed")
    body = center.client.get("/metrics", headers=METRICS_AUTH).text
    assert 'consentry_mail_outbox{state="failed"} 1.0' in body
    assert 'consentry_mail_outbox{state="queued"} 0.0' in body
