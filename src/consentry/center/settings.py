"""How a privacy center is configured: from the CLI, the environment or tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .. import signing
from ..access import LINK_MINUTES
from ..controller import Controller
from ..errors import InputError

from ..notices import SmtpSettings


class CenterSettings(BaseModel):
    # hide_input_in_errors: a refused setting is never echoed back (it may be a secret or a token).
    model_config = ConfigDict(arbitrary_types_allowed=True, hide_input_in_errors=True)

    data: str | Path  # the platform export (who people are, what they posted): a folder or an s3:// URI
    ledger_url: str
    policy: str = "recommended"
    cutoff: datetime | None = None  # the next planned cut-off; None: "now" at each request
    secret_key: SecretStr  # signs links and session cookies
    base_url: str = "http://127.0.0.1:8000"
    smtp: SmtpSettings | None = None
    mail_dir: Path | None = None  # development: write mails as .eml files instead of sending
    mail_expire_hours: float = 72.0  # a mail not delivered by then is given up and shown on /admin
    platform_name: str | None = None  # unless the controller names it
    controller: Controller = Controller()  # who is asking: named on every page and mail
    # The operator's purge schedule (`snapshot purge --watch` or cron, plus the
    # vacuum): what pages and mails promise for training sets already built.
    purge_within_hours: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    receipt_key: Path | None = None  # Ed25519 private key (PEM) that signs purge receipts; none: no receipts offered
    # Sign-in mails to one address are spaced, not capped: the 2nd after
    # `spacing`, each next one twice as long, never more than `spacing_max`,
    # which is shorter than a link's life: a refused owner always has a live link.
    signin_mail_spacing_s: int = 60
    signin_mail_spacing_max_s: int = 600
    signin_per_ip_per_hour: int = 30  # the per-IP limit carries the weight
    # Administrator sign-in: per name and address, `admin_free_failures` tries,
    # then waits doubling from 1 s up to 15 min; per address, a hard limit.
    admin_free_failures: int = 3
    admin_tries_per_ip: int = 30  # per 15 minutes, over all names
    # Server-side sessions (access/sessions.py).
    session_idle_s: int = 30 * 60
    session_absolute_s: int = 12 * 3600
    admin_session_idle_s: int = 15 * 60
    admin_session_absolute_s: int = 8 * 3600
    # Refused with 413 before any parsing; under 1 KB even a form with its CSRF token could be refused.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Addresses or networks of reverse proxies whose X-Forwarded-For is believed; none by default.
    trusted_proxies: list[str] = []
    metrics_token: SecretStr | None = None  # if set, GET /metrics needs `Authorization: Bearer <token>`

    @field_validator("secret_key")
    @classmethod
    def _strong(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("the secret key must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("base_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        from ..notices import public_base_url

        return public_base_url(value)  # "privacy.example.org" made sign-in links that lead nowhere

    @field_validator("receipt_key")
    @classmethod
    def _receipt_key(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            signing.private_key(value, what="the receipt key")
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for v in value:
            try:
                ipaddress.ip_network(v, strict=False)
            except ValueError:
                raise ValueError(f"trusted proxy '{v}' is not an IP address or network (e.g. 10.0.0.1 or 10.0.0.0/8)") from None
        return value

    @field_validator("metrics_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the metrics token must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _owner_keeps_a_link(self) -> CenterSettings:
        if not 0 < self.signin_mail_spacing_s <= self.signin_mail_spacing_max_s < LINK_MINUTES * 60:
            raise ValueError(
                f"need 0 < signin_mail_spacing_s <= signin_mail_spacing_max_s < {LINK_MINUTES * 60} "
                "(a link's life), so whoever is refused a new link still has a live one"
            )
        return self

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def platform(self) -> str | None:
        """The platform's name as given; None: pages and mails use their catalog's placeholder."""
        return self.controller.platform or self.platform_name
