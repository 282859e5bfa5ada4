"""Signed, single-use, short-lived sign-in links.

The token in the mail is signed (itsdangerous) and carries a random nonce and
the link's purpose, nothing else: it is signed, not encrypted, and URLs end up
in proxy logs, browser history and language links, so the address it was sent
to and the account it opens stay in the database row the nonce names. The
database keeps only the nonce's SHA-256, so a copy of the database cannot sign
anyone in. Using a link is an atomic UPDATE ... WHERE used IS NULL: two clicks
racing each other cannot both win.

A link's row is deleted once it is used or has expired (`Links.purge`, run in
the transaction of every new link): only a live link needs it.
"""

from __future__ import annotations

import email.utils
import hashlib
import secrets
import unicodedata
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Connection, Engine, delete, insert, or_, select, update

from ..errors import AddressError, LinkError
from ..timeutil import to_micros
from .tables import signin_links

LINK_MINUTES = 15
#: An unused link's row is kept this long after the link expired (workers' clocks differ a little), then deleted.
PURGE_MARGIN_S = 5 * 60
#: Rows one sweep deletes at most: a backlog goes in steps, never in one long transaction.
PURGE_BATCH = 500


def _now() -> datetime:
    return datetime.now(UTC)


def delete_some(conn: Connection, key, where, limit: int) -> int:  # noqa: ANN001 - a column, a condition
    """Delete at most `limit` rows of `key`'s table where `where` holds, in the
    caller's transaction; how many went. On PostgreSQL concurrent sweeps skip
    each other's rows (no deadlock); `where` again on the DELETE, for a row
    changed meanwhile."""
    pick = select(key).where(where).limit(limit)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    return int(conn.execute(delete(key.table).where(key.in_(pick), where)).rowcount or 0)


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
        """A new link's token. The address and the `account` it opens (if
        given) are kept in its row, never in the token. With `conn`, in the
        caller's transaction (the center queues the mail carrying it in the
        same one), which also deletes spent links (`purge`)."""
        nonce = secrets.token_urlsafe(24)
        row = insert(signin_links).values(
            nonce=_hash(nonce),
            subject=email.strip().lower(),
            purpose=purpose,
            account=account,
            created_us=to_micros(_now()),
        )
        if conn is not None:
            self.purge(conn)
            conn.execute(row)
        else:
            with self.engine.begin() as own:
                self.purge(own)
                own.execute(row)
        return self._signer.dumps({"n": nonce, "p": purpose})

    def purge(self, conn: Connection | None = None, *, now: datetime | None = None, limit: int = PURGE_BATCH) -> int:
        """Delete the rows of links that were used or have expired (with a
        margin), at most `limit`: nothing reads them any more (the spacing of
        mails counts `rate_events`, which hold no address). A used link whose
        row is gone is still refused as used. Returns how many went."""
        now_us = to_micros(now or _now())
        life_us = (max(self.max_age_s, LINK_MINUTES * 60) + PURGE_MARGIN_S) * 1_000_000
        spent = or_(signin_links.c.used_us.is_not(None), signin_links.c.created_us < now_us - life_us)
        with nullcontext(conn) if conn is not None else self.engine.begin() as conn:
            return delete_some(conn, signin_links.c.nonce, spent, limit)

    def check(self, token: str, purpose: str = "signin") -> str:
        """The token's nonce if it is signed by us, unexpired and for
        `purpose`, else the LinkError saying why (expired, invalid); reads no
        row and uses nothing up."""
        try:
            data = self._signer.loads(token, max_age=self.max_age_s)
        except SignatureExpired:
            raise LinkError("expired") from None
        except BadSignature:
            raise LinkError("invalid") from None
        if not isinstance(data, dict) or set(data) != {"n", "p"} or data["p"] != purpose or not isinstance(data["n"], str):
            raise LinkError("invalid")
        return data["n"]

    def redeem(self, token: str, purpose: str = "signin", *, conn: Connection | None = None) -> str:
        """The address the link was sent to; the link can never be used again."""
        return self.use(token, purpose, conn=conn).subject

    def use(self, token: str, purpose: str = "signin", *, conn: Connection | None = None) -> Redeemed:
        """Use the link, once: what it was for, read from its row. With `conn`,
        in the caller's transaction: using the link and what it confirms then
        commit together, or neither does. A token of the format before links
        kept the address in their row (it carried it, `e`) is not valid."""
        nonce = _hash(self.check(token, purpose))
        use = (
            update(signin_links)
            .where(signin_links.c.nonce == nonce)
            .where(signin_links.c.purpose == purpose)
            .where(signin_links.c.used_us.is_(None))
            .values(used_us=to_micros(_now()))
        )
        with nullcontext(conn) if conn is not None else self.engine.begin() as conn:
            if conn.execute(use).rowcount != 1:
                raise LinkError("used")
            subject, account = conn.execute(
                select(signin_links.c.subject, signin_links.c.account).where(signin_links.c.nonce == nonce)
            ).one()
        return Redeemed(str(subject), str(account) if account is not None else None)
