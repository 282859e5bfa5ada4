"""How a privacy center is configured: from the CLI, the environment or tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from ..notices.mailer import SmtpSettings


class CenterSettings(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    data: Path  # the platform export (who people are, what they posted)
    ledger_url: str
    policy: str = "recommended"
    cutoff: datetime | None = None  # the next planned cut-off; None: "now" at each request
    secret_key: SecretStr  # signs links and session cookies
    base_url: str = "http://127.0.0.1:8000"
    smtp: SmtpSettings | None = None
    mail_dir: Path | None = None  # development: write mails as .eml files instead of sending
    platform_name: str = "the platform"
    signin_per_email_per_hour: int = 5
    signin_per_ip_per_hour: int = 30

    @field_validator("secret_key")
    @classmethod
    def _strong(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("the secret key must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")
