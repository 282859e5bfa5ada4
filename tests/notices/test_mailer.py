"""The mailer against a real SMTP server (aiosmtpd on 127.0.0.1, see smtp_server.py)."""

from __future__ import annotations

import pickle
import socket
import time
import traceback
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import pytest
from pydantic import ValidationError

from consentry.notices import (
    Mailer,
    Message,
    PermanentFailure,
    SmtpSettings,
    TemporaryFailure,
    parse_hostport,
)
from consentry.notices import mailer as mailer_module
from smtp_server import HOST, SmtpTestServer, free_port

SENDER = "Privacy team <privacy@example.org>"
USER, PASSWORD = "notices", "s3cret-Pa55 word"
SUBJECT = "Bevestiging: uw bezwaar is ontvangen — ë"


def settings_for(server: SmtpTestServer, **overrides: object) -> SmtpSettings:
    fields: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "security": "tls" if server.implicit_tls else "starttls" if server.starttls else "none",
        "sender": SENDER,
        "timeout": 5,
        "verify_tls": False,
    }
    if server.auth:
        fields["username"], fields["password"] = server.auth
    fields.update(overrides)
    return SmtpSettings(**fields)  # type: ignore[arg-type]


def note(to: str = "zoe@example.net", **kw: object) -> Message:
    fields: dict[str, object] = {"to": to, "subject": SUBJECT, "text": "Beste Zoë,\n\nWe hebben uw bezwaar ontvangen.\n"}
    fields.update(kw)
    return Message(**fields)  # type: ignore[arg-type]


def everything_said(exc: BaseException) -> str:
    """Whatever a log line or traceback could show of an exception, its chain included."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.__context__) + repr(exc.__cause__)


@pytest.fixture
def secure_server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer(starttls=True, auth=(USER, PASSWORD)) as s:
        yield s


# --- sending ------------------------------------------------------------------


def test_plain_send_has_text_and_html_parts_and_utf8_headers(server: SmtpTestServer) -> None:
    message = note(
        to="Zoë Jansen <zoe@example.net>",
        html="<p>Beste Zoë,</p><p>We hebben uw bezwaar ontvangen.</p>",
        headers={"List-Unsubscribe": "<https://example.org/unsubscribe/1>"},
    )
    message_id = Mailer(settings_for(server)).send(message)

    [got] = server.wait_for(1)
    assert got.mail_from == "privacy@example.org"
    assert got.rcpt_tos == ("zoe@example.net",)
    assert not got.tls and got.login is None
    assert got.raw.isascii(), "non-ASCII must be MIME-encoded, not sent as 8-bit"
    mail = got.message
    assert mail["Message-ID"] == message_id and message_id.endswith("@example.org>")
    assert mail["Subject"] == SUBJECT
    assert mail["From"] == SENDER
    assert mail["To"] == "Zoë Jansen <zoe@example.net>"
    assert mail["List-Unsubscribe"] == "<https://example.org/unsubscribe/1>"
    assert abs(parsedate_to_datetime(mail["Date"]).timestamp() - time.time()) < 60
    assert mail.get_content_type() == "multipart/alternative"
    plain, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content_charset() == "utf-8" and html.get_content_charset() == "utf-8"
    assert plain.get_content() == message.text
    assert html.get_content().strip() == message.html


def test_text_only_message_is_not_multipart(server: SmtpTestServer) -> None:
    Mailer(settings_for(server)).send(note(text="Klik op de link: https://example.org/s/abc"))
    [got] = server.wait_for(1)
    assert got.message.get_content_type() == "text/plain"
    assert got.message.get_content().strip() == "Klik op de link: https://example.org/s/abc"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_and_auth(mechanism: str) -> None:
    with SmtpTestServer(starttls=True, auth=(USER, PASSWORD), auth_mechanisms=(mechanism,)) as server:
        Mailer(settings_for(server)).send(note())
        [got] = server.wait_for(1)
    assert got.tls and got.login == USER
    assert got.message["Subject"] == SUBJECT


def test_implicit_tls_and_auth() -> None:
    with SmtpTestServer(implicit_tls=True, auth=(USER, PASSWORD)) as server:
        Mailer(settings_for(server)).send(note())
        [got] = server.wait_for(1)
    assert got.tls and got.login == USER


def test_tls_certificate_is_verified_by_default(secure_server: SmtpTestServer) -> None:
    with pytest.raises(PermanentFailure, match="certificate not trusted") as caught:
        Mailer(settings_for(secure_server, verify_tls=True)).send(note())
    assert caught.value.stage == "STARTTLS"
    assert PASSWORD not in everything_said(caught.value)


def test_implicit_tls_against_a_starttls_port_is_permanent(secure_server: SmtpTestServer) -> None:
    with pytest.raises(PermanentFailure, match="does not speak TLS on this port"):
        Mailer(settings_for(secure_server, security="tls")).send(note())


def test_non_ascii_address_goes_out_with_smtputf8(server: SmtpTestServer) -> None:
    Mailer(settings_for(server)).send(note(to="Zoë <zoë@example.net>"))
    [got] = server.wait_for(1)
    assert got.rcpt_tos == ("zoë@example.net",)
    assert got.message["To"] == "Zoë <zoë@example.net>"


def test_server_that_requires_starttls_refuses_a_clear_text_client(secure_server: SmtpTestServer) -> None:
    settings = settings_for(secure_server, security="none", username=None, password=None)
    with pytest.raises(PermanentFailure) as caught:
        Mailer(settings).send(note())
    assert caught.value.code == 530


# --- failures -----------------------------------------------------------------


def test_wrong_password_is_permanent_and_never_shows_the_password(secure_server: SmtpTestServer) -> None:
    wrong = "not-the-Pa55word"
    settings = settings_for(secure_server, password=wrong)
    assert wrong not in repr(settings) and wrong not in str(settings)
    assert wrong not in repr(Mailer(settings)) and wrong not in settings.model_dump_json()

    with pytest.raises(PermanentFailure) as caught:
        Mailer(settings).send_with_retry(note(), attempts=3, backoff=0)
    exc = caught.value
    assert exc.code == 535 and exc.stage == "AUTH"
    assert "Authentication credentials invalid" in exc.server_text
    assert f"SMTP {HOST}:{secure_server.port}, AUTH" in str(exc)
    assert wrong not in everything_said(exc)
    assert secure_server.connections == 1, "a permanent failure must not be retried"
    assert secure_server.messages == []


def test_non_ascii_password_fails_without_leaking(secure_server: SmtpTestServer) -> None:
    secret = "pässwörd-123"
    with pytest.raises(PermanentFailure, match="non-ASCII") as caught:
        Mailer(settings_for(secure_server, password=secret)).send(note())
    assert secret not in everything_said(caught.value)


def test_unknown_recipient_is_permanent_and_the_session_goes_on(server: SmtpTestServer) -> None:
    server.reject("gone@example.net", 550)
    with Mailer(settings_for(server)).session() as session:
        with pytest.raises(PermanentFailure) as caught:
            session.send(note(to="gone@example.net"))
        session.send(note(to="here@example.net"))
        assert session.connections == 1
    exc = caught.value
    assert exc.code == 550 and exc.stage == "RCPT TO" and exc.recipient == "gone@example.net"
    assert "User unknown" in exc.server_text and "<gone@example.net>" in str(exc)
    assert [m.rcpt_tos for m in server.wait_for(1)] == [("here@example.net",)]


def test_send_with_retry_gets_through_a_451_twice(server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    monkeypatch.setattr(mailer_module, "_sleep", delays.append)
    server.reject("busy@example.net", 451, times=2)

    message_id = Mailer(settings_for(server)).send_with_retry(note(to="busy@example.net"), attempts=3, backoff=0.5)

    assert delays == [0.5, 1.0], "two failures, exponential backoff"
    [got] = server.wait_for(1)
    assert got.message["Message-ID"] == message_id


@pytest.mark.usefixtures("no_backoff")
def test_send_with_retry_gives_up_after_the_last_attempt(server: SmtpTestServer) -> None:
    server.reject("busy@example.net", 451)
    with pytest.raises(TemporaryFailure) as caught:
        Mailer(settings_for(server)).send_with_retry(note(to="busy@example.net"), attempts=3)
    assert caught.value.code == 451
    assert "gave up after 3 attempts" in caught.value.__notes__
    assert server.messages == []


def test_connection_refused_is_temporary() -> None:
    settings = SmtpSettings(host=HOST, port=free_port(), security="none", sender=SENDER, timeout=2)
    with pytest.raises(TemporaryFailure, match="cannot reach the server") as caught:
        Mailer(settings).send(note())
    assert caught.value.code is None and caught.value.stage == "connect"


@pytest.mark.slow
def test_silent_server_times_out_as_temporary() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never says hello
        listener.bind((HOST, 0))
        listener.listen()
        settings = SmtpSettings(host=HOST, port=listener.getsockname()[1], security="none", sender=SENDER, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(TemporaryFailure, match="no answer within 0.3 s"):
            Mailer(settings).send(note())
    assert time.monotonic() - started < 2


def test_errors_survive_pickling() -> None:
    exc = PermanentFailure("recipient refused", server="h:25", stage="RCPT TO", code=550, server_text="no", recipient="a@b.org")
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is PermanentFailure and str(copy) == str(exc) and copy.code == 550


# --- sessions -----------------------------------------------------------------


@pytest.mark.slow
def test_session_sends_50_mails_over_one_connection(secure_server: SmtpTestServer) -> None:
    with Mailer(settings_for(secure_server)).session() as session:
        ids = [session.send(note(to=f"person{i}@example.net")) for i in range(50)]
        assert session.connections == 1
    got = secure_server.wait_for(50)
    assert secure_server.connections == 1
    assert len({m.peer for m in got}) == 1
    assert len(set(ids)) == 50 and [m.message["Message-ID"] for m in got] == ids
    assert [m.rcpt_tos[0] for m in got] == [f"person{i}@example.net" for i in range(50)]


@pytest.mark.slow
def test_session_reconnects_when_the_server_dropped_it(secure_server: SmtpTestServer) -> None:
    with Mailer(settings_for(secure_server)).session() as session:
        session.send(note(to="first@example.net"))
        secure_server.disconnect_clients()
        session.send(note(to="second@example.net"))
        assert session.connections == 2
    assert [m.rcpt_tos[0] for m in secure_server.wait_for(2)] == ["first@example.net", "second@example.net"]


# --- settings and messages ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://localhost:2525?sender=privacy@example.org",
            {"host": "localhost", "port": 2525, "security": "none", "username": None},
        ),
        (
            "smtp+starttls://notices:p%40ss%3Aword@mail.example.org?sender=Privacy%20team%20%3Cprivacy+n@example.org%3E",
            {"port": 587, "security": "starttls", "username": "notices", "password": "p@ss:word",
             "sender": "Privacy team <privacy+n@example.org>"},
        ),
        (
            "smtps://u:pw@[::1]?sender=privacy@example.org&timeout=2.5&verify_tls=false",
            {"host": "::1", "port": 465, "security": "tls", "timeout": 2.5, "verify_tls": False},
        ),
        ("SMTP://mail.example.org:25/?sender=a@example.org", {"port": 25, "security": "none"}),
    ],
)
def test_from_url(url: str, expected: dict[str, object]) -> None:
    settings = SmtpSettings.from_url(url)
    for name, value in expected.items():
        actual = getattr(settings, name)
        if name == "password":
            actual = actual.get_secret_value()
        assert actual == value, name


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://host?sender=a@example.org", "unknown scheme http://"),
        ("mail.example.org:25", r"unknown scheme \(no scheme\)"),
        ("smtp://u:p@host:abc?sender=a@example.org", r"u:\*\*\*@host:abc: .* port 'abc' is not a number"),
        ("smtp://u:p@host:70000?sender=a@example.org", "port '70000' is not a number from 1 to 65535"),
        ("smtp://host:abc?sender=a@example.org", r"smtp://host:\.\.\.: bad host or port"),
        ("smtp://?sender=a@example.org", "missing host"),
        ("smtp://host", r"missing \?sender="),
        ("smtp://host?sendr=a@example.org", "unknown parameter 'sendr'"),
        ("smtp://host?sender=a@example.org&sender=b@example.org", "given twice"),
        ("smtp://host?sender=not-an-address", "sender: 'not-an-address' is not one e-mail address"),
        ("smtp://host?sender=a@example.org&timeout=-1", "timeout: Input should be greater than 0"),
        ("smtp://[::1?sender=a@example.org", "Invalid IPv6 URL"),
        ("smtp://host?sender=a@example.org&verify_tls=maybe", "verify_tls='maybe'"),
        ("smtp://user@host?sender=a@example.org", "user name without password"),
        ("smtp://host/inbox?sender=a@example.org", "unexpected path"),
    ],
)
def test_from_url_errors_say_what_and_where(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as caught:
        SmtpSettings.from_url(url)
    assert "SMTP URL" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "smtps://user:hunter2@host:abc?sender=a@example.org",
        "smtps://user:hunter2@host?sender=a@example.org&bogus=1",
        "smtps://user:hunter2@host?sender=bad",
        "smtps://user:hun/ter2@host?sender=a@example.org",  # '/' unescaped: ends the authority early
        "smtps://user:hun?ter2@host?sender=a@example.org",
        "smtps://user:hun#ter2@host?sender=a@example.org",
        "smtps://user:hunter2?sender=a@example.org",  # forgot '@host'
    ],
)
def test_from_url_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        SmtpSettings.from_url(url)
    message = str(caught.value)
    for piece in ("hunter2", "hun", "ter2"):
        assert piece not in message, message


def test_settings_validation_errors_hide_the_password() -> None:
    with pytest.raises(ValidationError) as caught:
        SmtpSettings(host="h", sender="privacy@example.org", password="hunter2")  # no username
    assert "hunter2" not in str(caught.value) and "username and password" in str(caught.value)


def test_settings_defaults() -> None:
    settings = SmtpSettings(host="mail.example.org", sender=SENDER)
    assert (settings.security, settings.port, settings.verify_tls) == ("starttls", 587, True)
    assert settings.sender_address == "privacy@example.org"
    assert SmtpSettings(host="h", sender=SENDER, security="tls").port == 465


@pytest.mark.parametrize(
    ("text", "expected"),
    [("mail.example.org:587", ("mail.example.org", 587)), ("[::1]:25", ("::1", 25)), ("127.0.0.1:2525", ("127.0.0.1", 2525))],
)
def test_parse_hostport(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "expected 'host:port'"),
        ("mail.example.org", "missing port"),
        ("mail.example.org:", "missing port"),
        (":25", "missing or invalid host"),
        ("host:0", "port '0' is not a number from 1 to 65535"),
        ("host:25x", "port '25x'"),
        ("::1:25", "brackets"),
        ("[::1", "IPv6"),
    ],
)
def test_parse_hostport_errors_name_the_input(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as caught:
        parse_hostport(text)
    assert repr(text) in str(caught.value)


def test_parse_hostport_default_port() -> None:
    assert parse_hostport("mail.example.org", default_port=25) == ("mail.example.org", 25)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"to": "not an address"}, "Message.to"),
        ({"to": "a@example.org, b@example.org"}, "not one e-mail address"),
        ({"subject": "hi\r\nBcc: x@example.org"}, "Message.subject"),
        ({"headers": {"Bcc": "x@example.org"}}, "set by the mailer"),
        ({"headers": {"X-Tag": "a\nb"}}, r"Message.headers\['X-Tag'\]"),
        ({"headers": {"Bad Name": "x"}}, "not a valid header name"),
        ({"message_id": "no-brackets@example.org"}, "message_id"),
    ],
)
def test_message_refuses_header_injection_and_bad_addresses(fields: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        note(**fields)


def test_given_message_id_is_kept(server: SmtpTestServer) -> None:
    message_id = Mailer(settings_for(server)).send(note(message_id="<objection-42@example.org>"))
    assert message_id == "<objection-42@example.org>"
    assert server.wait_for(1)[0].message["Message-ID"] == message_id


def test_a_line_that_starts_with_a_dot_arrives_whole_with_or_without_the_dot_hook(server: SmtpTestServer) -> None:
    """DATA dot-stuffs only when a line starts with a dot (a base64 body has none); either way the bytes arrive as sent."""
    raw = b"Subject: dots\r\n\r\n.first line\r\nmiddle\r\n.\r\n..two\r\nlast\r\n"
    plain = b"Subject: plain\r\n\r\nno dot at a line start\r\n"
    with Mailer(settings_for(server)).session() as session:
        session.send_raw(note(to="dot@example.net"), raw, hand_over_dot=lambda dot: dot())
        session.send_raw(note(to="plain@example.net"), plain, before_final_dot=lambda: None)
        session.send_bytes("o'neil+tag@example.net", plain)
    got = server.wait_for(3)
    assert [m.raw for m in got] == [raw, plain, plain]
    assert [m.rcpt_tos for m in got] == [("dot@example.net",), ("plain@example.net",), ("o'neil+tag@example.net",)]
