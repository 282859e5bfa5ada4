"""Hand mail over to an SMTP server: settings, one session for many mails, the
start-up check, and the SMTP transport of the outbox.

Why stdlib smtplib and one small class: the platform's own relay does the hard
parts (queueing, DKIM, bounces); we only hand a message over and need to know
one thing when that fails: try again later (TemporaryFailure) or stop and tell
someone (PermanentFailure). A notice campaign sends 100k mails, so
`Mailer.session()` keeps one connection open and reconnects when the server
drops an idle one.

The SMTP password is a pydantic SecretStr: it is read once, at AUTH, and
scrubbed (also base64-encoded, as AUTH sends it) from any server text we put
into an exception.

`consentry.notices.mailer` is this module (an alias kept for older imports).
"""

from __future__ import annotations

import base64
import functools
import logging
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import EmailMessage
from typing import Any, Literal, cast
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from ..words import count
from .errors import MailError, PermanentFailure, TemporaryFailure
from .message import _PLAIN, _POLICY, Message, parse_mailbox, render, with_message_id

__all__ = [
    "MailError", "MailSession", "Mailer", "Message", "PermanentFailure", "SmtpSettings", "SmtpTransport",
    "TemporaryFailure", "check_smtp", "explain_validation", "how_to_fix", "is_setup_failure", "parse_hostport",
    "parse_mailbox",
]

log = logging.getLogger(__name__)
_sleep = time.sleep  # tests replace this, not the global time.sleep

Security = Literal["none", "starttls", "tls"]

DEFAULT_PORTS: dict[str, int] = {"none": 25, "starttls": 587, "tls": 465}
URL_SCHEMES: dict[str, Security] = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "tls"}
_URL_PARAMS = ("sender", "timeout", "verify_tls")

# Headers the mailer writes itself: letting callers set them would make the

def parse_hostport(value: str, default_port: int | None = None) -> tuple[str, int]:
    """'host:port' (or '[v6]:port') to (host, port); `default_port` fills a missing port."""
    text = value.strip() if isinstance(value, str) else ""
    bad = f"bad SMTP server address {value!r}"
    if not text:
        raise ValueError(f"{bad}: expected 'host:port'")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{bad}: an IPv6 address must look like '[::1]:25'")
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:
        raise ValueError(f"{bad}: put an IPv6 address in brackets, e.g. '[::1]:25'")
    else:
        host, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
    if not host or any(c.isspace() or c in "/@?#[]" for c in host):
        raise ValueError(f"{bad}: missing or invalid host name")
    if port_text is None or port_text == "":
        if default_port is None:
            raise ValueError(f"{bad}: missing port, expected 'host:port'")
        return host, default_port
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{bad}: port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)



# --- settings -----------------------------------------------------------------


class SmtpSettings(BaseModel):
    """Where and how to hand mail over. Its repr and its validation errors never show the password."""

    # hide_input_in_errors: pydantic would otherwise echo the whole input,
    # password included, in a ValidationError.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    host: str = Field(min_length=1)
    port: int = Field(default=0, ge=1, le=65535, description="0 or absent: 25, 587 or 465 by security")
    security: Security = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(description="From header and envelope sender, e.g. 'Privacy team <privacy@example.org>'")
    timeout: float = Field(default=30.0, gt=0, description="seconds for connect and each reply")
    verify_tls: bool = True

    @model_validator(mode="before")
    @classmethod
    def _default_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("port") in (None, 0):
            data = {**data, "port": DEFAULT_PORTS.get(data.get("security", "starttls"), 25)}
        return data

    @field_validator("host")
    @classmethod
    def _check_host(cls, host: str) -> str:
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not bare or any(c.isspace() or c in "/@?#[]" for c in bare):
            raise ValueError(f"host {host!r} is not a host name or IP address")
        return bare

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, sender: str) -> str:
        try:
            parse_mailbox(sender, what="sender")
        except ValueError as exc:  # pydantic already says "sender"
            raise ValueError(str(exc).removeprefix("sender: ")) from None
        return sender

    @model_validator(mode="after")
    def _check_credentials(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be given together (or neither)")
        return self

    @property
    def sender_address(self) -> str:
        """The bare address for MAIL FROM, where bounces go."""
        return parse_mailbox(self.sender, what="sender").addr_spec

    @property
    def server(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """Settings from `smtp[+starttls]|smtps://user:pass@host[:port]?sender=...[&timeout=s][&verify_tls=false]`.

        smtp:// sends in the clear (a local relay), smtp+starttls:// upgrades
        with STARTTLS, smtps:// is TLS from the first byte. Percent-encode
        reserved characters in the user name, password and sender ('%20' for a
        space; '+' stays a plus, as in 'privacy+notices@example.org').
        """
        scheme, sep, _ = url.partition("://") if isinstance(url, str) else ("", "", "")
        if not sep or scheme.lower() not in URL_SCHEMES:
            shown = f"{scheme}://" if sep else "(no scheme)"
            raise ValueError(
                f"SMTP URL: unknown scheme {shown}; use smtp://, smtp+starttls:// or smtps://"
            )
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # e.g. "Invalid IPv6 URL"; its text shows no part of the URL
            raise ValueError(f"SMTP URL {scheme}://...: {exc}") from None
        userinfo, at, hostport = parts.netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        shown = f"{scheme}://{unquote(user) + (':***' if colon else '') + '@' if at else ''}{hostport}"
        where = f"SMTP URL {shown}"
        if "@" in parts.path or "@" in parts.fragment or any("@" in p.partition("=")[0] for p in parts.query.split("&")):
            # A '/', '?' or '#' inside the password ends the authority early;
            # say so without echoing any piece of what may be the password.
            raise ValueError(
                f"SMTP URL {scheme}://...: cannot tell the user name and password from the rest; "
                "percent-encode '/', '?', '#' and '@' in them"
            )
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"{where}: unexpected path or fragment; only '?sender=...' may follow the host")
        if not hostport:
            raise ValueError(f"{where}: missing host, e.g. {scheme}://mail.example.org?sender=...")
        try:
            security = URL_SCHEMES[scheme.lower()]
            host, port = parse_hostport(hostport, DEFAULT_PORTS[security])
        except ValueError as exc:
            if not at:  # in 'smtps://user:secret' (no '@host') the "port" is a password: don't show it
                head = hostport.partition(":")[0] if not hostport.startswith("[") else "[...]"
                raise ValueError(
                    f"SMTP URL {scheme}://{head}:...: bad host or port; expected host[:port] with a port "
                    "from 1 to 65535, or user:password@host[:port]"
                ) from None
            raise ValueError(f"{where}: {exc}") from None
        params: dict[str, str] = {}
        for pair in filter(None, parts.query.split("&")):
            key, _, value = pair.partition("=")
            key = unquote(key)
            if key not in _URL_PARAMS:
                raise ValueError(f"{where}: unknown parameter {key!r}; known: {', '.join(_URL_PARAMS)}")
            if key in params:
                raise ValueError(f"{where}: parameter {key!r} given twice")
            params[key] = unquote(value)
        if "sender" not in params:
            raise ValueError(f"{where}: missing ?sender=..., e.g. ?sender=privacy@example.org")
        data: dict[str, Any] = {"host": host, "port": port, "security": security, "sender": params["sender"]}
        if at:
            if not colon:
                raise ValueError(f"{where}: user name without password; write user:password@host")
            data["username"], data["password"] = unquote(user), unquote(password)
        if "timeout" in params:
            data["timeout"] = params["timeout"]
        if "verify_tls" in params:
            flag = params["verify_tls"].lower()
            if flag not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{where}: verify_tls={params['verify_tls']!r}, expected true or false")
            data["verify_tls"] = flag in ("true", "1", "yes")
        try:
            return cls(**data)
        except ValidationError as exc:
            raise ValueError(f"{where}: {explain_validation(exc)}") from None


def explain_validation(exc: ValidationError) -> str:
    """pydantic's errors on one line, without inputs (one could be the password) or doc links."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts)



# --- failures that are the sender's ---------------------------------------------


def is_setup_failure(exc: BaseException) -> bool:
    """Did handing mail over fail before any recipient came into it: connecting,
    EHLO, TLS, the login, or the sender refused at MAIL FROM? Such a failure is
    the sender's setup or the server's (down, unreachable), never a
    recipient's: a campaign must not record it as their bounce. It is still a
    PermanentFailure (a setting to fix) or a TemporaryFailure (try later)."""
    return isinstance(exc, MailError) and exc.setup


def how_to_fix(exc: MailError) -> str:
    """What to change after a setup failure (`is_setup_failure`), in the terms of the SMTP URL
    (`smtp[+starttls]|smtps://user:password@host:port?sender=...`)."""
    problem, code = exc.problem, exc.code
    if exc.stage == "STARTTLS" and "does not offer STARTTLS" in problem:
        return ("this server does not offer STARTTLS, which smtp+starttls:// asks for: use smtps:// if it speaks "
                "TLS from the first byte (usually port 465), or smtp:// only for a relay on this machine or a "
                "network you trust (mail and password then go in the clear)")
    if "certificate not trusted" in problem:
        return "fix the server's TLS certificate; for a test server only, add &verify_tls=false to the URL"
    if "does not speak TLS on this port" in problem:
        return "use smtp+starttls:// for a port that starts in plain text (587, 25), or the server's TLS port"
    if exc.stage == "AUTH":
        if code == 535 or "refused" in problem:
            return "check the user name and password in the URL (smtp+starttls://USER:PASSWORD@host:port?...)"
        return ("check that the server offers a login (many offer it only over TLS: smtp+starttls:// or smtps://) "
                "and the user name and password in the URL")
    if exc.stage == "MAIL FROM":
        if code == 530:
            return "the server wants a login first: put USER:PASSWORD@ before the host in the URL (over TLS)"
        if isinstance(exc, PermanentFailure):
            return "the server refuses this sender: set ?sender= to an address this server lets you send as"
        return "the server does not take mail right now: run the campaign again later"
    if "no answer within" in problem:
        return ("check the host and port in the URL (a firewall may swallow the connection), or allow more time "
                "with &timeout=SECONDS")
    if isinstance(exc, TemporaryFailure):
        return "check the host and port in the URL, and that the mail server is running and reachable from here"
    return "check the SMTP URL: the scheme (smtp://, smtp+starttls://, smtps://), host, port, user name and password"


# --- sending ------------------------------------------------------------------


@functools.cache
def _helo_name() -> str:
    # smtplib resolves the local FQDN for every connection; that DNS lookup
    # can take seconds, and a campaign reconnects often.
    return smtplib.SMTP().local_hostname


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _retry(send: Callable[[], str], attempts: int, backoff: float) -> str:
    if attempts < 1 or backoff < 0:
        raise ValueError(f"send_with_retry: need attempts >= 1 and backoff >= 0, got {attempts} and {backoff}")
    for attempt in range(1, attempts + 1):
        try:
            return send()
        except TemporaryFailure as exc:
            if attempt == attempts:
                exc.add_note(f"gave up after {attempts} attempts")
                raise
            delay = backoff * 2 ** (attempt - 1)
            log.warning("attempt %d of %d failed, retrying in %.2f s: %s", attempt, attempts, delay, exc)
            _sleep(delay)
    raise AssertionError("unreachable")


class Mailer:
    """Sends `Message`s with one `SmtpSettings`. Stateless, so safe to share between threads."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return f"Mailer({self.settings!r})"

    def build(self, message: Message) -> EmailMessage:
        """The MIME message as it will be sent, parsed back (for looking at it;
        sending uses the bytes from `consentry.mail.message.render`)."""
        raw = render(message, sender=self.settings.sender)
        return cast(EmailMessage, message_from_bytes(raw, policy=_POLICY))

    def send(self, message: Message) -> str:
        """Send over a fresh connection; returns the Message-ID header ('<...@...>')."""
        with self.session() as session:
            return session.send(message)

    def send_with_retry(self, message: Message, attempts: int = 3, backoff: float = 0.5) -> str:
        """Like `send`, retrying TemporaryFailure after backoff, 2*backoff, ... seconds."""
        with self.session() as session:
            return session.send_with_retry(message, attempts=attempts, backoff=backoff)

    @contextmanager
    def session(self) -> Iterator[MailSession]:
        """One SMTP connection for many sends (opened lazily, reopened if dropped)."""
        session = MailSession(self)
        try:
            yield session
        finally:
            session.close()


class MailSession:
    """An open connection from `Mailer.session()`. Not thread-safe: one per worker."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self.connections = 0  # connections opened so far, for metrics and tests
        self._conn: smtplib.SMTP | None = None
        self._used = False  # has the open connection carried a transaction?

    def __repr__(self) -> str:
        state = "open" if self._conn else "closed"
        return f"<MailSession {self.mailer.settings.server} {state}, {count(self.connections, 'connection', 'connections')}>"

    def send(self, message: Message, *, before_final_dot: Callable[[], None] | None = None) -> str:
        """Send one message; returns its Message-ID. `before_final_dot` runs once the
        whole message is with the server but before it is final (see campaigns)."""
        message = with_message_id(message, self.mailer.settings.sender)
        self._deliver(message.to, render(message, sender=self.mailer.settings.sender), before_final_dot)
        return cast(str, message.message_id)

    def send_raw(
        self,
        message: Message,
        raw: bytes,
        attempts: int = 3,
        backoff: float = 0.5,
        *,
        before_final_dot: Callable[[], None] | None = None,
        hand_over_dot: Callable[[Callable[[], None]], None] | None = None,
    ) -> str:
        """Send bytes built by the caller (a campaign builds thousands from one
        template); `message` gives the recipient and the Message-ID."""

        def attempt() -> str:
            self._deliver(message.to, raw, before_final_dot, hand_over_dot)
            return message.message_id or ""

        return _retry(attempt, attempts, backoff)

    def send_bytes(self, recipient: str, raw: bytes) -> None:
        """Hand over bytes from `render()` to one recipient, once (the outbox retries)."""
        self._deliver(recipient, raw)

    def check(self) -> None:
        """Connect, TLS and log in as a send would, then QUIT without sending."""
        self._connection()
        self.close()

    def send_with_retry(
        self,
        message: Message,
        attempts: int = 3,
        backoff: float = 0.5,
        *,
        before_final_dot: Callable[[], None] | None = None,
    ) -> str:
        """Send, retrying TemporaryFailure; every attempt carries the same Message-ID."""
        message = with_message_id(message, self.mailer.settings.sender)
        raw = render(message, sender=self.mailer.settings.sender)

        def attempt() -> str:
            self._deliver(message.to, raw, before_final_dot)
            return cast(str, message.message_id)

        return _retry(attempt, attempts, backoff)

    def abort(self) -> None:
        """Drop the connection without QUIT: in the middle of DATA the server
        must see a dead client and discard the unfinished mail."""
        self._drop()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            conn.close()

    # -- internals --

    def _fail(
        self,
        cls: type[MailError] | None,
        problem: str,
        stage: str,
        *,
        code: int | None = None,
        text: bytes | str = "",
        recipient: str | None = None,
        setup: bool = False,
    ) -> MailError:
        """The error to raise. Without a recipient (connect, TLS, login), or
        with `setup` (the sender refused at MAIL FROM), it is marked as a setup
        failure (`is_setup_failure`): the sender's or the server's, never the recipient's."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        text = " ".join(self._scrub(text).split())
        if cls is None:
            cls = PermanentFailure if code is not None and 500 <= code <= 599 else TemporaryFailure
        return cls(problem, server=self.mailer.settings.server, stage=stage, code=code, server_text=text,
                   recipient=recipient, setup=setup or recipient is None)

    def _scrub(self, text: str) -> str:
        """Remove the password, as typed and as AUTH PLAIN/LOGIN encode it, from server text."""
        settings = self.mailer.settings
        if settings.password is None:
            return text
        secret = settings.password.get_secret_value()
        if not secret:
            return text
        forms = {secret}
        for raw in (secret, f"\0{settings.username}\0{secret}"):
            try:
                forms.add(base64.b64encode(raw.encode()).decode("ascii"))
            except UnicodeEncodeError:  # pragma: no cover - str.encode() is utf-8
                pass
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self) -> smtplib.SMTP:
        if self._conn is None:
            self._conn = self._open()
            self._used = False
            self.connections += 1
        return self._conn

    def _open(self) -> smtplib.SMTP:
        settings = self.mailer.settings
        stage = "connect"
        conn: smtplib.SMTP | None = None
        try:
            if settings.security == "tls":
                stage = "connect (TLS)"
                conn = smtplib.SMTP_SSL(
                    settings.host, settings.port, local_hostname=_helo_name(),
                    timeout=settings.timeout, context=_tls_context(settings),
                )
            else:
                conn = smtplib.SMTP(settings.host, settings.port, local_hostname=_helo_name(), timeout=settings.timeout)
            # Small writes (commands, the final dot) must not wait for the
            # previous segment's ACK: Nagle plus delayed ACK costs ~40 ms each.
            if conn.sock is not None:
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stage = "EHLO"
            conn.ehlo_or_helo_if_needed()
            if settings.security == "starttls":
                stage = "STARTTLS"
                code, reply = conn.starttls(context=_tls_context(settings))
                if code != 220:
                    raise self._fail(None, "server refused to start TLS", stage, code=code, text=reply)
                stage = "EHLO"
                conn.ehlo()
            if settings.username is not None and settings.password is not None:
                stage = "AUTH"
                self._login(conn, settings.username, settings.password)
            return conn
        except MailError:
            if conn is not None:
                conn.close()
            raise
        except Exception as exc:
            if conn is not None:
                conn.close()
            raise self._setup_error(exc, stage) from exc

    def _login(self, conn: smtplib.SMTP, username: str, password: SecretStr) -> None:
        failure: MailError | None = None
        try:
            conn.login(username, password.get_secret_value())
        except smtplib.SMTPAuthenticationError as exc:
            failure = self._fail(
                None, f"login as {username!r} refused; check the user name and password",
                "AUTH", code=exc.smtp_code, text=exc.smtp_error,
            )
        except UnicodeEncodeError:  # smtplib sends AUTH as ASCII
            failure = self._fail(
                PermanentFailure, "user name or password has non-ASCII characters, which smtplib cannot send",
                "AUTH",
            )
        except Exception as exc:
            failure = self._setup_error(exc, "AUTH")
        finally:
            conn.password = ""  # smtplib keeps it on the connection object
        if failure is not None:
            # Raised outside the except blocks: smtplib's exception (and the
            # frames of its login(), whose locals hold the password) must not
            # ride along as __context__ into logs or error trackers.
            raise failure

    def _setup_error(self, exc: Exception, stage: str) -> MailError:
        if isinstance(exc, smtplib.SMTPResponseException):
            return self._fail(None, "server refused", stage, code=exc.smtp_code, text=exc.smtp_error)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            what = str(exc)
            if stage == "STARTTLS":
                what = "server does not offer STARTTLS; not sending in the clear"
            elif stage == "AUTH" and self.mailer.settings.security == "none":
                what += " (many servers offer AUTH only over TLS: try security='starttls' or 'tls')"
            return self._fail(PermanentFailure, what, stage)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            if isinstance(exc.__context__, TimeoutError):  # smtplib turns a read timeout into this
                return self._fail(TemporaryFailure, f"no answer within {self.mailer.settings.timeout:g} s", stage)
            return self._fail(TemporaryFailure, f"server closed the connection ({exc})", stage)
        if isinstance(exc, smtplib.SMTPException):  # e.g. "No suitable authentication method found."
            return self._fail(PermanentFailure, str(exc), stage)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return self._fail(
                PermanentFailure, f"TLS certificate not trusted ({exc.verify_message}); fix the certificate "
                "or, for a test server only, set verify_tls=False", stage,
            )
        if isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER":
            return self._fail(
                PermanentFailure, "the server does not speak TLS on this port; use security='starttls' "
                "for a port that starts in plain text (587, 25)", stage,
            )
        if isinstance(exc, ssl.SSLError):
            return self._fail(TemporaryFailure, f"TLS failed: {exc}", stage)
        if isinstance(exc, TimeoutError):
            return self._fail(TemporaryFailure, f"no answer within {self.mailer.settings.timeout:g} s", stage)
        if isinstance(exc, OSError):
            return self._fail(TemporaryFailure, f"cannot reach the server: {exc}", stage)
        return self._fail(PermanentFailure, f"unexpected {type(exc).__name__}: {exc}", stage)

    @staticmethod
    def _data(conn: smtplib.SMTP, payload: bytes, before_final_dot: Callable[[], None] | None,
              hand_over_dot: Callable[[Callable[[], None]], None] | None = None) -> tuple[int, bytes]:
        """smtplib's DATA, with a hook just before the final dot: the last moment
        at which the server would still discard the mail if this process died.
        `hand_over_dot` instead receives the function that sends the dot and
        must call it (or raise): a group commit sends the dots of all its
        mails itself, right after its commit."""
        if before_final_dot is None and hand_over_dot is None:
            return conn.data(payload)
        conn.putcmd("data")
        code, reply = conn.getreply()
        if code != 354:
            return code, reply
        # The same quoting smtplib.data() applies, skipped when no line starts with a dot (base64 bodies).
        body = smtplib._quote_periods(payload) if payload.startswith(b".") or b"\n." in payload else payload
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        conn.send(body)
        if hand_over_dot is not None:
            hand_over_dot(lambda: conn.send(b".\r\n"))
        else:
            before_final_dot()
            conn.send(b".\r\n")
        return conn.getreply()

    def _deliver(
        self,
        to: str,
        raw: bytes,
        before_final_dot: Callable[[], None] | None = None,
        hand_over_dot: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        sender = self.mailer.settings.sender_address
        recipient = parse_mailbox(to, what="Message.to").addr_spec
        international = not (sender + recipient).isascii()

        conn = self._start_transaction(sender, recipient, international)
        stage = "RCPT TO"
        try:
            code, reply = self._rcpt(conn, recipient)
            if code not in (250, 251):
                self._reset()
                raise self._fail(None, "recipient refused", stage, code=code, text=reply, recipient=recipient)
            stage = "DATA"
            code, reply = self._data(conn, raw, before_final_dot, hand_over_dot)
            if code != 250:
                self._reset()
                raise self._fail(None, "message refused", stage, code=code, text=reply, recipient=recipient)
        except MailError:
            raise
        except smtplib.SMTPResponseException as exc:
            self._reset()
            raise self._fail(None, "server refused", stage, code=exc.smtp_code, text=exc.smtp_error, recipient=recipient) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            maybe = " (the server may have accepted it: a retry can deliver it twice)" if stage == "DATA" else ""
            raise self._fail(TemporaryFailure, f"connection lost: {exc}{maybe}", stage, recipient=recipient) from exc
        log.debug("sent a mail via %s", self.mailer.settings.server)

    @staticmethod
    def _rcpt(conn: smtplib.SMTP, recipient: str) -> tuple[int, bytes]:
        """RCPT TO. A bare address (as `parse_mailbox` gives it) needs no quoting:
        smtplib's own `rcpt` parses it again with email.utils, 0.2 ms a mail."""
        if _PLAIN.fullmatch(recipient):
            conn.putcmd("rcpt", f"TO:<{recipient}>")
            return conn.getreply()
        return conn.rcpt(recipient)

    def _start_transaction(self, sender: str, recipient: str, international: bool) -> smtplib.SMTP:
        """MAIL FROM, reconnecting once if a reused connection turns out to be dead."""
        while True:
            reused = self._conn is not None and self._used
            conn = self._connection()
            options: tuple[str, ...] = ()
            if international:
                if not conn.has_extn("smtputf8"):
                    raise self._fail(
                        PermanentFailure, "non-ASCII address, but the server does not offer SMTPUTF8",
                        "MAIL FROM", recipient=recipient,
                    )
                options = ("SMTPUTF8", "BODY=8BITMIME")
            try:
                code, reply = conn.mail(sender, options)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._drop()
                if reused:
                    log.info("SMTP connection to %s was dropped; reconnecting", self.mailer.settings.server)
                    continue
                raise self._fail(TemporaryFailure, f"connection lost: {exc}", "MAIL FROM", recipient=recipient,
                                 setup=True) from exc
            self._used = True
            if code == 421 and reused:  # "closing connection", e.g. too many mails on one
                self._drop()
                continue
            if code != 250:
                self._reset()
                raise self._fail(None, "sender refused", "MAIL FROM", code=code, text=reply, recipient=recipient,
                                 setup=True)
            return conn

    def _reset(self) -> None:
        """RSET after a refused step so the connection can carry the next mail; drop it if that fails."""
        if self._conn is None:
            return
        try:
            code, _ = self._conn.rset()
            if code != 250:
                self._drop()
        except (smtplib.SMTPException, OSError):
            self._drop()


def check_smtp(settings: SmtpSettings) -> None:
    """What `consentry serve` runs before it starts: connect, STARTTLS or TLS,
    AUTH, QUIT; no mail is sent. Raises MailError naming the server and the
    stage that failed (never the password)."""
    with Mailer(settings).session() as session:
        session.check()


class SmtpTransport:
    """The outbox's way out over SMTP: one connection kept for a batch of mails
    (reopened when the server dropped it), closed by `close()`. One per sender
    thread: not thread-safe."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.sender = settings.sender
        self._mailer = Mailer(settings)
        self._session: MailSession | None = None

    def __repr__(self) -> str:
        return f"SmtpTransport({self.settings.server})"

    def deliver(self, recipient: str, raw: bytes) -> None:
        if self._session is None:
            self._session = MailSession(self._mailer)
        self._session.send_bytes(recipient, raw)

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def check(self) -> None:
        check_smtp(self.settings)
