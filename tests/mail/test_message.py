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
from email.mime.text import MIMEText

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.mail import Message, parse_mailbox, render
from consentry.mail.message import _COMPAT32, _PLAIN, _parsed

_ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
_names = st.sampled_from(["Subject", "To", "From", "X-Consentry-Notice", "Message-ID", "X-A-Rather-Long-Header-Name-Here"])
_values = st.text(alphabet=st.sampled_from(list("ab Z9=?-_:;,.<>@\"()\t") + ["é", "€", "\u00a0"]), max_size=120)


@settings(max_examples=400, deadline=None)
@given(_names, _values)
def test_a_header_is_folded_as_compat32_folds_it(name: str, value: str) -> None:
    assert _COMPAT32.fold_binary(name, value) == compat32.fold_binary(name, value)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=300), st.text(max_size=300), st.sampled_from(["Re: notice", "x" * 90, "Über uns"]))
def test_a_whole_mail_is_the_bytes_compat32_writes(text: str, html: str, subject: str) -> None:
    mime = MIMEMultipart("alternative")
    mime.attach(MIMEText(text, "plain", "utf-8"))
    mime.attach(MIMEText(html, "html", "utf-8"))
    mime["To"] = "Ana <ana@example.org>"
    mime["Subject"] = subject if subject.isascii() else Header(subject, "utf-8", header_name="Subject")
    mime["X-Consentry-Notice"] = "c1:u1:email"
    slow = mime.as_bytes(policy=compat32)  # also fixes the boundary, which the second rendering reuses
    assert mime.as_bytes(policy=_COMPAT32) == slow


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
