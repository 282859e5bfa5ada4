"""The privacy center as real `consentry serve` processes, killed with SIGKILL:
what a person was told survives, and what is left behind does not serve on.

Real parts only: the `consentry` command in a process of its own, its SQLite
ledger, aiosmtpd (tests/smtp_server.py). Ports 18500-18599."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from center_kit import EMAIL, SECRET, csrf_from, export_dir  # noqa: F401  (fixture)
from consentry.access.tables import signin_links
from consentry.ledger import Ledger
from consentry.mail.tables import mail_outbox
from smtp_server import SmtpTestServer

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"


def free_port() -> int:
    """A port of 18500-18599 that nothing listens on now."""
    for port in range(18500, 18600):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 18500-18599")


class Serve:
    """`consentry serve` in a process of its own (its own process group, so
    that the test can always clean up whatever it leaves behind)."""

    def __init__(self, tmp_path: Path, data: Path, smtp: SmtpTestServer, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
        self.log_path = tmp_path / f"serve-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115
        env = {**os.environ, "CONSENTRY_HOME": str(tmp_path), "CONSENTRY_SECRET_KEY": SECRET}
        env.pop("CONSENTRY_LEDGER", None)
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "consentry"), "serve", "--data", str(data), "--port", str(self.port),
             "--ledger", self.ledger_url, "--smtp", f"smtp://{smtp.host}:{smtp.port}?sender=privacy@example.org",
             "--platform", "Pixgram", "--controller-name", "Pixgram Ltd", "--controller-address", "1 Road, Dublin",
             "--dpo", "dpo@pixgram.example", *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.group = self.proc.pid  # start_new_session: the group's id is the master's pid

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.base + "/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the center did not start: " + self.log_path.read_text()[-3000:])
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the master process only, as the OOM killer or `kill -9` does."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        try:
            os.killpg(self.group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)


def _living(pid: int) -> bool:
    """Running (a zombie that nobody reaped has stopped serving: it is not)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def smtp() -> SmtpTestServer:
    with SmtpTestServer() as server:
        yield server


# -- finding 1: a sign-in mail the page announced is never lost ------------------------------------------


def test_a_signin_answered_before_a_kill_has_its_link_and_mail_queued(
    tmp_path: Path, export_dir: Path, smtp: SmtpTestServer  # noqa: F811
) -> None:
    """A trial: 40 parallel sign-in requests, then `kill -9`: six people had
    read "check your mail" and had neither a link nor a queued mail, and asking
    again said a link was on its way. The link and its mail were written by a
    background task after the answer. Every 200 now comes after both are
    committed: the server is killed the instant the first answers arrive."""
    serve = Serve(tmp_path, export_dir, smtp, "--trusted-proxy", HOST)
    try:
        serve.wait_up()
        smtp.stop()  # no mail leaves: what was queued stays queued for the count below
        addresses = [EMAIL[u] for u in ("alice", "bob", "carol", "eve")]
        answered: list[str] = []
        killed = threading.Event()

        def ask(i: int, address: str) -> None:
            with httpx.Client(base_url=serve.base, timeout=10, headers={"X-Forwarded-For": f"10.9.0.{i}"}) as c:
                try:
                    token = csrf_from(c.get("/").text)
                    r = c.post("/signin", data={"email": address, "csrf": token})
                except httpx.HTTPError:
                    return  # killed before it answered: nothing was promised
                if r.status_code == 200 and not killed.is_set():
                    answered.append(address)
                    killed.set()
                    serve.kill()  # the moment the person reads "check your mail"

        threads = [threading.Thread(target=ask, args=(i, a)) for i, a in enumerate(addresses)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert answered, "no sign-in was answered: " + serve.log_path.read_text()[-2000:]
        with Ledger(serve.ledger_url) as led, led.reader.connect() as conn:
            for address in answered:
                links = conn.execute(select(func.count()).select_from(signin_links)
                                     .where(signin_links.c.subject == address)).scalar_one()
                mails = conn.execute(select(func.count()).select_from(mail_outbox)
                                     .where(mail_outbox.c.recipient == address, mail_outbox.c.kind == "signin")).scalar_one()
                assert (links, mails) == (1, 1), f"{address} was told a mail is coming: {links} links, {mails} mails queued"
    finally:
        serve.cleanup()


# -- finding 2: workers do not outlive their master --------------------------------------------------------


def test_workers_end_with_their_master_and_the_port_is_free_again(
    tmp_path: Path, export_dir: Path, smtp: SmtpTestServer  # noqa: F811
) -> None:
    """A trial: SIGKILL of the `--workers 2` master left both workers serving
    on its socket, and a restart failed with "Address already in use". A
    worker now watches its master and stops when it is gone."""
    serve = Serve(tmp_path, export_dir, smtp, "--workers", "2")
    try:
        serve.wait_up()
        deadline = time.monotonic() + 30
        while len(workers := [p for p in _children(serve.proc.pid) if _is_worker(p)]) < 2:
            assert time.monotonic() < deadline, f"two workers did not start: {workers}"
            time.sleep(0.2)
        serve.kill()
        deadline = time.monotonic() + 10
        while alive := [p for p in workers if _living(p)]:
            assert time.monotonic() < deadline, f"workers {alive} outlived their master"
            time.sleep(0.1)
        with pytest.raises(httpx.TransportError):
            httpx.get(serve.base + "/", timeout=2)
        with socket.socket() as s:  # as uvicorn binds on restart
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((HOST, serve.port))
            s.listen()
    finally:
        serve.cleanup()


def _is_worker(pid: int) -> bool:
    """A uvicorn worker (multiprocessing's spawn), not its resource tracker."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"spawn_main" in part for part in cmd)


# -- finding 3: a busy ledger is a 503 that says so -------------------------------------------------------


def test_a_busy_ledger_is_a_503_that_says_nothing_was_recorded(
    tmp_path: Path, export_dir: Path, smtp: SmtpTestServer  # noqa: F811
) -> None:
    """A trial: with another process holding `BEGIN EXCLUSIVE` on the ledger,
    an objection through the API and even the home page (an anonymous visit
    wrote a session) were plain-text 500s after 30 s, with a long traceback
    in the log. Now: the API's JSON error body, a page in the visitor's
    language, both 503 with Retry-After; one log line each, naming the route.
    And "nothing was recorded" stays true once the ledger is free again: the
    objection that waited in the group commit is never committed later. The
    home page writes nothing now (a visitor's session is a signed cookie):
    it is served at once."""
    import sqlite3

    from consentry.access import ApiClients
    from consentry.ledger import EventType

    serve = Serve(tmp_path, export_dir, smtp)
    serve.wait_up()
    try:
        with Ledger(serve.ledger_url) as led:
            _, key = ApiClients(led.engine).create("platform")
        visitor = httpx.Client(base_url=serve.base, headers={"Accept-Language": "de"}, timeout=120)
        token = csrf_from(visitor.get("/").text)
        holder = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # as an import, a backup or a sqlite3 shell would
        answers: dict[str, httpx.Response] = {}

        def objection() -> None:
            answers["api"] = httpx.post(f"{serve.base}/api/v1/people/alice/objection", json={"note": "no"},
                                        headers={"Authorization": f"Bearer {key}"}, timeout=120)

        def signin() -> None:
            answers["page"] = visitor.post("/signin", data={"csrf": token, "email": "alice@example.org"})

        def home() -> None:
            t0 = time.monotonic()
            answers["home"] = httpx.get(f"{serve.base}/", timeout=120)
            answers["home"].elapsed_s = time.monotonic() - t0  # type: ignore[attr-defined]

        threads = [threading.Thread(target=f) for f in (objection, signin, home)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        holder.rollback()
        holder.close()

        api, page, home_page = answers["api"], answers["page"], answers["home"]
        assert home_page.status_code == 200 and home_page.elapsed_s < 5, (home_page.status_code, home_page.elapsed_s)
        assert api.status_code == 503 and api.headers["content-type"] == "application/json", (api.status_code, api.text)
        assert "busy" in api.json()["detail"] and "nothing was recorded" in api.json()["detail"]
        assert api.json()["code"] == "ledger_busy"
        assert int(api.headers["retry-after"]) > 0
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html"), page.text[:300]
        assert '<html lang="de">' in page.text and "Nichts" in page.text, page.text
        assert int(page.headers["retry-after"]) > 0

        time.sleep(3)  # the group commit tries the objection again once the ledger is free: it must not commit it
        with Ledger(serve.ledger_url) as led:
            assert [e for e in led.history("alice") if e.type == EventType.objected] == []
        ok = httpx.post(f"{serve.base}/api/v1/people/alice/objection", headers={"Authorization": f"Bearer {key}"},
                        timeout=30)
        assert ok.status_code == 201, ok.text

        log = serve.log_path.read_text()
        busy = [line for line in log.splitlines() if "the ledger is busy" in line]
        assert any("POST /api/v1/people/{user_id}/objection" in line for line in busy), log[-3000:]
        assert any("POST /signin:" in line for line in busy), log[-3000:]
        assert "Traceback" not in log and "Internal Server Error" not in log, log[-3000:]
    finally:
        serve.cleanup()
