"""A notice campaign's sending path, as a trial ran it (`consentry notify ... --smtp smtp://...`):

1. one unusable address (not an address, two addresses, blank) stopped every
   run with a traceback, for ever, and nobody got a mail;
2. a wrong SMTP setting (STARTTLS against a server without it, a refused
   login) was recorded as a permanent bounce of every recipient;
3. a server that is down (or a host that does not resolve) was tried three
   times per recipient: 227 people took 2m19s and "succeeded" with exit 0.

Against a real SMTP server (tests/smtp_server.py), helpers from test_notices.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from cli_kit import cli
from consentry.errors import ConsentryError
from consentry.ledger import Ledger
from consentry.notices import Mailer, SmtpSettings
from consentry.notices.campaign import Campaign
from consentry.notices.tables import outbox as outbox_table
from consentry.policy import load_policy
from consentry.sources import Export
from consentry.timeutil import iso
from exportkit import item, user, write_export
from smtp_server import SmtpTestServer, free_port
from test_notices import (
    BASE_URL,
    CAMPAIGN,
    PIXGRAM,
    SECRET,
    SENDER,
    WHO,
    T,
    mailer_for,
    notified,
    open_ledger,
    outbox_rows,
    recipients,
    run_campaign,
)

@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    monkeypatch.setenv("CONSENTRY_SECRET_KEY", SECRET)
    monkeypatch.delenv("CONSENTRY_LEDGER", raising=False)
    monkeypatch.delenv("CONSENTRY_SMTP", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


@pytest.fixture
def led(tmp_path: Path) -> Iterator[Ledger]:
    ledger = open_ledger(tmp_path / "ledger.db")
    yield ledger
    ledger.close()


BAD = {
    "p0001": "not-an-email",
    "p0003": "r8@example.org, evil@attacker.example",  # two addresses: never both in one To
    "p0005": "   ",
}


def export_with(folder: Path, n: int, emails: dict[str, str | None] | None = None) -> list[str]:
    ids = [f"p{i:04d}" for i in range(n)]
    users = [user(u) for u in ids]
    for u in users:
        if emails and u["user_id"] in emails:
            u["email"] = emails[u["user_id"]]
    write_export(folder, users, [item(f"i-{u}", u) for u in ids])
    return ids


def send_again(camp: Campaign, mailer: Mailer):
    return camp.send_mail(mailer, load_policy("recommended"), secret=SECRET, base_url=BASE_URL, rate=0,
                          controller=PIXGRAM)


def planned(led, export: Path) -> Campaign:
    pol = load_policy("recommended")
    camp = Campaign.open(led, CAMPAIGN, pol, T)
    camp.plan(Export(export), pol)
    return camp


def email_states(led) -> Counter:
    return Counter(r["state"] for r in outbox_rows(led).values() if r["channel"] == "email")


def settings(host: str, port: int, **kw) -> SmtpSettings:
    return SmtpSettings(**{"host": host, "port": port, "security": "none", "sender": SENDER, "timeout": 5, **kw})


# -- 1. an address that cannot be used ---------------------------------------------------------


@pytest.mark.parametrize("connections", [1, 3])
def test_an_unusable_address_is_set_aside_and_everyone_else_is_told(tmp_path, led, server, no_backoff,
                                                                    connections) -> None:
    export = tmp_path / "export"
    ids = export_with(export, 10, BAD)
    camp, _, summary = run_campaign(led, export, server, connections=connections)
    good = [u for u in ids if u not in BAD]
    assert (summary.sent, summary.bounced, summary.deferred, summary.bad_address) == (len(good), 0, 0, 3)
    assert summary.stopped is None
    assert recipients(server) == Counter({f"{u}@example.org": 1 for u in good})
    assert all(len(m.rcpt_tos) == 1 for m in server.messages)
    assert "evil@attacker.example" not in b"".join(m.raw for m in server.messages).decode()
    rows = outbox_rows(led)
    for u in BAD:
        row = rows[f"{CAMPAIGN}:{u}:email"]
        assert row["state"] == "bad_address", row
        assert "no mail was sent" in row["last_error"] and "address" in row["last_error"], row["last_error"]
        assert rows[f"{CAMPAIGN}:{u}:in_app"]["state"] == "pending"  # the in-app notice is unaffected
    assert sorted(e.user_id for e in notified(led, "email")) == good
    # a re-run neither retries them nor loses them
    again = send_again(camp, mailer_for(server))
    assert (again.sent, again.bounced, again.bad_address, again.deferred) == (0, 0, 0, 0)
    assert email_states(led) == Counter({"sent": len(good), "bad_address": 3})
    assert len(server.messages) == len(good)


def test_unusable_addresses_left_sending_by_the_old_crash_are_set_aside(tmp_path, led, server, no_backoff) -> None:
    """The trial's ledger: every mail row stuck in `sending` after the traceback."""
    export = tmp_path / "export"
    ids = export_with(export, 6, BAD)
    camp = planned(led, export)
    with led.transaction() as conn:
        conn.execute(update(outbox_table).where(outbox_table.c.channel == "email").values(state="sending"))
    summary = send_again(camp, mailer_for(server))
    assert (summary.sent, summary.bad_address, summary.resent_after_crash) == (3, 3, 6)
    assert email_states(led) == Counter({"sent": 3, "bad_address": 3})
    assert recipients(server) == Counter({f"{u}@example.org": 1 for u in ids if u not in BAD})


def test_notify_with_an_unusable_address_finishes_without_a_traceback(home, tmp_path, server) -> None:
    export = tmp_path / "export"
    export_with(export, 5, {"p0002": "not-an-email"})
    r = cli("notify", "--data", export, "--cutoff", iso(T), "--campaign", "c1", "--rate", "0",
            "--ledger", f"sqlite:///{tmp_path / 'l.db'}",
            "--smtp", f"smtp://{server.host}:{server.port}?sender=p@pixgram.example", *WHO)
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 0, said + repr(r.exception)
    assert "Traceback" not in said and "4 sent" in said
    assert len(server.messages) == 4
    # corrected in the export, the next run says so and mails it
    export_with(export, 5, {"p0002": "p0002-new@example.org"})
    r = cli("notify", "--data", export, "--cutoff", iso(T), "--campaign", "c1", "--rate", "0",
            "--ledger", f"sqlite:///{tmp_path / 'l.db'}",
            "--smtp", f"smtp://{server.host}:{server.port}?sender=p@pixgram.example", *WHO)
    said = " ".join((r.stdout + r.stderr).split())
    assert r.exit_code == 0, said + repr(r.exception)
    assert "1 address corrected in the export since the last run" in said and "1 sent" in said, said
    assert list(server.messages[-1].rcpt_tos) == ["p0002-new@example.org"]


# -- 2. a wrong SMTP setting is the sender's, never the recipients' ---------------------------------


def test_starttls_against_a_server_without_it_bounces_nobody_and_a_fixed_url_sends_everyone(
        tmp_path, led, server, no_backoff) -> None:
    export = tmp_path / "export"
    ids = export_with(export, 6)
    camp = planned(led, export)
    wrong = Mailer(settings(server.host, server.port, security="starttls", username="u", password="p"))
    with pytest.raises(ConsentryError) as caught:
        send_again(camp, wrong)
    said = str(caught.value)
    assert "STARTTLS" in said and "smtp://" in said and "smtps://" in said, said  # the setting and the fix
    assert "pending" in said, said
    assert email_states(led) == Counter({"pending": 6})
    assert notified(led) == [] and server.messages == []
    fixed = send_again(camp, mailer_for(server))
    assert (fixed.sent, fixed.bounced) == (6, 0)
    assert recipients(server) == Counter({f"{u}@example.org": 1 for u in ids})


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # aiosmtpd's, about the test server
def test_a_refused_login_bounces_nobody(tmp_path, led, no_backoff) -> None:
    export = tmp_path / "export"
    export_with(export, 4)
    camp = planned(led, export)
    with SmtpTestServer(auth=("mailer", "right")) as server:
        wrong = Mailer(settings(server.host, server.port, username="mailer", password="wrong-pw"))
        with pytest.raises(ConsentryError) as caught:
            send_again(camp, wrong)
        said = str(caught.value)
        assert "AUTH" in said and "535" in said and "password" in said and "wrong-pw" not in said, said
        assert email_states(led) == Counter({"pending": 4})
        right = send_again(camp, Mailer(settings(server.host, server.port, username="mailer", password="right")))
    assert (right.sent, right.bounced) == (4, 0)


def test_rows_the_old_code_bounced_for_a_setup_failure_are_sent_again(tmp_path, led, server, no_backoff) -> None:
    """The trial's ledger after `smtp+starttls://` against a server without it: every row `bounced`.
    A real bounce (the recipient refused) stays one."""
    export = tmp_path / "export"
    ids = export_with(export, 4)
    camp = planned(led, export)
    setup = f"SMTP {server.host}:{server.port}, STARTTLS: server does not offer STARTTLS; not sending in the clear"
    real = (f"SMTP {server.host}:{server.port}, RCPT TO for <{ids[0]}@example.org>: recipient refused "
            "(server said: 550 5.1.1 User unknown)")
    with led.transaction() as conn:
        conn.execute(update(outbox_table).where(outbox_table.c.channel == "email")
                     .values(state="bounced", last_error=setup))
        conn.execute(update(outbox_table).where(outbox_table.c.dedupe_key == f"{CAMPAIGN}:{ids[0]}:email")
                     .values(last_error=real))
    summary = send_again(camp, mailer_for(server))
    assert (summary.sent, summary.bounced) == (3, 0)
    assert email_states(led) == Counter({"sent": 3, "bounced": 1})
    assert recipients(server) == Counter({f"{u}@example.org": 1 for u in ids[1:]})


# -- 3. a server that is down, or a host that does not resolve ---------------------------------------


@pytest.mark.parametrize("where", ["closed port", "no such host"])
def test_a_server_that_cannot_be_reached_is_refused_before_the_first_mail(tmp_path, led, no_backoff, caplog,
                                                                          where) -> None:
    export = tmp_path / "export"
    export_with(export, 40)
    camp = planned(led, export)
    host, port = ("127.0.0.1", free_port()) if where == "closed port" else ("no-such-host.invalid", 25)
    started = time.monotonic()
    with caplog.at_level(logging.INFO), pytest.raises(ConsentryError) as caught:
        send_again(camp, Mailer(settings(host, port)))
    said = str(caught.value)
    assert time.monotonic() - started < 10
    assert f"{host}:{port}" in said and "cannot reach the server" in said, said
    assert "host and port" in said and "40" in said and "pending" in said, said
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 2, caplog.text
    assert email_states(led) == Counter({"pending": 40})
    assert notified(led) == []


@pytest.mark.parametrize("connections", [1, 3])
def test_a_server_gone_mid_run_stops_the_run_and_leaves_the_rest_pending(tmp_path, led, no_backoff, caplog,
                                                                        connections) -> None:
    export = tmp_path / "export"
    ids = export_with(export, 40)
    camp = planned(led, export)
    first = SmtpTestServer().start()
    try:
        def stop_after_5(done: int) -> None:
            if len(first.messages) >= 5 and first._controller is not None:
                first.stop()

        started = time.monotonic()
        with caplog.at_level(logging.INFO):
            summary = camp.send_mail(mailer_for(first), load_policy("recommended"), secret=SECRET,
                                     base_url=BASE_URL, rate=0, controller=PIXGRAM, connections=connections,
                                     progress=stop_after_5)
        took = time.monotonic() - started
    finally:
        first.stop()
    sent_first = len(first.messages)
    assert took < 15
    assert summary.stopped is not None and "cannot reach the server" in summary.stopped, summary
    assert re.search(r"\d+ connection failures in a row", summary.stopped), summary.stopped
    assert summary.bounced == 0 and summary.sent == sent_first
    assert summary.left_pending == 40 - sent_first and summary.left_pending >= 20
    assert email_states(led) == Counter({"sent": sent_first, "pending": 40 - sent_first})
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) < 40, "not a warning per person"
    # the server is back (elsewhere): a re-run tells the rest, once each
    with SmtpTestServer() as second:
        rest = send_again(camp, mailer_for(second))
        got = recipients(first) + recipients(second)
    assert rest.sent == 40 - sent_first and rest.stopped is None and rest.left_pending == 0
    assert got == Counter({f"{u}@example.org": 1 for u in ids})
    assert Counter(e.user_id for e in notified(led, "email")) == Counter(ids)


# -- an address corrected in the export --------------------------------------------------------


def test_an_address_corrected_in_the_export_is_mailed_on_the_next_run(tmp_path, led, server, no_backoff) -> None:
    """A set-aside row says "Correct it in the platform's data"; the next run must then use the
    corrected address (planning used to keep the old row as it was, so the person was never told).
    An address that bounced for good and was corrected is tried too; a notice already sent is
    never sent again, whatever its address became."""
    export = tmp_path / "export"
    ids = export_with(export, 8, {**BAD, "p0002": "gone@example.org"})
    server.reject("gone@example.org", 550)
    camp, _, first = run_campaign(led, export, server)
    assert (first.sent, first.bounced, first.bad_address) == (4, 1, 3)
    before = len(server.messages)
    fixed = {u: f"fixed-{u}@example.org" for u in (*BAD, "p0002")}
    export_with(export, 8, {**fixed, "p0004": "moved-p0004@example.org"})  # p0004 was told already
    camp2, plan, again = run_campaign(led, export, server)
    assert plan.readdressed == 4 and plan.added == 0
    assert (again.sent, again.bounced, again.bad_address) == (4, 0, 0)
    assert recipients(server) - Counter({f"{u}@example.org": 1 for u in ids if u not in fixed}) == Counter(
        {a: 1 for a in fixed.values()})
    assert len(server.messages) == before + 4
    rows = outbox_rows(led)
    for u, address in fixed.items():
        row = rows[f"{CAMPAIGN}:{u}:email"]
        assert (row["state"], row["address"], row["last_error"]) == ("sent", address, None), row
    assert rows[f"{CAMPAIGN}:p0004:email"]["address"] == "p0004@example.org"  # as it was sent
    assert sorted(e.user_id for e in notified(led, "email")) == ids
    # a third run with nothing changed re-addresses nothing
    _, plan3, third = run_campaign(led, export, server)
    assert (plan3.readdressed, third.sent) == (0, 0)
