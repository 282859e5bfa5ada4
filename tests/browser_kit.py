"""Helpers for the real-browser tests (tests/center/test_browser.py): the privacy
center served by uvicorn on 127.0.0.1, Debian's Chromium driven by Playwright,
links read from mails a real SMTP server received, and axe-core checks.

No pytest fixtures here (they live in test_browser.py), so a script can use it
too. What the tests need from outside Python, and how to install it:

    apt-get install -y chromium                 # /usr/bin/chromium
    .venv/bin/pip install playwright            # the Python package only; never `playwright install`
    npm ci --prefix tests/browser               # axe-core, pinned in tests/browser/package-lock.json
"""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

from center_kit import Mail
from consentry.audit.report import chromium_binary

HERE = Path(__file__).parent
AXE_JS = HERE / "browser" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
INSTALL_HINT = {
    "playwright": "the Python package `playwright` (`.venv/bin/pip install playwright`; do not run `playwright install`)",
    "chromium": "Chromium (`apt-get install -y chromium`, which gives /usr/bin/chromium; or set CONSENTRY_CHROMIUM to a Chromium binary)",
    "axe": f"axe-core (`npm ci --prefix tests/browser`, which gives {AXE_JS.relative_to(HERE.parent)})",
}


def chromium_path() -> str | None:
    """The same Chromium the report's PDF printing uses."""
    return chromium_binary()


def missing_prerequisites(*, axe: bool) -> list[str]:
    """What is not installed, as install hints; empty when the browser tests can run.
    axe: also axe-core, which only the accessibility checks need."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append(INSTALL_HINT["playwright"])
    if chromium_path() is None:
        missing.append(INSTALL_HINT["chromium"])
    if axe and not AXE_JS.is_file():
        missing.append(INSTALL_HINT["axe"])
    return missing


# -- the app in a real HTTP server ------------------------------------------------------------


class AppServer:
    """uvicorn serving an ASGI app in a thread, on a socket bound before the app
    is built (so its base_url, used in mailed links, is known and no port race)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, app: Any, timeout: float = 20.0) -> AppServer:
        import uvicorn

        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)

        def run() -> None:
            try:
                self._server.run(sockets=[self.sock])
            except BaseException as exc:  # noqa: BLE001 - reported by start()
                self._error = exc

        self._thread = threading.Thread(target=run, name="uvicorn-test", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"uvicorn did not start: {self._error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within {timeout} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()


# -- mail --------------------------------------------------------------------------------------


def wait_for_mail(smtp: Any, to: str, kind: str, *, after: int = 0, timeout: float = 15.0) -> Mail:
    """The first mail of `kind` to `to` among the server's messages from index `after` on."""
    deadline = time.monotonic() + timeout
    while True:
        for received in smtp.messages[after:]:
            mail = Mail.of(received)  # center_kit's: the one reading of a mail the tests share
            if mail.kind == kind and to.lower() in [r.lower() for r in received.rcpt_tos]:
                return mail
        if time.monotonic() > deadline:
            seen = [(r.rcpt_tos, r.message["X-Consentry-Kind"]) for r in smtp.messages[after:]]
            raise AssertionError(f"no {kind!r} mail to {to} within {timeout} s; got {seen}")
        time.sleep(0.05)


def link_in(text: str, base_url: str) -> str:
    """The one link into the center in a mail's text."""
    links = re.findall(re.escape(base_url) + r"/\S+", text)
    assert len(links) == 1, f"expected one link to {base_url} in the mail, got {links}:\n{text}"
    return links[0]


# -- accessibility -----------------------------------------------------------------------------

BLOCKING_IMPACTS = ("serious", "critical")


def axe_violations(page: Any) -> list[dict]:
    """Run axe-core on the page as it is now; every violation it reports.

    The script is added with add_script_tag(path=...), which Playwright inserts
    as an inline <script>: the center's CSP (no 'unsafe-inline') blocks it
    unless the browser context was made with bypass_csp=True.
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            raise AssertionError("axe-core did not load (blocked by the page's CSP? use bypass_csp=True)")
    return page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target, impact: n.impact, html: n.html,
                                          summary: n.failureSummary})),
            }));
        }"""
    )


def blocking(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in BLOCKING_IMPACTS]


def describe(violations: list[dict], where: str) -> str:
    lines = [f"{len(violations)} serious or critical axe violation(s) on {where}:"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v['helpUrl']}]")
        for n in v["nodes"]:
            lines.append(f"    {' '.join(map(str, n['target']))}: {n['html'][:200]}")
            if n.get("summary"):
                lines.extend("      " + s for s in n["summary"].splitlines())
    return "\n".join(lines)
