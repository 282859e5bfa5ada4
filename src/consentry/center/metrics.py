"""Prometheus metrics for the privacy center, at GET /metrics.

What is counted: requests by route template, method and status; request
latency; ledger events the center recorded, by type and channel; and two
queue depths (events waiting for the group commit, notices not yet sent).
Labels never carry a user id, a token or any other personal data: routes are
templates (`/api/v1/people/{user_id}/objection`), unmatched paths are one label.

Several workers (`consentry serve --workers N`): prometheus_client keeps each
process's values in files under PROMETHEUS_MULTIPROC_DIR and /metrics sums
them. That variable must be set, to an empty folder, before any worker imports
prometheus_client: `prepare_multiprocess_dir()` does that for `serve`. Without
it every process counts alone, and a scrape sees only the worker that answered
(fine with one worker, the default).
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"


def prepare_multiprocess_dir(workers: int) -> Path | None:
    """For `consentry serve`, before uvicorn starts: with more than one worker,
    point PROMETHEUS_MULTIPROC_DIR at a fresh empty folder (unless the operator
    chose one), so the workers' counts add up. Returns the folder, or None."""
    if workers <= 1 and not os.environ.get(ENV):
        return None
    folder = os.environ.get(ENV) or tempfile.mkdtemp(prefix="consentry-metrics-")
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # counts of a previous run would be added to this one's
        stale.unlink()
    os.environ[ENV] = str(path)
    return path


def multiprocess() -> bool:
    return bool(os.environ.get(ENV))


class _Metrics:
    """The process's metric objects, made once (a second app in the same
    process, as in tests, shares them: Prometheus refuses duplicate names)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "consentry_http_requests", "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"), registry=self.registry,
        )
        self.latency = Histogram(
            "consentry_http_request_duration_seconds", "Time to answer a request, by route template and method.",
            ("route", "method"), registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.events = Counter(
            "consentry_ledger_events_recorded", "Ledger events the privacy center committed, by type and channel.",
            ("type", "channel"), registry=self.registry,
        )
        self.commit_queue = Gauge(
            "consentry_ledger_commit_queue", "Events handed to the group committer and not yet committed.",
            registry=self.registry, multiprocess_mode="livesum",
        )
        if multiprocess():
            from prometheus_client import multiprocess as mp

            pid = os.getpid()
            atexit.register(lambda: mp.mark_process_dead(pid))


_metrics: _Metrics | None = None
_lock = threading.Lock()


def metrics() -> _Metrics:
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = _Metrics()
        return _metrics


class CountingCommitter:
    """The center's GroupCommitter, counted: every event goes through submit(),
    so the queue gauge and the event counter see all of them. Anything else is
    passed to the real committer unchanged."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._m = metrics()

    def submit(self, event: Any, **kw: Any) -> Future:
        self._m.commit_queue.inc()
        try:
            future = self._inner.submit(event, **kw)
        except BaseException:
            self._m.commit_queue.dec()
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future) -> None:
        self._m.commit_queue.dec()
        if future.cancelled() or future.exception() is not None:
            return
        count_recorded([future.result()])

    def record(self, event: Any, timeout: float = 30.0, **kw: Any) -> Any:
        return self.submit(event, **kw).result(timeout)

    async def arecord(self, event: Any, timeout: float = 30.0, **kw: Any) -> Any:
        import asyncio

        return await asyncio.wait_for(asyncio.wrap_future(self.submit(event, **kw)), timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def count_recorded(events: Any) -> None:
    """Events the center committed in a transaction of its own rather than
    through the committer (a third party's confirmation, an administrator's
    protection or dismissal), counted as the committer's are."""
    m = metrics()
    for e in events:
        m.events.labels(type=e.type.value, channel=e.channel.value).inc()


class MetricsMiddleware:
    """Plain ASGI: times every HTTP request and labels it by its route template."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.m = metrics()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope.get("method", "GET")
            if method not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
                method = "OTHER"  # methods are client input: keep the label set small
            self.m.latency.labels(route=route, method=method).observe(time.perf_counter() - started)
            self.m.requests.labels(route=route, method=method, status=str(status[0])).inc()


def _outbox_pending(engine: Any) -> dict[str, int]:
    """Notices not yet sent, per channel, read at scrape time (the same in every worker)."""
    from ..notices import pending_by_channel

    return pending_by_channel(engine)


def exposition(engine: Any) -> bytes:
    """The text a Prometheus scrape gets."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    m = metrics()
    if multiprocess():
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(m.registry)
    pending = GaugeMetricFamily(
        "consentry_notice_outbox_pending", "Notices planned and not yet sent or shown, by channel.", labels=["channel"]
    )
    counts = _outbox_pending(engine)
    for channel in sorted(set(counts) | {"email", "in_app"}):
        pending.add_metric([channel], counts.get(channel, 0))
    from ..mail import outbox as mail_outbox

    mails = GaugeMetricFamily(
        "consentry_mail_outbox", "The center's mails by state: queued, sent (last 30 days), expired, failed.",
        labels=["state"],
    )
    with engine.connect() as conn:
        for state, n in mail_outbox.counts(conn).items():
            mails.add_metric([state], n)

    from ..snapshots import purge_backlog

    waiting = GaugeMetricFamily(
        "consentry_purge_backlog_seconds", "Per snapshot, how long the oldest ledger event its purges have not applied "
        "yet has waited (0: none). Alert when it nears --purge-within, the removal time pages promise.", labels=["snapshot"])
    backlog = GaugeMetricFamily(
        "consentry_purge_backlog_events", "Per snapshot, the ledger events its purges have not applied yet.", labels=["snapshot"])
    now = datetime.now(UTC)
    for b in purge_backlog(engine):
        waiting.add_metric([b.snapshot], b.waiting(now))
        backlog.add_metric([b.snapshot], b.events)

    class _Once:
        def collect(self):  # noqa: ANN202
            yield pending
            yield mails
            yield waiting
            yield backlog

    extra = CollectorRegistry(auto_describe=False)
    extra.register(_Once())
    return text + generate_latest(extra)


#: What GET /metrics answers when no token is set.
METRICS_OFF = ("Metrics are off: start the privacy center with --metrics-token (or $CONSENTRY_METRICS_TOKEN), "
               "then scrape with 'Authorization: Bearer <token>'.\n")


def install_metrics(app: FastAPI) -> None:
    """Count requests and recorded events, and serve GET /metrics. Call once,
    after app.state.center is set and before the app starts."""
    from prometheus_client import CONTENT_TYPE_LATEST
    from starlette.concurrency import run_in_threadpool

    metrics()  # now, not at the first request: a worker that has answered nothing yet is still a live worker
    center = app.state.center
    if not isinstance(center.committer, CountingCommitter):
        center.committer = CountingCommitter(center.committer)
    app.add_middleware(MetricsMiddleware)

    token = center.settings.metrics_token

    async def metrics_endpoint(request: Request) -> Response:
        if token is None:
            # Off unless a token is set: the mail counts move when a sign-in link goes out, which it
            # does only for an address with an account, so an open /metrics told anyone who has one.
            return Response(METRICS_OFF, status_code=403, media_type="text/plain", headers={"Cache-Control": "no-store"})
        import hmac  # `serve --metrics-token`: only the scraper that has it

        sent = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), expected.encode()):
            return Response("A metrics token is needed: Authorization: Bearer <token>\n", status_code=401,
                            media_type="text/plain", headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"})
        body = await run_in_threadpool(exposition, request.app.state.center.ledger.reader)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    # An API route, so that the scrapes are counted under "/metrics" (a plain route left them "<unmatched>").
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
