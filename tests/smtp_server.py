"""A real SMTP server for tests: aiosmtpd in a thread on 127.0.0.1, a free port.

Why a real server rather than a mock of smtplib: the failures that matter
(TLS handshakes, AUTH, 5xx vs 4xx, dropped connections) live in the protocol.
No pytest here, so scripts and other test suites can use it too:

    with SmtpTestServer(starttls=True, auth=("mailer", "s3cret")) as server:
        ...  # send to server.host:server.port
        [received] = server.wait_for(1)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"

_REPLIES = {
    550: "550 5.1.1 <{address}>: Recipient address rejected: User unknown",
    451: "451 4.3.0 <{address}>: Temporary lookup failure, try again later",
}
#: Answers to the final dot, where content filters refuse a mail they have read.
_DATA_REPLIES = {554: "554 5.7.1 Message content rejected", 451: "451 4.7.1 Try again later"}


def free_port() -> int:
    """A port nothing listens on right now (so also good for 'connection refused')."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def make_self_signed_cert(directory: Path, hostname: str = "localhost") -> tuple[Path, Path]:
    """Write cert.pem and key.pem for `hostname` and 127.0.0.1; EC keys, as RSA is slow to generate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@dataclass(frozen=True)
class Received:
    """One accepted mail as the server saw it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    peer: tuple[str, int]  # the client's address: the same for mails on one connection
    tls: bool
    login: str | None  # the AUTH user name, if the client logged in


class _Handler:
    def __init__(self, owner: SmtpTestServer) -> None:
        self.owner = owner

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        code = self.owner._take_rejection(address)
        if code is not None:
            return _REPLIES.get(code, "{code} rejected <{address}>").format(code=code, address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            if (code := self.owner._take_rejection(address, at_data=True)) is not None:
                return _DATA_REPLIES.get(code, f"{code} rejected")
        raw = envelope.original_content or b""
        # Parse with LF line ends, as a mail store keeps them; `raw` stays as sent.
        message = message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email_policy.default)
        assert isinstance(message, EmailMessage)
        auth = session.auth_data
        self.owner._record(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=message,
                raw=raw,
                peer=tuple(session.peer) if session.peer else ("", 0),  # type: ignore[arg-type]
                tls=server.transport is not None and server.transport.get_extra_info("ssl_object") is not None,
                login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            )
        )
        return "250 2.0.0 Message accepted for delivery"


class _Controller(Controller):
    """Counts connections and remembers the SMTP protocol objects so tests can drop them."""

    def __init__(self, owner: SmtpTestServer, *args: Any, **kwargs: Any) -> None:
        self.owner = owner
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        smtp: SMTP = super().factory()  # type: ignore[no-untyped-call]
        if self.owner.implicit_tls:
            # aiosmtpd only counts STARTTLS as TLS; with TLS from the first byte
            # AUTH is just as safe, so let it through.
            smtp._auth_require_tls = False
        self.owner._register(smtp)
        return smtp


class SmtpTestServer:
    """Run with `with SmtpTestServer(...) as server:` or start()/stop().

    starttls: offer STARTTLS and refuse mail before it; implicit_tls: TLS from
    the first byte (smtps); auth: (user, password) required via LOGIN or
    PLAIN (`auth_mechanisms` narrows that); idle_timeout: seconds before the
    server drops a silent client.
    """

    def __init__(
        self,
        *,
        starttls: bool = False,
        implicit_tls: bool = False,
        auth: tuple[str, str] | None = None,
        auth_mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN"),
        idle_timeout: float = 30.0,
        cert_dir: Path | None = None,
    ) -> None:
        if starttls and implicit_tls:
            raise ValueError("SmtpTestServer: choose starttls or implicit_tls, not both")
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.auth = auth
        self.auth_mechanisms = tuple(m.upper() for m in auth_mechanisms)
        self.idle_timeout = idle_timeout
        self.host = HOST
        self.port = 0
        self.cert_file: Path | None = None
        self._cert_dir = cert_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Condition()
        self._messages: list[Received] = []
        self._rejections: dict[str, list[Any]] = {}  # address -> [code, times left or None]
        self._data_rejections: dict[str, list[Any]] = {}  # the same, answered to the final dot
        self._clients: list[SMTP] = []
        self._connections = 0
        self._controller: _Controller | None = None

    # -- lifecycle --

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        tls_context = None
        if self.starttls or self.implicit_tls:
            directory = self._cert_dir
            if directory is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="smtp-test-cert-")
                directory = Path(self._tmp.name)
            self.cert_file, key_file = make_self_signed_cert(directory)
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(self.cert_file, key_file)
        params: dict[str, Any] = {"timeout": self.idle_timeout}
        if self.starttls:
            params.update(tls_context=tls_context, require_starttls=True)
        if self.auth is not None:
            params.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=self.starttls or self.implicit_tls,
                auth_exclude_mechanism=[m for m in ("LOGIN", "PLAIN") if m not in self.auth_mechanisms],
            )
        last_error: Exception | None = None
        for _ in range(5):  # free_port() can race with another process taking the port
            self.port = free_port()
            controller = _Controller(
                self, _Handler(self), hostname=HOST, port=self.port, server_hostname="localhost",
                ready_timeout=5.0, ssl_context=tls_context if self.implicit_tls else None, **params,
            )
            try:
                controller.start()
            except OSError as exc:
                last_error = exc
                continue
            self._controller = controller
            with self._lock:
                self._connections = 0  # start() made one connection of its own to check the server
                self._clients.clear()
            return self
        raise RuntimeError(f"SmtpTestServer: could not bind {HOST} after 5 tries: {last_error}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- configuring answers --

    def reject(self, address: str, code: int = 550, times: int | None = None) -> None:
        """Answer RCPT TO `address` with `code` (550, 451 or any), always or only the next `times` times."""
        with self._lock:
            self._rejections[address.lower()] = [code, times]

    def reject_data(self, address: str, code: int = 554, times: int | None = None) -> None:
        """Take RCPT TO `address`, read the whole mail, then answer its final dot
        with `code` (554, 451 or any): always, or only the next `times` times."""
        with self._lock:
            self._data_rejections[address.lower()] = [code, times]

    # -- what happened --

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    @property
    def connections(self) -> int:
        """Client connections accepted since start()."""
        with self._lock:
            return self._connections

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        """All messages once at least `n` arrived; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"SmtpTestServer: expected {n} message(s), got {len(self._messages)} in {timeout} s")
                self._lock.wait(left)
            return list(self._messages)

    def settle(self, timeout: float = 10.0) -> None:
        """Return once the server has handled every byte its clients have sent:
        no client has data waiting in the kernel (FIONREAD) or in its reader.
        A test that has stopped the sender (SIGSTOP) then sees exactly what was
        handed over, however slowly this thread is scheduled on a loaded machine."""
        import fcntl
        import termios

        controller = self._controller
        if controller is None:
            return

        def unread(smtp: SMTP) -> int:
            transport = smtp.transport
            if transport is None or transport.is_closing():
                return 0
            sock = transport.get_extra_info("socket")
            pending = len(getattr(smtp._reader, "_buffer", b""))
            if sock is not None and sock.fileno() >= 0:
                pending += int.from_bytes(fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4), "little")
            return pending

        async def quiet() -> None:
            calm = 0
            while calm < 3:  # three loop turns in a row with nothing left to read
                await asyncio.sleep(0.001)
                calm = calm + 1 if not any(unread(smtp) for smtp in list(self._clients)) else 0

        asyncio.run_coroutine_threadsafe(quiet(), controller.loop).result(timeout=timeout)

    def disconnect_clients(self) -> None:
        """Close every open client connection from the server side, as an idle timeout would."""
        controller = self._controller
        if controller is None:
            return

        async def close_all() -> None:
            for smtp in self._clients:
                if smtp.transport is not None and not smtp.transport.is_closing():
                    smtp.transport.close()
            await asyncio.sleep(0.05)  # let the FIN go out before the test sends again

        asyncio.run_coroutine_threadsafe(close_all(), controller.loop).result(timeout=5)

    # -- called from the server thread --

    def _register(self, smtp: SMTP) -> None:
        with self._lock:
            self._connections += 1
            self._clients.append(smtp)

    def _record(self, received: Received) -> None:
        with self._lock:
            self._messages.append(received)
            self._lock.notify_all()

    def _take_rejection(self, address: str, at_data: bool = False) -> int | None:
        with self._lock:
            rule = (self._data_rejections if at_data else self._rejections).get(address.lower())
            if rule is None:
                return None
            code, left = rule
            if left is not None:
                if left <= 0:
                    return None
                rule[1] = left - 1
            return int(code)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            self.auth is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
