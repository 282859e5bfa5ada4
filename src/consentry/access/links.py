"""Signed, single-use, short-lived sign-in links.

The token in the mail is signed (itsdangerous) and carries a random nonce; the
database keeps only the nonce's SHA-256, so a copy of the database cannot sign
anyone in. Using a link is an atomic UPDATE ... WHERE used IS NULL: two clicks
racing each other cannot both win.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine, insert, update

from ..errors import ConsentryError
from ..timeutil import to_micros
from .tables import signin_links

LINK_MINUTES = 15


class LinkError(ConsentryError):
    """A link that cannot sign anyone in; `reason` is expired, used or invalid."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            {
                "expired": "This link has expired (links work for 15 minutes). Ask for a new one.",
                "used": "This link has already been used. Ask for a new one.",
                "invalid": "This link is not valid. Ask for a new one.",
            }[reason]
        )


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


class Links:
    def __init__(self, engine: Engine, secret: str, *, max_age_s: int = LINK_MINUTES * 60) -> None:
        self.engine = engine
        self.max_age_s = max_age_s
        self._signer = URLSafeTimedSerializer(secret, salt="consentry.signin")

    def issue(self, email: str, purpose: str = "signin") -> str:
        nonce = secrets.token_urlsafe(24)
        with self.engine.begin() as conn:
            conn.execute(
                insert(signin_links).values(
                    nonce=_hash(nonce),
                    subject=email.strip().lower(),
                    purpose=purpose,
                    created_us=to_micros(datetime.now(UTC)),
                )
            )
        return self._signer.dumps({"n": nonce, "e": email.strip().lower(), "p": purpose})

    def redeem(self, token: str, purpose: str = "signin") -> str:
        """The address the link was sent to; the link can never be used again."""
        try:
            data = self._signer.loads(token, max_age=self.max_age_s)
        except SignatureExpired:
            raise LinkError("expired") from None
        except BadSignature:
            raise LinkError("invalid") from None
        if not isinstance(data, dict) or data.get("p") != purpose:
            raise LinkError("invalid")
        with self.engine.begin() as conn:
            done = conn.execute(
                update(signin_links)
                .where(signin_links.c.nonce == _hash(str(data.get("n"))))
                .where(signin_links.c.subject == data.get("e"))
                .where(signin_links.c.used_us.is_(None))
                .values(used_us=to_micros(datetime.now(UTC)))
            )
            if done.rowcount != 1:
                raise LinkError("used")
        return str(data["e"])
