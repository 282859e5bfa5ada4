"""Signed, single-use, short-lived sign-in links.

The token in the mail is signed (itsdangerous) and carries a random nonce; the
database keeps only the nonce's SHA-256, so a copy of the database cannot sign
anyone in. Using a link is an atomic UPDATE ... WHERE used IS NULL: two clicks
racing each other cannot both win.
"""

from __future__ import annotations

import email.utils
import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Connection, Engine, insert, update

from ..errors import AddressError, LinkError
from ..timeutil import to_micros
from .tables import signin_links

LINK_MINUTES = 15


def normalise_address(raw: str) -> str:
    """One spelling per mailbox, for rate limits and look-ups: `A <v@x.org>`,
    `v@x.org (note)` and `V@X.ORG` are the same address. NFKC, then display
    name and comments dropped (the standard library's address parser), then
    checked by email-validator (syntax only: no DNS), then lower-cased.

    Lower case, not case-folding: folding wrote `straße@` as `strasse@`, an
    address of its own (ß is a letter of its own, in IDNA2008 too), so the
    export's `straße@` was never found, and a person typing it reached the
    account of `strasse@`. Each letter keeps its identity; only its case goes
    (`ẞ` and `ß` are one letter). Nor does a different letter become a Latin
    one (`İ` becomes `i̇`, not `i`; `ı` stays), so look-alike addresses stay
    apart. A stored address is the same one only if it normalises to the same
    text (`same_address`): the directory's look-up holds every account to that.

    The AddressError's message is a fixed English sentence, a msgid the privacy
    center shows in the page's language (scripts/extract_messages.py lists them):
    never email-validator's own English explanation."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        raise AddressError("Enter an e-mail address.")
    if any(unicodedata.category(ch) == "Cc" for ch in text):  # NUL among them
        raise AddressError("The address contains control characters.")
    found = [addr for _, addr in email.utils.getaddresses([text]) if addr]
    if len(found) != 1:
        raise AddressError("Enter exactly one e-mail address." if found else "This is not an e-mail address.")
    try:
        valid = validate_email(found[0], check_deliverability=False)
    except EmailNotValidError:
        raise AddressError(_what_is_wrong(text, found[0])) from None
    # NFKC again after lower(): its full mappings may leave a letter decomposed (`J̌` becomes `ǰ` as j and a caron).
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", valid.normalized).lower())


def same_address(stored: str | None, address: str) -> bool:
    """`stored` (an export's address) is the mailbox `address` (already
    normalised) names: it normalises to the very same text. An address that is
    not one (none, two, malformed) is nobody's."""
    if not stored:
        return False
    try:
        return normalise_address(stored) == address
    except AddressError:
        return False


def _what_is_wrong(text: str, address: str) -> str:
    """Why email-validator refused `address` (parsed from `text`), in one of our
    own sentences: the common slips by name, anything else in general (two @,
    which the parser cuts short, among them)."""
    if text.count("@") > 1:
        return "This is not a valid e-mail address."
    if "@" not in address:
        return "This is not a valid e-mail address: the @ is missing."
    if any(ch.isspace() for ch in address):
        return "This is not a valid e-mail address: it contains a space."
    if "." not in address.rsplit("@", 1)[1]:
        return "This is not a valid e-mail address: the part after the @ needs a dot, as in example.org."
    return "This is not a valid e-mail address."


@dataclass(frozen=True)
class Redeemed:
    """What a used link was for: the address it was sent to and, for a sign-in
    link, the account it opens (several accounts may share one address)."""

    subject: str
    account: str | None = None


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


class Links:
    def __init__(self, engine: Engine, secret: str, *, max_age_s: int = LINK_MINUTES * 60) -> None:
        self.engine = engine
        self.max_age_s = max_age_s
        self._signer = URLSafeTimedSerializer(secret, salt="consentry.signin")

    def issue(
        self, email: str, purpose: str = "signin", *, account: str | None = None, conn: Connection | None = None
    ) -> str:
        """A new link's token, signed with the `account` it opens if given. With
        `conn`, in the caller's transaction (the center queues the mail carrying
        it in the same one)."""
        nonce = secrets.token_urlsafe(24)
        row = insert(signin_links).values(
            nonce=_hash(nonce),
            subject=email.strip().lower(),
            purpose=purpose,
            created_us=to_micros(datetime.now(UTC)),
        )
        if conn is not None:
            conn.execute(row)
        else:
            with self.engine.begin() as own:
                own.execute(row)
        data = {"n": nonce, "e": email.strip().lower(), "p": purpose}
        if account is not None:
            data["a"] = account
        return self._signer.dumps(data)

    def redeem(self, token: str, purpose: str = "signin", *, conn: Connection | None = None) -> str:
        """The address the link was sent to; the link can never be used again."""
        return self.use(token, purpose, conn=conn).subject

    def use(self, token: str, purpose: str = "signin", *, conn: Connection | None = None) -> Redeemed:
        """Use the link, once: what it was for. With `conn`, in the caller's
        transaction: using the link and what it confirms then commit together,
        or neither does."""
        try:
            data = self._signer.loads(token, max_age=self.max_age_s)
        except SignatureExpired:
            raise LinkError("expired") from None
        except BadSignature:
            raise LinkError("invalid") from None
        if not isinstance(data, dict) or data.get("p") != purpose:
            raise LinkError("invalid")
        use = (
            update(signin_links)
            .where(signin_links.c.nonce == _hash(str(data.get("n"))))
            .where(signin_links.c.subject == data.get("e"))
            .where(signin_links.c.used_us.is_(None))
            .values(used_us=to_micros(datetime.now(UTC)))
        )
        if conn is not None:
            done = conn.execute(use)
        else:
            with self.engine.begin() as own:
                done = own.execute(use)
        if done.rowcount != 1:
            raise LinkError("used")
        account = data.get("a")
        return Redeemed(str(data["e"]), str(account) if account is not None else None)
