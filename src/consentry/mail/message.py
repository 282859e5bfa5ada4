"""One mail to one person, and the one way its bytes are built.

Notices, the privacy center's mails and every transport (SMTP, a folder of
.eml files, memory in tests) use `render()`, so a mail looks the same however
it leaves. It writes what the email package's compat32 classes write (held to
their bytes by tests), put together directly: a notice campaign sends
hundreds of mails a second, and the email package took 1.5 ms a mail.
Bodies are UTF-8 in base64, headers 7-bit (RFC 2047 words), so the bytes
survive relays without 8BITMIME; only a non-ASCII address (SMTPUTF8) needs
raw UTF-8 headers.
"""

from __future__ import annotations

import functools
import random
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email import policy as email_policy
from email._policybase import compat32
from email.base64mime import body_encode
from email.generator import BytesGenerator
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from io import BytesIO
from typing import cast

# Headers render() writes itself: letting callers set them would make the
# envelope and the headers disagree (a Cc the relay never got) or break MIME.
_RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    )
)

#: Printable ASCII words with one space between them: a header compat32 writes as it is when it fits its line.
_ONE_LINE = re.compile(r"(?!.*=\?)[!-~]+(?: [!-~]+)*")

# 7bit: bodies go out quoted-printable or base64, so they survive relays that
# do not offer 8BITMIME; headers with non-ASCII text become RFC 2047 words.
_POLICY = email_policy.SMTP.clone(cte_type="7bit")


def parse_mailbox(value: str, *, what: str) -> Address:
    """One address like 'Privacy team <privacy@example.org>', or ValueError naming `what`."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what}: expected an e-mail address, got {value!r}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what}: line breaks are not allowed in an address: {value!r}")
    address = _parsed(value)
    if address is None:
        raise ValueError(
            f"{what}: {value!r} is not one e-mail address "
            "(expected 'name@domain' or 'Display Name <name@domain>')"
        )
    return address


def deliverable(value: str | None) -> bool:
    """`value` is one e-mail address a Message can be sent to. An export's
    address may be two, or none (validation only checks it is text): a mail
    built for it would fail in the transaction that records what it confirms."""
    try:
        parse_mailbox(value, what="address")  # type: ignore[arg-type] - None is refused there too
    except ValueError:
        return False
    return True


# A bare ASCII dot-atom address (RFC 5322 3.4.1), which the stdlib parser reads as
# itself with no display name: taken without it, which cost a campaign 0.5 ms a mail.
_PLAIN = re.compile(r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
                    r"@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)")


@functools.lru_cache(maxsize=4096)
def _parsed(value: str) -> Address | None:
    """The one address in `value`, or None. Cached: a mail's sender and
    recipient are read at every step of sending it."""
    if (m := _PLAIN.fullmatch(value)) is not None:
        return Address(username=m.group(1), domain=m.group(2))
    try:
        header = email_policy.default.header_factory("To", value)
        addresses = header.addresses
        defects = [d for d in header.defects if type(d).__name__ != "NonASCIILocalPartDefect"]
    except Exception:  # noqa: BLE001 - the stdlib parser raises IndexError & co on some garbage
        return None
    if len(addresses) != 1 or defects or not addresses[0].username or not addresses[0].domain:
        return None
    return cast(Address, addresses[0])


@dataclass(frozen=True)
class Message:
    """One mail to one person. `message_id` is generated at send time unless given (e.g. to dedupe)."""

    to: str
    subject: str
    text: str
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None

    def __post_init__(self) -> None:
        parse_mailbox(self.to, what="Message.to")
        object.__setattr__(self, "headers", dict(self.headers))  # a later change to the caller's dict must not leak in
        if "\r" in self.subject or "\n" in self.subject:
            raise ValueError(f"Message.subject: line breaks are not allowed: {self.subject!r}")
        for name, value in self.headers.items():
            if not name or not all(33 <= ord(c) <= 126 and c != ":" for c in name):
                raise ValueError(f"Message.headers: {name!r} is not a valid header name")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"Message.headers: {name!r} is set by the mailer; use the Message fields")
            if not isinstance(value, str) or "\r" in value or "\n" in value:
                raise ValueError(f"Message.headers[{name!r}]: expected one line of text, got {value!r}")
        if self.message_id is not None:
            mid = self.message_id
            if not (mid.startswith("<") and mid.endswith(">") and "@" in mid) or any(c.isspace() for c in mid):
                raise ValueError(f"Message.message_id: {mid!r} is not like '<unique@domain>'")



@functools.lru_cache(maxsize=64)
def _domain(sender: str) -> str:
    return parse_mailbox(sender, what="sender").domain


def with_message_id(message: Message, sender: str) -> Message:
    """The message with a Message-ID (in the sender's domain) if it had none:
    every attempt to deliver it then carries the same one."""
    if message.message_id is not None:
        return message
    return replace(message, message_id=make_msgid(domain=_domain(sender)))


def _mailbox(value: str, what: str) -> str:
    """An address for a header: as given if ASCII, else the name as RFC 2047 words."""
    if value.isascii():
        return value
    address = parse_mailbox(value, what=what)
    return formataddr((address.display_name, address.addr_spec), charset="utf-8")


def is_international(sender: str, to: str) -> bool:
    """Does the envelope need SMTPUTF8 (a non-ASCII address, not just a name)?"""
    if (sender + to).isascii():  # the common case, without parsing
        return False
    return not (
        parse_mailbox(sender, what="sender").addr_spec + parse_mailbox(to, what="Message.to").addr_spec
    ).isascii()


def render(message: Message, *, sender: str) -> bytes:
    """The mail as it goes over the wire: CRLF line ends, text alone or text +
    HTML as multipart/alternative. A message without a Message-ID gets one."""
    message = with_message_id(message, sender)
    if is_international(sender, message.to):
        return _render_utf8(message, sender)
    return _assemble(message, sender, boundary=_boundary(), date=formatdate(usegmt=True))


def _boundary() -> str:
    """A multipart boundary as the email package makes one. Bodies are base64,
    whose alphabet has no run of 15 "=", so it cannot occur in them."""
    return "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="


def _assemble(message: Message, sender: str, *, boundary: str, date: str) -> bytes:
    """Exactly the bytes compat32's MIMEText/MIMEMultipart and BytesGenerator
    write for this message with this boundary and date (a property test holds
    them to it), put together directly: the email package took 1.5 ms a mail,
    a notice campaign's largest cost after the ledger."""
    head = [_line("From", _mailbox(sender, "sender")), _line("To", _mailbox(message.to, "Message.to")),
            _line("Subject", message.subject, text=True), _line("Date", date),
            _line("Message-ID", cast(str, message.message_id))]
    head += [_line(name, value, text=True) for name, value in message.headers.items()]
    if message.html is None:
        mail = _PART.format(subtype="plain") + "".join(head) + "\n" + _base64(message.text)
    else:
        mail = (f'Content-Type: multipart/alternative;\n boundary="{boundary}"\nMIME-Version: 1.0\n' + "".join(head)
                + f"\n--{boundary}\n" + _PART.format(subtype="plain") + "\n" + _base64(message.text)
                + f"\n--{boundary}\n" + _PART.format(subtype="html") + "\n" + _base64(message.html)
                + f"\n--{boundary}--\n")
    return mail.replace("\n", "\r\n").encode("ascii")


_PART = 'Content-Type: text/{subtype}; charset="utf-8"\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n'


def _base64(text: str) -> str:
    return body_encode(text.encode("utf-8"))


def _line(name: str, value: str, *, text: bool = False) -> str:
    """One header as compat32 folds it; `text`: a non-ASCII value is RFC 2047 words."""
    if len(name) + 2 + len(value) <= 78 and _ONE_LINE.fullmatch(value):
        return f"{name}: {value}\n"
    return _folded(name, value, text and not value.isascii())


@functools.lru_cache(maxsize=1024)
def _folded(name: str, value: str, encode: bool) -> str:
    """A long or non-ASCII header, folded by compat32 (a campaign's subjects repeat)."""
    return compat32.fold_binary(name, Header(value, "utf-8", header_name=name) if encode else value).decode("ascii")


def _render_utf8(message: Message, sender: str) -> bytes:
    """For a non-ASCII address: headers in raw UTF-8, which the server must
    accept with SMTPUTF8 (the SMTP transport checks that it offers it)."""
    mail = EmailMessage(policy=_POLICY)
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = cast(str, message.message_id)
    for name, value in message.headers.items():
        mail[name] = value
    mail.set_content(message.text, charset="utf-8")
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html", charset="utf-8")
    buffer = BytesIO()
    BytesGenerator(buffer, policy=_POLICY.clone(utf8=True)).flatten(mail, linesep="\r\n")
    return buffer.getvalue()
