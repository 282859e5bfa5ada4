"""Prometheus metrics at /metrics (issue #6 part 4): a recorded objection is
counted, routes are templates (no user ids), queue depths are read, and with
several uvicorn workers the counts of all of them add up."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from center_kit import ALICE, METRICS_AUTH, METRICS_TOKEN, SECRET, CenterKit, center_factory, export_dir, smtp  # noqa: F401  (fixtures)
from consentry.access import ApiClients
from consentry.ledger import Ledger
from consentry.notices.tables import outbox

pytestmark = pytest.mark.slow  # every test here: see the markers in pyproject.toml

OBJECTION_ROUTE = "/api/v1/people/{user_id}/objection"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_a_recorded_objection(center_factory: Callable[..., CenterKit]) -> None:  # noqa: F811
    kit = center_factory()
    _, key = kit.api_key("metrics test")
    http = kit.new_client()
    before = http.get("/metrics", headers=METRICS_AUTH)
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
    r = http.post(f"/api/v1/people/{ALICE}/objection", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201
    http.get("/no-such-page-for-bob")
    after = http.get("/metrics", headers=METRICS_AUTH).text
    delta = lambda name, **lb: value(after, name, **lb) - value(before.text, name, **lb)  # noqa: E731
    assert delta("consentry_ledger_events_recorded_total", type="objected", channel="api") == 1
    assert delta("consentry_ledger_events_recorded_total", type="consent_given", channel="api") == 0
    assert delta("consentry_http_requests_total", route=OBJECTION_ROUTE, method="POST", status="201") == 1
    assert delta("consentry_http_request_duration_seconds_count", route=OBJECTION_ROUTE, method="POST") == 1
    assert delta("consentry_http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert value(after, "consentry_ledger_commit_queue") == 0
    # no personal data in any label: not the person, not the path they typed, not the key
    for needle in (ALICE, "bob", key):
        assert needle not in after


def test_outbox_pending_is_read_from_the_database(center_factory: Callable[..., CenterKit]) -> None:  # noqa: F811
    kit = center_factory()
    states = ["pending", "pending", "sending", "sent", "bounced", "deferred", "shown"]
    rows = [{"dedupe_key": f"c:u{i}:{'in_app' if s == 'shown' else 'email'}", "campaign_id": "c", "user_id": f"u{i}",
             "channel": "in_app" if s == "shown" else "email", "address": None, "language": "en",
             "jurisdiction": "europe", "state": s, "attempts": 0, "updated_us": 0} for i, s in enumerate(states)]
    rows.append({**rows[0], "dedupe_key": "c:u99:in_app", "user_id": "u99", "channel": "in_app"})
    with kit.ledger.transaction() as conn:
        conn.execute(insert(outbox), rows)
    text = kit.new_client().get("/metrics", headers=METRICS_AUTH).text
    assert value(text, "consentry_notice_outbox_pending", channel="email") == 4  # pending x2, sending, deferred
    assert value(text, "consentry_notice_outbox_pending", channel="in_app") == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    """Until `url` answers 200; AssertionError with the server's log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the center did not start: " + log.read_text()[-2000:])
        time.sleep(0.2)


def test_two_workers_add_up(tmp_path: Path, export_dir: Path) -> None:  # noqa: F811
    """uvicorn --workers 2 in multiprocess mode: every scrape sees every worker's objections."""
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(ledger_url) as led:
        _, key = ApiClients(led.engine).create("workers test")
    port = _free_port()
    metrics_dir = tmp_path / "prom"
    env = {
        **os.environ,
        "CONSENTRY_HOME": str(tmp_path),
        "CONSENTRY_SECRET_KEY": SECRET,
        "CONSENTRY_METRICS_TOKEN": METRICS_TOKEN,
        "CONSENTRY_CENTER_SETTINGS": json.dumps(
            {"data": str(export_dir), "ledger_url": ledger_url, "mail_dir": str(tmp_path / "mail")}
        ),
    }
    code = (
        "import sys, uvicorn; from consentry.center.metrics import prepare_multiprocess_dir;"
        f"prepare_multiprocess_dir(2);"
        f"uvicorn.run('consentry.center.asgi:app', host='127.0.0.1', port={port}, workers=2, log_level='warning')"
    )
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    log = open(tmp_path / "uvicorn.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/", proc, tmp_path / "uvicorn.log")
        n = 12
        for i in range(n):  # a new connection each time, so both workers take some
            r = httpx.post(f"{base}/api/v1/people/p{i}/objection", headers={"Authorization": f"Bearer {key}"}, timeout=10)
            assert r.status_code == 201, r.text
        # One file per live worker process, written when the worker starts (not at its first request:
        # CI dry run of 8a87503 sent all 12 objections to one worker and found one file).
        deadline = time.monotonic() + 15
        while len(workers := {f.name for f in metrics_dir.glob("gauge_livesum_*.db")}) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(6):  # whichever worker answers, the totals are the same
            text = httpx.get(f"{base}/metrics", headers=METRICS_AUTH, timeout=10).text
            assert value(text, "consentry_ledger_events_recorded_total", type="objected", channel="api") == n
            assert value(text, "consentry_http_requests_total", route=OBJECTION_ROUTE, method="POST", status="201") == n
        assert len(workers) == 2, workers
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
def test_serve_on_another_port_mails_links_to_that_port(tmp_path: Path, export_dir: Path) -> None:  # noqa: F811
    """`consentry serve --port 8765` without --base-url mailed sign-in links to
    http://127.0.0.1:8000: a person clicked and reached nothing. Without
    --base-url, links now point where the center listens."""
    import email
    import re

    from center_kit import EMAIL, csrf_from

    port = _free_port()
    env = {**os.environ, "CONSENTRY_HOME": str(tmp_path), "CONSENTRY_SECRET_KEY": SECRET}
    env.pop("CONSENTRY_LEDGER", None)
    mail_dir = tmp_path / "mail"
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "consentry"), "serve", "--data", str(export_dir), "--port", str(port),
         "--ledger", f"sqlite:///{tmp_path / 'l.db'}", "--mail-dir", str(mail_dir), "--platform", "Demo",
         "--controller-name", "Demo Ltd", "--controller-address", "1 Road, Dublin", "--dpo", "dpo@demo.example"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base + "/", proc, tmp_path / "serve.log")
        with httpx.Client(base_url=base, timeout=10) as client:
            r = client.post("/signin", data={"email": EMAIL[ALICE], "csrf": csrf_from(client.get("/").text)})
            assert r.status_code == 200, r.text
            deadline = time.monotonic() + 15
            while not list(mail_dir.glob("*.eml")):
                assert time.monotonic() < deadline, "no sign-in mail was written"
                time.sleep(0.1)
            msg = email.message_from_bytes(next(mail_dir.glob("*.eml")).read_bytes())
            text = next(p.get_payload(decode=True).decode() for p in msg.walk() if p.get_content_type() == "text/plain")
            link = re.search(r"https?://\S+/signin/\S+", text).group(0)
            assert link.startswith(f"{base}/signin/"), link
            assert client.get(link).status_code == 200  # the link opens this center's confirmation page
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_the_purge_backlog_shows_how_long_an_objection_has_waited_for_its_snapshot(
    center_factory: Callable[..., CenterKit], tmp_path: Path  # noqa: F811
) -> None:
    """Pages promise removal from built snapshots by --purge-within; nothing
    told the operator that a purge was behind. Per snapshot, /metrics gives the
    events its purges have not applied and how long the oldest has waited."""
    from consentry.policy import load_policy
    from consentry.snapshots import build, purge

    kit = center_factory()
    from datetime import UTC, datetime

    # At a cut-off in the past: a snapshot is never built at a later one (the center's plans 2030).
    build(kit.export, kit.ledger, load_policy("recommended"), datetime(2024, 6, 26, tzinfo=UTC), "s1", out=tmp_path / "s1")
    http = kit.new_client()
    text = http.get("/metrics", headers=METRICS_AUTH).text
    assert value(text, "consentry_purge_backlog_events", snapshot="s1") == 0
    assert value(text, "consentry_purge_backlog_seconds", snapshot="s1") == 0
    kit.record(ALICE, "objected")
    time.sleep(1.1)
    text = http.get("/metrics", headers=METRICS_AUTH).text
    assert value(text, "consentry_purge_backlog_events", snapshot="s1") == 1
    assert 1.0 <= value(text, "consentry_purge_backlog_seconds", snapshot="s1") < 60
    purge(kit.ledger, "s1")
    text = http.get("/metrics", headers=METRICS_AUTH).text
    assert value(text, "consentry_purge_backlog_events", snapshot="s1") == 0
    assert value(text, "consentry_purge_backlog_seconds", snapshot="s1") == 0
