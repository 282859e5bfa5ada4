"""The one-click objection link in a notice: signed, names the person and the
campaign, and leads to the privacy center's confirmation page."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

SALT = "consentry.notice-objection"
VALID_DAYS = 400  # a notice stays usable well past the cut-off


@lru_cache(maxsize=8)
def _serializer(secret: str) -> URLSafeTimedSerializer:
    """One per secret: a campaign signs a link per mail."""
    return URLSafeTimedSerializer(secret, salt=SALT)


def public_base_url(value: str) -> str:
    """The privacy center's public address, as every link people are sent
    starts with: http or https, a host, no query; without its trailing slash. A
    value like "privacy.example.org" made links that lead nowhere."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"'{value}' is not a web address: write it like https://privacy.example.org")
    return value.strip().rstrip("/")


def objection_token(secret: str, user_id: str, campaign_id: str) -> str:
    return _serializer(secret).dumps({"u": user_id, "c": campaign_id})


def read_objection_token(secret: str, token: str) -> tuple[str, str] | None:
    """(user_id, campaign_id), or None for a forged or expired link."""
    try:
        data = _serializer(secret).loads(token, max_age=VALID_DAYS * 86_400)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), str):
        return None
    return data["u"], str(data.get("c", ""))
