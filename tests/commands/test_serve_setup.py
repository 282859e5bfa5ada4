"""`consentry serve` set up as an operator does it (operator trial): every bad
setting refused before the center is announced, named as the operator set it;
a mail server that is only down does not keep the center (and its objection
endpoint) down."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import smtp_server
from center_kit import export_dir  # noqa: F401  (fixture)
from consentry.cli import app

pytestmark = pytest.mark.slow  # starts the center

KEY = "k9fT2xQ7mZ4pL8sV1bN6cR3wY0hJ5dG2"


def serve(tmp_path: Path, data: Path, *args: str, env: dict | None = None):  # noqa: ANN201 - a click Result
    base = ["serve", "--data", str(data), "--ledger", f"sqlite:///{tmp_path / 'l.db'}", "--port", str(smtp_server.free_port())]
    return CliRunner(env={"CONSENTRY_SECRET_KEY": KEY, "COLUMNS": "300", **(env or {})}).invoke(app, [*base, *args])


def said(r) -> str:  # noqa: ANN001
    return " ".join((r.stdout + r.stderr).split())


def test_a_secret_key_anyone_could_guess_is_refused(tmp_path: Path, export_dir: Path) -> None:  # noqa: F811
    """40 spaces (an unfilled template) started a center whose links and sessions anyone could sign."""
    for weak in (" " * 40, "k" * 40):
        r = serve(tmp_path, export_dir, "--mail-dir", str(tmp_path), env={"CONSENTRY_SECRET_KEY": weak})
        assert r.exit_code == 2 and "$CONSENTRY_SECRET_KEY has only" in said(r) and "can be guessed" in said(r), said(r)
        assert "privacy center on" not in said(r)


def test_a_setting_from_the_environment_is_named_as_such(tmp_path: Path, export_dir: Path) -> None:  # noqa: F811
    """'--metrics-token: ... at least 16 characters' with no such option given: the operator looked for a flag."""
    r = serve(tmp_path, export_dir, "--mail-dir", str(tmp_path), env={"CONSENTRY_METRICS_TOKEN": "abc"})
    assert r.exit_code == 2 and "$CONSENTRY_METRICS_TOKEN: " in said(r) and "--metrics-token" not in said(r), said(r)
    r = serve(tmp_path, export_dir, "--mail-dir", str(tmp_path), env={"CONSENTRY_RECEIPT_KEY": "/nope.pem"})
    assert r.exit_code == 2 and "$CONSENTRY_RECEIPT_KEY: " in said(r) and "--receipt-key" not in said(r), said(r)
    r = serve(tmp_path, export_dir, "--mail-dir", str(tmp_path), "--metrics-token", "abc")
    assert r.exit_code == 2 and "--metrics-token: " in said(r), said(r)


def test_a_password_on_the_command_line_is_pointed_out(tmp_path: Path, export_dir: Path) -> None:  # noqa: F811
    """The README's own --smtp user:pass@... put the password in every local user's process list."""
    r = serve(tmp_path, export_dir, "--mail-dir", str(tmp_path), "--smtp",
              "smtp+starttls://mailer:Sup3rSecret@127.0.0.1:25?sender=p@example.org", "--metrics-token", "abc")
    assert "--smtp carries a password, which every local user can read in the process list" in said(r), said(r)
    assert "pass the URL in $CONSENTRY_SMTP instead" in said(r) and "Sup3rSecret" not in said(r)


@pytest.mark.parametrize("ledger, why", [
    ("sqlite:////nonexistent/dir/x.db", "the folder /nonexistent/dir does not exist"),
    ("NOTDB", "is not a SQLite database"),
])
def test_a_ledger_that_cannot_be_opened_is_refused_before_the_center_is_announced(
        tmp_path: Path, export_dir: Path, ledger: str, why: str) -> None:  # noqa: F811
    """With --workers 2 each worker failed on the ledger and was restarted, for ever, after "privacy center
    on ..." was printed, with nothing listening; a file that is not SQLite gave a 171-line traceback."""
    if ledger == "NOTDB":
        (tmp_path / "users.parquet").write_bytes(b"PAR1 not a database")
        ledger = f"sqlite:///{tmp_path / 'users.parquet'}"
    r = serve(tmp_path, export_dir, "--mail-dir", str(tmp_path), "--workers", "2", "--ledger", ledger)
    assert r.exit_code == 2, said(r)
    assert why in said(r) and "Traceback" not in said(r) and "privacy center on" not in said(r), said(r)


def test_a_mail_server_that_is_down_is_warned_of_and_the_center_starts(tmp_path: Path, export_dir: Path) -> None:  # noqa: F811
    """A restart during a mail outage kept the whole center down ("not starting: the mail server check
    failed ... Connection refused"), its objection endpoint with it, though the outbox holds mail through
    outages. Now it warns and serves; a host that does not resolve is still a mistake, and refused."""
    down = smtp_server.free_port()
    r = serve(tmp_path, export_dir, "--smtp", "smtp://nosuchhost.invalid:25?sender=p@example.org")
    assert r.exit_code == 2 and "cannot be found" in said(r) and "privacy center on" not in said(r), said(r)
    port = smtp_server.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from consentry.cli import app; app()", "serve", "--data", str(export_dir),
         "--ledger", f"sqlite:///{tmp_path / 'l.db'}", "--port", str(port),
         "--smtp", f"smtp://127.0.0.1:{down}?sender=p@example.org"],
        env={**os.environ, "CONSENTRY_SECRET_KEY": KEY, "COLUMNS": "300"}, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "privacy center on" in line or not line:
                break
        text = " ".join("".join(lines).split())
        assert "warning: the mail server does not answer now" in text and "starting anyway" in text, text
        assert f"privacy center on http://127.0.0.1:{port}" in text, text
        import httpx

        for _ in range(100):
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("the center did not answer")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_past_cutoff_and_metrics_off_are_said_at_start(tmp_path: Path, export_dir: Path,  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial: `serve --cutoff 2024-06-26` started without a word, and its pages then spoke of
    that date as the next build; /metrics, off without a token, was not mentioned either."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)  # everything up to serving, not the serving
    r = serve(tmp_path, export_dir, "--mail-dir", str(tmp_path), "--cutoff", "2024-06-26T00:00:00Z")
    assert r.exit_code == 0, said(r)
    assert "the cut-off 2024-06-26T00:00:00Z has passed" in said(r), said(r)
    assert "/metrics is off; set --metrics-token" in said(r), said(r)
    r = serve(tmp_path, export_dir, "--mail-dir", str(tmp_path), "--cutoff", "2099-01-01T00:00:00Z",
              "--metrics-token", "a-metrics-token-0123456789")
    assert r.exit_code == 0 and "has passed" not in said(r) and "/metrics is off" not in said(r), said(r)
