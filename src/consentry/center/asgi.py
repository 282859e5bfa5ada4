"""The ASGI entry point for uvicorn workers: settings come from the environment
(set by `consentry serve`), so every worker process builds the same app.
Secrets come from CONSENTRY_SECRET_KEY, CONSENTRY_SMTP and CONSENTRY_METRICS_TOKEN only."""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import threading

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


#: How long a worker whose master is gone lets its requests finish before it exits anyway.
ORPHAN_GRACE_S = 10.0


def _end_with_master() -> None:
    """A worker of `serve --workers N` stops when its master process is gone.
    Killed with SIGKILL, the master cannot stop them: orphans kept serving on
    its socket, and a restart failed ("Address already in use"). The worker
    watches multiprocessing's pipe from its parent, which closes whatever way
    the parent dies (even before the watch starts), then shuts down as uvicorn
    does on SIGTERM: requests under way finish. With one worker there is no
    master: uvicorn serves in the `serve` process itself."""
    import multiprocessing
    from multiprocessing.connection import wait

    master = multiprocessing.parent_process()
    if master is None:
        return

    def watch() -> None:
        wait([master.sentinel])
        logging.getLogger("uvicorn.error").warning(
            "the master process %s is gone: worker %s stops", master.pid, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(ORPHAN_GRACE_S)
        os._exit(1)  # a request that would not end: the socket must be free for a restart

    threading.Thread(target=watch, name="master-watch", daemon=True).start()


_end_with_master()
app = create_app(_settings())
# What start-up built (some 200,000 objects: FastAPI, pydantic, SQLAlchemy,
# Babel, the templates) lives as long as the worker. Under load the
# collector's full pass walked all of it every few seconds, stalling every
# request on that worker for about 90 ms: the intake's p99. Frozen, a full
# pass walks only what requests made since.
gc.collect()
gc.freeze()
