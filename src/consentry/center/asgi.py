"""The ASGI entry point for uvicorn workers: settings come from the environment
(set by `consentry serve`), so every worker process builds the same app.
Secrets come from CONSENTRY_SECRET_KEY, CONSENTRY_SMTP and CONSENTRY_METRICS_TOKEN only."""

from __future__ import annotations

import json
import os

from ..notices.mailer import SmtpSettings
from .app import create_app
from .settings import CenterSettings


def _settings() -> CenterSettings:
    data = json.loads(os.environ["CONSENTRY_CENTER_SETTINGS"])
    data["secret_key"] = os.environ["CONSENTRY_SECRET_KEY"]
    smtp = os.environ.get("CONSENTRY_SMTP")
    data["smtp"] = SmtpSettings.from_url(smtp) if smtp else None
    data["metrics_token"] = os.environ.get("CONSENTRY_METRICS_TOKEN") or None
    return CenterSettings.model_validate(data)


app = create_app(_settings())
