"""The fast paths of `consentry.mail.message` give what the email package gives.

A campaign renders hundreds of mails a second, so a header that fits on its
line is written as it is, and a bare address is read without the stdlib's
header parser. Both must be invisible: the same bytes, the same address.
"""

from __future__ import annotations

from email import policy as email_policy
from email._policybase import compat32
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.mail import Message, parse_mailbox, render
from consentry.mail.message import _PLAIN, _assemble, _boundary, _line, _mailbox, _parsed

_ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
_names = st.sampled_from(["Subject", "To", "From", "X-Consentry-Notice", "Message-ID", "X-A-Rather-Long-Header-Name-Here"])
_values = st.text(alphabet=st.sampled_from(list("ab Z9=?-_:;,.<>@\"()\t") + ["é", "€", "\u00a0"]), max_size=120)


@settings(max_examples=400, deadline=None)
@given(_names, _values.filter(str.isascii))
def test_a_header_is_folded_as_compat32_folds_it(name: str, value: str) -> None:
    assert _line(name, value).encode() == compat32.fold_binary(name, value)


@settings(max_examples=200, deadline=None)
@given(_names, _values)
def test_a_text_header_is_encoded_as_compat32_encodes_it(name: str, value: str) -> None:
    expected = compat32.fold_binary(name, value if value.isascii() else Header(value, "utf-8", header_name=name))
    assert _line(name, value, text=True).encode() == expected


def _email_package(message: Message, sender: str, boundary: str, date: str) -> bytes:
    """What render() built with the email package before it put the bytes together itself."""
    def text(value: str, name: str):  # noqa: ANN202
        return value if value.isascii() else Header(value, "utf-8", header_name=name)

    mime: MIMENonMultipart | MIMEMultipart
    if message.html is None:
        mime = MIMEText(message.text, "plain", "utf-8")
    else:
        mime = MIMEMultipart("alternative", boundary=boundary)
        mime.attach(MIMEText(message.text, "plain", "utf-8"))
        mime.attach(MIMEText(message.html, "html", "utf-8"))
    mime["From"] = _mailbox(sender, "sender")
    mime["To"] = _mailbox(message.to, "Message.to")
    mime["Subject"] = text(message.subject, "Subject")
    mime["Date"] = date
    mime["Message-ID"] = message.message_id
    for name, value in message.headers.items():
        mime[name] = text(value, name)
    return mime.as_bytes(policy=compat32).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


_bodies = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)


@settings(max_examples=200, deadline=None)
@given(text=_bodies, html=st.none() | _bodies,
       subject=st.sampled_from(["Your data and AI training", "x" * 90, "Über uns: deine Daten", "", "a  b"]),
       to=st.sampled_from(["ana@example.org", "Ana Müller <ana@example.org>", '"Doe, J." <j@example.org>']),
       headers=st.dictionaries(st.sampled_from(["X-Consentry-Notice", "X-Campaign", "X-Very-Long-Header-Name-For-Folding"]),
                               st.sampled_from(["c1:u1:email", "ünïcode", "y" * 100]), max_size=2))
def test_a_whole_mail_is_the_bytes_the_email_package_writes(text, html, subject, to, headers) -> None:  # noqa: ANN001
    message = Message(to=to, subject=subject, text=text, html=html, headers=headers, message_id="<c1.u1.email@consentry>")
    sender, boundary, date = "Privacy <privacy@example.org>", _boundary(), "Thu, 03 Dec 2026 09:00:00 GMT"
    assert _assemble(message, sender, boundary=boundary, date=date) == _email_package(message, sender, boundary, date)


def _stdlib(value: str):  # noqa: ANN202 - the stdlib's reading, or None
    try:
        header = email_policy.default.header_factory("To", value)
    except Exception:  # noqa: BLE001
        return None
    if len(header.addresses) != 1 or [d for d in header.defects if type(d).__name__ != "NonASCIILocalPartDefect"]:
        return None
    a = header.addresses[0]
    return (a.display_name, a.username, a.domain, a.addr_spec) if a.username and a.domain else None


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(_ATEXT) + [".", "@", " ", "<", ">", "é"]), min_size=1, max_size=40))
def test_a_bare_address_is_read_as_the_stdlib_reads_it(value: str) -> None:
    _parsed.cache_clear()
    got = _parsed(value)
    mine = None if got is None else (got.display_name, got.username, got.domain, got.addr_spec)
    if _PLAIN.fullmatch(value):
        assert mine == _stdlib(value)


@pytest.mark.parametrize("value", ["ana@example.org", "a.b+tag@mail.example.co.uk", "o'neil@example.ie"])
def test_common_addresses_take_the_fast_path_and_agree(value: str) -> None:
    assert _PLAIN.fullmatch(value)
    a = parse_mailbox(value, what="to")
    assert (a.display_name, a.username, a.domain, a.addr_spec) == _stdlib(value)


@pytest.mark.parametrize("value", ["a..b@example.org", "ana@", "@example.org", "ana@exa mple.org", "ana@@example.org"])
def test_a_bad_address_is_still_refused_by_name(value: str) -> None:
    with pytest.raises(ValueError, match="^to: .* is not one e-mail address"):
        parse_mailbox(value, what="to")


def test_a_rendered_notice_keeps_its_headers_on_one_line_each() -> None:
    raw = render(Message(to="ana@example.org", subject="Your data and AI training", text="Hello", html="<p>Hello</p>",
                         headers={"X-Consentry-Notice": "c1:u1:email"}, message_id="<c1.u1.email@consentry>"),
                 sender="Privacy <privacy@example.org>")
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii") + "\r\n"
    assert "\r\nTo: ana@example.org\r\n" in head and "\r\nX-Consentry-Notice: c1:u1:email\r\n" in head
    assert "\r\nMessage-ID: <c1.u1.email@consentry>\r\n" in head
