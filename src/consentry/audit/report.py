"""The accountability report for the data protection officer: one self-contained
HTML file (styles and charts inline) and a PDF of it printed by Chromium.

Every number comes from a function in `queries`, so a test can recompute it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .. import config
from ..engine.rules import MEANING, ORDER, Reason
from ..errors import InputError
from ..ledger import Ledger
from ..ledger.store import redact_url
from ..policy import Policy
from ..snapshots import Backlog, Registry, on_disk, purge_backlog
from ..sources import Export
from ..timeutil import iso
from . import charts, queries
from .log import VerifyResult, require_intact
from .render import environment

PDF_TIMEOUT_S = 120


@dataclass
class Report:
    at: datetime
    generated: datetime
    policy: Policy
    ledger_url: str
    watermark: int
    notices: list[queries.NoticeRow]
    trend: queries.Trend
    effect: queries.EffectTimes
    purge: queries.PurgeTimes
    lifecycle: queries.Lifecycle
    exclusions: queries.Exclusions | None
    # Purges still owed when the report was generated (the timed purges above are only the finished ones).
    backlog: list[Backlog] = field(default_factory=list)
    charts: dict[str, str] = field(default_factory=dict)
    audit: VerifyResult | None = None  # the chain as verified before counting: the report refuses a broken one
    #: Snapshots not on disk as recorded (name -> state, problem): their recorded counts are not what is there.
    disk: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def outbox_later(self) -> bool:
        """The notice outbox holds states as they are now, not at T: say so when T is past."""
        return self.at < self.generated - timedelta(minutes=1)


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    pdf: Path | None
    pdf_skipped: str | None  # why there is no PDF, in words for the person who ran it


def build_report(ledger: Ledger, policy: Policy, at: datetime, *, export: Export | None = None,
                 public_key: bytes | Path | None = None, checkpoints: Path | None = None) -> Report:
    """Gather every section's numbers at cut-off T, and draw the charts; from
    a ledger whose audit log verifies (else LedgerError), at a T no later
    than now: a report states what happened, and counts at a later T (who is
    eligible, who is a minor) would be a forecast stated as fact."""
    if at > (now := datetime.now(UTC)):
        raise InputError(f"the report time {iso(at)} is later than now ({iso(now)}): a report states what happened, "
                         "and its counts at a later time would be a forecast",
                         fix="report at a time no later than now (`consentry evaluate --at` decides at any time)")
    audit = require_intact(ledger, "report", public_key=public_key, checkpoints=checkpoints)
    eng = ledger.reader
    excl = None
    if export is not None:
        with tempfile.TemporaryDirectory(prefix="consentry-report-") as work:
            excl = queries.exclusions(export, ledger, policy, at, Path(work))
    report = Report(
        at=at,
        generated=datetime.now(UTC),
        policy=policy,
        ledger_url=redact_url(ledger.url),
        watermark=excl.watermark if excl else queries.watermark(eng),
        notices=queries.notices(eng),
        trend=queries.trend(eng, at),
        effect=queries.objection_effect(eng, at),
        purge=queries.objection_to_purge(eng, at),
        lifecycle=queries.lifecycle(eng, at),
        exclusions=excl,
        backlog=[b for b in purge_backlog(eng) if b.events],
        audit=audit,
    )
    report.disk = {rec.name: (state, problem.replace("\n  fix: ", ". Fix: ")) for rec in Registry(ledger).all()
                   for state, problem in [on_disk(rec)] if problem is not None}
    report.charts = _charts(report)
    return report


def _charts(r: Report) -> dict[str, str]:
    out: dict[str, str] = {}
    if r.trend.periods:
        out["trend"] = charts.events_over_time(r.trend.periods, r.trend.series, r.trend.unit)
    if r.notices:
        per: dict[str, list[int]] = {}
        for n in r.notices:
            v = per.setdefault(n.jurisdiction, [0, 0, 0])
            v[0] += n.delivered
            v[1] += n.failed
            v[2] += n.pending
        names = sorted(per)
        out["notices"] = charts.stacked_bars(
            names,
            {"delivered": [per[j][0] for j in names], "failed": [per[j][1] for j in names],
             "not yet sent": [per[j][2] for j in names]},
            "notices",
            palette=charts.STATUS,
        )
    if r.exclusions is not None:
        reasons = [x.value for x in ORDER if x is not Reason.eligible and r.exclusions.total(x.value)]
        if reasons:
            out["exclusions"] = charts.stacked_bars(
                reasons,
                {j: [r.exclusions.counts.get((j, x), 0) for x in reasons] for j in r.exclusions.jurisdictions},
                "items excluded",
                horizontal=True,
            )
    return out


def render_html(report: Report) -> str:
    env = environment(html=True)
    return env.get_template("report.html.j2").render(
        r=report, iso=iso, order=ORDER, meaning=MEANING, live_channels=queries.LIVE_CHANNELS, Reason=Reason,
    )


def write_report(report: Report, out_dir: Path, *, pdf: bool = True) -> ReportFiles:
    """report.html, and report.pdf unless Chromium is missing or fails (then say why)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "report.html"
    _atomic_write(html_path, render_html(report))
    pdf_path = out_dir / "report.pdf"
    problem = print_pdf(html_path, pdf_path) if pdf else "a PDF was not asked for"
    if problem is not None and pdf_path.exists():
        # An older report's PDF beside this HTML would be taken for this one.
        pdf_path.unlink()
        problem += "; the report.pdf of an earlier report in that folder was deleted"
    return ReportFiles(html_path, None if problem else pdf_path, problem)


def chromium_binary() -> str | None:
    """CONSENTRY_CHROMIUM, else Debian's /usr/bin/chromium, else chromium on PATH."""
    explicit = config.chromium()
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def print_pdf(html_path: Path, pdf_path: Path, *, binary: str | None = None) -> str | None:
    """Print the HTML to PDF with headless Chromium. None on success, else the
    reason it was skipped (the HTML is complete on its own either way)."""
    binary = binary or chromium_binary()
    if binary is None and (explicit := config.chromium()):
        # Set but unusable: the other places were not looked at, so do not say they were.
        why = "is not an executable file" if os.path.exists(explicit) else "does not exist"
        return (f"$CONSENTRY_CHROMIUM ({explicit}) {why}; point it at Chromium's binary, "
                "or unset it to use /usr/bin/chromium or chromium on PATH")
    if binary is None:
        return (
            "Chromium was not found (looked at /usr/bin/chromium and PATH; $CONSENTRY_CHROMIUM is not set); "
            "install it with `apt-get install chromium`, or print report.html from any browser"
        )
    tmp = pdf_path.with_name(f".{pdf_path.name}.{os.getpid()}.tmp")
    with tempfile.TemporaryDirectory(prefix="consentry-chromium-") as profile:
        cmd = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            f"--user-data-dir={profile}", f"--print-to-pdf={tmp}", html_path.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=PDF_TIMEOUT_S, check=False)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as exc:
            tmp.unlink(missing_ok=True)
            return f"Chromium ({binary}) could not print the PDF: {exc}"
    if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        return f"Chromium ({binary}) exited with code {done.returncode} without a PDF: {tail[0]}"
    os.replace(tmp, pdf_path)
    return None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
