"""The ASGI entry point for uvicorn workers: settings come from the environment
(set by `consentry serve`), so every worker process builds the same app.
Secrets come from CONSENTRY_SECRET_KEY, CONSENTRY_SMTP and CONSENTRY_METRICS_TOKEN only."""

from __future__ import annotations

import gc
import json

from .. import config
from ..notices import SmtpSettings
from .app import create_app
from .settings import CenterSettings


def _settings() -> CenterSettings:
    settings, secret, smtp, token = config.from_serve()
    data = json.loads(settings)
    data["secret_key"] = secret
    data["smtp"] = SmtpSettings.from_url(smtp) if smtp else None
    data["metrics_token"] = token
    return CenterSettings.model_validate(data)


app = create_app(_settings())
# What start-up built (some 200,000 objects: FastAPI, pydantic, SQLAlchemy,
# Babel, the templates) lives as long as the worker. Under load the
# collector's full pass walked all of it every few seconds, stalling every
# request on that worker for about 90 ms: the intake's p99. Frozen, a full
# pass walks only what requests made since.
gc.collect()
gc.freeze()
