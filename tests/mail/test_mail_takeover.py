"""`consentry mail send --now` after a crash: mails leased by a sender that is
gone are delivered now; those a live sender holds are left to it, and the
operator is told how many and until when.

Real parts only: `consentry mail send` in processes of their own (one of them
SIGKILLed mid-delivery), a real SQLite ledger, aiosmtpd (tests/smtp_server.py),
and a mail server that takes the connection and never answers (a listening
socket nobody reads). Ports 18500-18599."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from consentry.ledger import Ledger
from consentry.mail import Message, OutgoingMail, outbox_counts
from consentry.mail import outbox
from consentry.mail.tables import mail_outbox
from smtp_server import SmtpTestServer

pytestmark = pytest.mark.slow

SENDER = "privacy@example.org"
CONSENTRY = str(Path(sys.executable).parent / "consentry")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A mail server that accepts connections and never says a word."""
    for port in range(18500, 18600):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        s.listen(16)
        try:
            yield port
        finally:
            s.close()
        return
    raise AssertionError("no free port in 18500-18599")


def _queue(url: str, n: int) -> None:
    with Ledger(url) as led, led.transaction() as conn:
        for i in range(n):
            outbox.enqueue(conn, OutgoingMail.of(
                Message(to=f"person{i}@example.net", subject="Your sign-in link", text="Hello\n",
                        headers={"X-Consentry-Kind": "signin"}),
                sender=SENDER, kind="signin", expires_in=timedelta(minutes=15)))


def _claimed(url: str) -> int:
    with Ledger(url) as led, led.reader.connect() as conn:
        return len(conn.execute(select(mail_outbox.c.id).where(mail_outbox.c.claim.is_not(None))).all())


def _holder(url: str, port: int, tmp_path: Path) -> subprocess.Popen:
    """`consentry mail send` to the silent server: it claims every mail and waits for a greeting."""
    proc = subprocess.Popen(
        [CONSENTRY, "mail", "send", "--ledger", url, "--smtp", f"smtp://127.0.0.1:{port}?sender={SENDER}&timeout=120"],
        env={**os.environ, "CONSENTRY_HOME": str(tmp_path)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while _claimed(url) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc


def _send_now(url: str, smtp: SmtpTestServer, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CONSENTRY, "mail", "send", "--now", "--ledger", url,
         "--smtp", f"smtp://{smtp.host}:{smtp.port}?sender={SENDER}"],
        env={**os.environ, "CONSENTRY_HOME": str(tmp_path), "COLUMNS": "300"}, capture_output=True, text=True,
        timeout=120, check=False)


def test_send_now_delivers_the_mails_of_a_sender_that_was_killed(tmp_path: Path, silent_server: int) -> None:
    """A trial: after a crash, `mail send --now` printed "0 sent, 0 to try
    again later" while `mail status` said 2 queued: the dead process's leases
    (5 minutes) kept them from it, without a word. A lease now names its
    process and machine: one that is provably gone is taken over at once."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _queue(url, 2)
    holder = _holder(url, silent_server, tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    with SmtpTestServer() as smtp:
        r = _send_now(url, smtp, tmp_path)
        assert r.returncode == 0 and r.stdout.startswith("2 sent"), (r.stdout, r.stderr)
        assert "took over 2 mails" in r.stderr, r.stderr
        assert sorted(m.rcpt_tos[0] for m in smtp.wait_for(2)) == ["person0@example.net", "person1@example.net"]
    with Ledger(url) as led, led.reader.connect() as conn:
        assert outbox_counts(conn)["queued"] == 0


def test_send_now_leaves_a_live_senders_mails_and_says_until_when(tmp_path: Path, silent_server: int) -> None:
    """Never twice on purpose: while the sender that holds them may still
    deliver them, they are not tried, and the operator reads how many are
    held and when their lease ends."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _queue(url, 2)
    holder = _holder(url, silent_server, tmp_path)
    try:
        with SmtpTestServer() as smtp:
            r = _send_now(url, smtp, tmp_path)
            assert r.stdout.startswith("0 sent"), (r.stdout, r.stderr)
            assert ", 2 held by another sender until " in r.stdout and r.returncode == 1, (r.stdout, r.stderr)
            said = " ".join(r.stderr.split())
            assert "2 mails are held by another sender" in said and "until" in said and "UTC" in said, said
            assert smtp.messages == []
    finally:
        holder.kill()
        holder.wait(10)
