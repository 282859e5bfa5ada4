"""The DPO's accountability report (issue #6 part 2): every number against an
independent query of the ledger, the HTML self-contained, the PDF printed by
Chromium, and the page really rendered in a browser."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import typer
from sqlalchemy import insert, text
from typer.testing import CliRunner

from browser_kit import CHROMIUM_ARGS, chromium_path, missing_prerequisites
from consentry.audit import build_report, render_html, write_report
from consentry.audit import queries
from consentry.commands.audit import top as accountability_commands
from consentry.engine import evaluate
from consentry.generate import generate
from consentry.ledger import Channel, EventType, Ledger, NewEvent
from consentry.ledger import chain
from consentry.notices.tables import outbox
from consentry.policy import load_policy
from consentry.snapshots.tables import models, purged_people, snapshot_purges, snapshots
from consentry.sources import Export
from consentry.timeutil import to_micros

T = datetime(2024, 6, 26, tzinfo=UTC)
LIVE_DELAYS_MS = [5, 12, 40, 90, 250, 700, 1500]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "export"
    generate(out, 300, seed=11, media=0)
    return out


def fill(led: Ledger, export_dir: Path) -> dict:
    """The generator's events, live objections with known delays, notices, snapshots, purges, models."""
    led.import_jsonl(export_dir / "events.jsonl")
    now = datetime.now(UTC)
    rng = np.random.default_rng(5)
    users = [f"u{n:07d}" for n in rng.choice(300, size=len(LIVE_DELAYS_MS), replace=False)]
    live = led.append(
        NewEvent(user_id=u, type=EventType.objected, at=now - timedelta(milliseconds=ms),
                 channel=[Channel.web, Channel.api][i % 2], event_id=f"live-{i}")
        for i, (u, ms) in enumerate(zip(users, LIVE_DELAYS_MS, strict=True))
    )
    states = ["sent", "bounced", "pending", "shown", "sent", "deferred"]
    rows = []
    for i in range(60):
        channel = "in_app" if states[i % 6] == "shown" else "email"
        rows.append({
            "dedupe_key": f"c1:u{i}:{channel}", "campaign_id": "c1", "user_id": f"u{i:07d}", "channel": channel,
            "address": None, "language": ["en", "de", "nl"][i % 3], "jurisdiction": ["europe", "rest_of_world"][i % 2],
            "state": states[i % 6], "attempts": 1, "updated_us": to_micros(now),
        })
    t_us = to_micros(now)
    # A delivered notice has its notified event, written with it (`audit verify` checks the outbox against them).
    led.append(NewEvent(event_id=f"notice:c1:{r['user_id']}:{r['channel']}", user_id=r["user_id"], type=EventType.notified,
                        at=now - timedelta(seconds=5), channel=r["channel"]) for r in rows if r["state"] in ("sent", "shown"))
    with led.transaction() as conn:
        conn.execute(insert(outbox), rows)
        conn.execute(insert(snapshots), [
            {"name": s, "uri": f"file:///snap/{s}", "policy_name": "recommended", "policy_hash": "sha256:x",
             "cutoff_us": to_micros(T) - 10**9, "watermark": w, "built_us": to_micros(T) - 10**9, "rows": n,
             "rows_built": 100, "digest": "d", "table_version": 1, "manifest": json.dumps({
                 "name": s, "policy": "recommended", "policy_hash": "sha256:x", "transforms_enabled": {},
                 "cutoff": "2024-06-25T23:43:20Z", "watermark": w, "built_at": "2024-06-25T23:43:20Z", "export": "/nowhere",
                 "buckets": 1, "rows": n, "rows_built": 100, "digest": "d", "decisions": {}, "table_version": 1})}
            for s, n, w in (("snap-a", 90, 2), ("snap-b", 100, 2))
        ])
        # snap-a: one purge removing 10 rows at T - 100 s; snap-b: a purge that removed nothing.
        conn.execute(insert(snapshot_purges), [
            {"id": 1, "snapshot": "snap-a", "started_us": to_micros(T) - 2 * 10**8, "finished_us": to_micros(T) - 10**8,
             "from_watermark": 1, "to_watermark": 2, "people": 3, "rows_removed": 10, "files_removed": 1,
             "table_version": 2, "counts": "{}"},
            {"id": 2, "snapshot": "snap-b", "started_us": to_micros(T) - 2 * 10**8, "finished_us": to_micros(T) - 10**8,
             "from_watermark": 1, "to_watermark": 2, "people": 0, "rows_removed": 0, "files_removed": 0,
             "table_version": 2, "counts": "{}"},
        ])
        # Models: trained on snap-a before its purge (flagged), after it (not: on the version it left), on snap-b
        # (its purge removed nothing).
        conn.execute(insert(models), [
            {"name": n, "snapshot": s, "table_version": v, "digest": "d", "rows": 100, "registered_us": r}
            for n, s, r, v in [("m-before", "snap-a", to_micros(T) - 5 * 10**8, 1),
                               ("m-after", "snap-a", to_micros(T) - 10**7, 2), ("m-b", "snap-b", to_micros(T) - 5 * 10**8, 1)]
        ])
    # The audit records consentry writes with those rows (`audit verify` checks the tables against them).
    with led.transaction() as conn:
        for name in ("snap-a", "snap-b"):
            chain.append(conn, [chain.Record("snapshot_built", {"name": name, "rows": 100, "digest": "d", "watermark": 1})],
                         at=T - timedelta(seconds=1000))
        for pid, name, people, removed, files in ((1, "snap-a", 3, 10, 1), (2, "snap-b", 0, 0, 0)):
            chain.append(conn, [chain.Record("snapshot_purged", {
                "name": name, "purge_id": pid, "from_watermark": 1, "to_watermark": 2, "people": people,
                "rows_removed": removed, "files_removed": files, "counts": {}, "digest": "d"})], at=T - timedelta(seconds=100))
        for name, snap, secs, version in (("m-before", "snap-a", 500, 1), ("m-after", "snap-a", 10, 2),
                                          ("m-b", "snap-b", 500, 1)):
            chain.append(conn, [chain.Record("model_registered", {
                "name": name, "snapshot": snap, "table_version": version, "digest": "d", "rows": 100, "mlflow_run": None})],
                at=T - timedelta(seconds=secs))
    # Purged people: two set off by imported objections at or before T, one by a live objection (just now).
    with led.reader.connect() as conn:
        triggers = conn.execute(text(
            "SELECT seq FROM ledger_events WHERE type = 'objected' AND at_us <= :t ORDER BY seq LIMIT 2"
        ), {"t": to_micros(T)}).scalars().all()
    with led.transaction() as conn:
        conn.execute(insert(purged_people), [
            {"snapshot": "snap-a", "user_id": f"p{i}", "purge_id": 1, "cause": "objected", "trigger_seq": seq,
             "rows": 5, "purged_us": to_micros(T) - 10**8 if i < 2 else t_us}
            for i, seq in enumerate([*triggers, live[0].seq])
        ])
    return {"live": live, "now": now, "t_us": t_us}


# -- the numbers -------------------------------------------------------------------------------


def nearest_rank(values: list[int], p: float) -> int:
    return int(np.percentile(np.array(values), p, method="inverted_cdf"))


@pytest.mark.slow
def test_report_numbers_match_the_ledger(ledger_url: str, export_dir: Path) -> None:
    with Ledger(ledger_url) as led:
        fill(led, export_dir)
        now = datetime.now(UTC)  # a T after the live objections (a later one would be refused: a forecast)
        rep = build_report(led, load_policy("recommended"), now)
        with led.reader.connect() as conn:
            by_type = dict(conn.execute(text(
                "SELECT type, count(*) FROM ledger_events WHERE at_us <= :t GROUP BY type"), {"t": to_micros(now)}).all())
            outbox_rows = conn.execute(text(
                "SELECT jurisdiction, language, channel, state, count(*) FROM notice_outbox GROUP BY 1, 2, 3, 4")).all()
            live = conn.execute(text(
                "SELECT recorded_us - at_us FROM ledger_events WHERE type = 'objected' "
                "AND channel IN ('web','api','email','in_app','cli') AND imported_from IS NULL AND at_us <= :t"),
                {"t": to_micros(now)}).scalars().all()
            # Written by `ledger import`, whatever channel the file gave: never timed (CONTRACT §2).
            imported = conn.execute(text(
                "SELECT count(*) FROM ledger_events WHERE type = 'objected' "
                "AND (channel = 'import' OR imported_from IS NOT NULL) AND at_us <= :t"),
                {"t": to_micros(now)}).scalar_one()
            imported_by_type = dict(conn.execute(text(
                "SELECT type, count(*) FROM ledger_events WHERE imported_from IS NOT NULL AND at_us <= :t GROUP BY type"),
                {"t": to_micros(now)}).all())
            purge_delays = conn.execute(text(
                "SELECT p.purged_us - e.at_us FROM purged_people p JOIN ledger_events e ON e.seq = p.trigger_seq "
                "WHERE e.imported_from IS NULL")).scalars().all()
            purged_by_import = conn.execute(text(
                "SELECT count(*) FROM purged_people p JOIN ledger_events e ON e.seq = p.trigger_seq "
                "WHERE e.imported_from IS NOT NULL")).scalar_one()

    # what people said
    assert {k: v for k, v in rep.trend.totals.items() if v} == by_type
    for typ in queries.TREND_TYPES:
        assert sum(rep.trend.series.get(typ, [])) == by_type.get(typ, 0), typ
    # notices: delivered = sent + shown, failed = bounced, per jurisdiction/language/channel
    expect: dict[tuple, list[int]] = {}
    for j, lang, ch, state, n in outbox_rows:
        row = expect.setdefault((j, lang, ch), [0, 0, 0])
        row[0] += n
        row[1] += n if state in ("sent", "shown") else 0
        row[2] += n if state == "bounced" else 0
    assert {(n.jurisdiction, n.language, n.channel): [n.planned, n.delivered, n.failed] for n in rep.notices} == expect
    # time to effect
    assert len(live) >= len(LIVE_DELAYS_MS)
    assert rep.effect.live.count == len(live)
    assert rep.effect.live.p50_us == nearest_rank(live, 50)
    assert rep.effect.live.p99_us == nearest_rank(live, 99)
    assert rep.effect.imported == imported
    assert rep.effect.late == sum(1 for v in live if v > 86_400 * 10**6)
    assert rep.effect.live.p50_us >= 0
    # objection to purge: imported triggers are not timed (CONTRACT §2; the DPO trial saw 898.5 days, an import's
    # receipt date, as the slowest removal), and causes are the events' types
    assert rep.purge.overall.count == len(purge_delays) == 1 and rep.purge.imported == purged_by_import == 2
    assert rep.purge.overall.p50_us == nearest_rank(purge_delays, 50) and 0 <= purge_delays[0] < 60 * 10**6
    assert list(rep.purge.by_cause) == ["objected"]
    # snapshots, purges, flagged models
    assert [s.name for s in rep.lifecycle.snapshots] == ["snap-a", "snap-b"]
    assert rep.lifecycle.purges == 2 and rep.lifecycle.rows_removed == 10
    # per snapshot: it showed the rows now (90) as the rows removed, and 90 people removed
    a, b = rep.lifecycle.snapshots
    assert (a.rows_built, a.rows_now, a.purges, a.rows_removed, a.people_removed) == (100, 90, 1, 10, 3)
    assert (b.rows_built, b.rows_now, b.purges, b.rows_removed, b.people_removed) == (100, 100, 1, 0, 0)
    html = render_html(rep)  # the summary cards agree with their counts: it said "1 models flagged"
    # What people said: the events `ledger import` wrote are counted apart. The table showed the 133 imported
    # objections of a demo under the channels their file gave (web 66, ...) and "import 0", while section 3
    # called all of them imported.
    assert imported_by_type and rep.trend.imported == imported_by_type
    assert imported_by_type["objected"] < by_type["objected"]  # the live ones are not among them
    for typ, n in imported_by_type.items():
        assert f'data-key="imported:{typ}">{n:,}<' in html, typ
    # purges still owed: both snapshots stand at event #2; the times above covered finished purges only
    wm = rep.watermark
    assert [(x.snapshot, x.events) for x in rep.backlog] == [("snap-a", wm - 2), ("snap-b", wm - 2)]
    assert "a snapshot's \"rows now\" is its row count when this report was generated" in html.replace("&#34;", '"')
    assert 'id="purge-backlog"' in html and f"snap-a: {wm - 2:,} ledger events its purges have not applied" in html
    assert 'id="sum-flagged">1</span>model flagged<' in html and 'id="sum-purges">2</span>snapshot purges<' in html
    assert [m.name for m in rep.lifecycle.flagged] == ["m-before"]
    assert rep.lifecycle.flagged[0].rows_removed_since == 10
    assert 'data-key="purge:imported">2</span> removals were set off by imported events' in html


@pytest.mark.slow
def test_a_report_before_the_purge_flags_nothing(ledger: Ledger, export_dir: Path) -> None:
    fill(ledger, export_dir)
    rep = build_report(ledger, load_policy("recommended"), T - timedelta(seconds=200))
    assert rep.lifecycle.purges == 0 and rep.lifecycle.flagged == []
    assert rep.purge.overall.count == 0
    assert 'id="no-purges"' in render_html(rep)
    # Before both snapshots were built: none counted, and the page does not say there are none ("No snapshot
    # has been built from this ledger yet", with two in the registry).
    early = build_report(ledger, load_policy("recommended"), T - timedelta(seconds=2000))
    assert early.lifecycle.snapshots == [] and early.lifecycle.built_after == 2
    html = render_html(early)
    assert "No snapshot was built at or before T; 2 were built after it" in html and "has been built" not in html


@pytest.mark.slow
def test_exclusions_per_reason_and_jurisdiction_match_the_engine(ledger: Ledger, export_dir: Path, tmp_path: Path) -> None:
    import duckdb

    fill(ledger, export_dir)
    pol = load_policy("meta-2024")
    export = Export(export_dir)
    rep = build_report(ledger, pol, T, export=export)
    assert rep.exclusions is not None
    # Independently: the engine's decisions file, joined to users in DuckDB, jurisdiction mapped in Python.
    evaluate(export, ledger, pol, T, tmp_path / "d.parquet")
    con = duckdb.connect()
    country = dict(con.execute(f"SELECT user_id, country FROM read_parquet('{export_dir}/users.parquet')").fetchall())
    expect: dict[tuple[str, str], int] = {}
    for user_id, reason in con.execute(f"SELECT user_id, reason FROM read_parquet('{tmp_path}/d.parquet')").fetchall():
        key = (pol.jurisdiction_for(country[user_id]).name, reason)
        expect[key] = expect.get(key, 0) + 1
    assert rep.exclusions.counts == expect
    assert len({r for _, r in expect}) > 3  # the data exercises several reasons
    html = render_html(rep)
    for (j, reason), n in expect.items():
        assert re.search(rf'data-key="excl:{j}:{reason}">{n:,}<', html), (j, reason)
    assert 'id="chart-exclusions"' in html


# -- the files ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_html_is_self_contained_and_pdf_is_printed(ledger: Ledger, export_dir: Path, tmp_path: Path) -> None:
    if chromium_path() is None:
        pytest.skip("no Chromium: apt-get install -y chromium")
    fill(ledger, export_dir)
    rep = build_report(ledger, load_policy("recommended"), T, export=Export(export_dir))
    files = write_report(rep, tmp_path / "out")
    html = files.html.read_text()
    srcs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs), srcs
    assert "<style>" in html and "<script" not in html
    assert len(re.findall(r"<img ", html)) == 3  # notices, trend, exclusions
    assert files.pdf is not None and files.pdf_skipped is None
    pdf = files.pdf.read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000  # text plus three raster charts


@pytest.mark.slow
def test_no_pdf_removes_an_earlier_reports_pdf(ledger: Ledger, export_dir: Path, tmp_path: Path) -> None:
    """DPO trial: `report --no-pdf` into a folder left the report.pdf of an
    earlier report (another T) beside the new HTML, and said "no PDF"."""
    fill(ledger, export_dir)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.pdf").write_bytes(b"%PDF an earlier report")
    files = write_report(build_report(ledger, load_policy("recommended"), T), tmp_path / "out", pdf=False)
    assert files.pdf is None and not (tmp_path / "out" / "report.pdf").exists()
    assert files.pdf_skipped == "a PDF was not asked for; the report.pdf of an earlier report in that folder was deleted"


def test_a_report_at_a_later_time_than_now_is_refused(ledger: Ledger) -> None:
    """DPO trial: `report --at 2031-01-01` gave eligible and minor counts for
    2031, headed "As of 2031-01-01", with no warning: a forecast stated as fact."""
    from consentry.errors import InputError

    with pytest.raises(InputError, match=r"the report time 2031-01-01T00:00:00Z is later than now \("):
        build_report(ledger, load_policy("recommended"), datetime(2031, 1, 1, tzinfo=UTC))


@pytest.mark.slow
def test_the_notice_cards_say_the_outbox_is_as_of_now_not_t(ledger: Ledger, export_dir: Path) -> None:
    """DPO trial: at T = 2024-06-26 the headline read "1,438 notices delivered",
    all of them sent in 2026: the outbox keeps states as they are now."""
    fill(ledger, export_dir)
    past = render_html(build_report(ledger, load_policy("recommended"), T))
    assert "notices delivered by the time of writing (the outbox keeps no history: not as of T)" in past
    assert "notices failed by the time of writing" in past
    now = render_html(build_report(ledger, load_policy("recommended"), datetime.now(UTC)))
    assert "by the time of writing" not in now


def test_without_chromium_the_html_is_written_and_the_pdf_skipped_with_a_reason(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENTRY_CHROMIUM", str(tmp_path / "no-such-chromium"))
    files = write_report(build_report(ledger, load_policy("recommended"), T), tmp_path / "out")
    assert files.html.is_file() and files.pdf is None
    # A README walk-through: this said "not found (looked at ..., /usr/bin/chromium and PATH)" with both there.
    assert f"$CONSENTRY_CHROMIUM ({tmp_path / 'no-such-chromium'}) does not exist" in (files.pdf_skipped or ""), files.pdf_skipped
    assert "unset it" in files.pdf_skipped and "looked at" not in files.pdf_skipped
    assert not (tmp_path / "out" / "report.pdf").exists()
    assert 'id="exclusions-missing"' in files.html.read_text()  # no --data: the section says it needs it


@pytest.mark.slow
def test_report_renders_in_a_real_browser(ledger: Ledger, export_dir: Path, tmp_path: Path) -> None:
    if missing := missing_prerequisites(axe=False):
        pytest.skip("needs " + "; ".join(missing))
    from PIL import Image
    from playwright.sync_api import sync_playwright

    fill(ledger, export_dir)
    files = write_report(build_report(ledger, load_policy("recommended"), T, export=Export(export_dir)), tmp_path, pdf=False)
    shot = tmp_path / "report.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(files.html.resolve().as_uri())
            charts = page.evaluate(
                "() => [...document.images].map(i => [i.id, i.complete && i.naturalWidth > 100 && i.naturalHeight > 50])"
            )
            heading = page.inner_text("h1")
            flagged = page.inner_text("#sum-flagged")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert sorted(charts) == [["chart-exclusions", True], ["chart-notices", True], ["chart-trend", True]]
    assert "accountability report" in heading
    assert flagged == "1"
    img = Image.open(shot).convert("RGB")
    assert img.height > 1500  # the whole report, not an error page
    small = img.resize((img.width // 8, img.height // 8))
    assert len(small.getcolors(maxcolors=1 << 20) or []) > 50  # text, tables and charts, not a blank page


# -- the command -------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_command(ledger: Ledger, export_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    fill(ledger, export_dir)
    app = typer.Typer()
    app.add_typer(accountability_commands)
    runner = CliRunner()
    url = ledger.url
    r = runner.invoke(app, ["report", "--at", "2024-06-26T00:00:00Z", "--out", str(tmp_path / "r"), "--ledger", url,
                            "--data", str(export_dir), "--no-pdf"])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "r" / "report.html").read_text()
    assert 'id="exclusions-table"' in html and 'data-key="flagged">1<' in html
    assert "1 model flagged: trained on rows since purged." in r.output  # it said "1 model(s) flagged"
    bad = runner.invoke(app, ["report", "--at", "yesterday", "--out", str(tmp_path / "r2"), "--ledger", url])
    assert bad.exit_code == 2 and "not an ISO 8601 report time" in bad.output
    assert not (tmp_path / "r2").exists()
    nope = runner.invoke(app, ["report", "--at", "2024-06-26", "--out", str(tmp_path / "r3"), "--ledger", url,
                               "--policy", "no-such-policy"])
    assert nope.exit_code == 2 and "neither a built-in policy nor a file" in nope.output
    # `--out report.html` made a folder report.html/ holding report.html: a file's name is refused, nothing made.
    for command in (["report", "--at", "2024-06-26T00:00:00Z"], ["documents"]):
        named = runner.invoke(app, [*command, "--out", str(tmp_path / "report.html"), "--ledger", url, "--no-pdf"]
                              if command[0] == "report" else [*command, "--out", str(tmp_path / "docs.md"), "--ledger", url])
        assert named.exit_code == 2, named.output
        assert "names the folder" in named.output and "looks like a file name" in named.output, named.output
        assert not (tmp_path / "report.html").exists() and not (tmp_path / "docs.md").exists()


def test_a_report_or_documents_from_a_tampered_ledger_are_refused(ledger: Ledger, export_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A DPO's trial: with one imported objection deleted from ledger_events
    (verify: broken), the report counted one objection fewer and more items
    eligible, and the documents stated it too, without a word. Both now verify the audit log first and refuse a broken one; a
    report says it was verified."""
    from sqlalchemy import delete, select

    from consentry.errors import LedgerError
    from consentry.ledger.tables import events

    monkeypatch.setenv("CONSENTRY_HOME", str(tmp_path))
    fill(ledger, export_dir)
    app = typer.Typer()
    app.add_typer(accountability_commands)
    runner = CliRunner()
    ok = runner.invoke(app, ["report", "--at", "2024-06-26T00:00:00Z", "--out", str(tmp_path / "ok"), "--ledger", ledger.url,
                             "--no-pdf"])
    assert ok.exit_code == 0, ok.output
    assert 'id="audit">verified intact before counting' in (tmp_path / "ok" / "report.html").read_text()
    with ledger.engine.begin() as conn:
        first = conn.execute(select(events.c.seq).where(events.c.type == "objected").order_by(events.c.seq)).first()[0]
        conn.execute(delete(events).where(events.c.seq == first))
    r = runner.invoke(app, ["report", "--at", "2024-06-26T00:00:00Z", "--out", str(tmp_path / "r"), "--ledger", ledger.url,
                            "--no-pdf"])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "the audit log is broken" in said and "No report was written" in said, said
    assert not (tmp_path / "r" / "report.html").exists()
    with pytest.raises(LedgerError, match="audit log is broken"):
        build_report(ledger, load_policy("recommended"), T)
    d = runner.invoke(app, ["documents", "--out", str(tmp_path / "d"), "--ledger", ledger.url])
    assert d.exit_code == 2 and "No document was written" in " ".join(d.output.split()), d.output
    assert not list((tmp_path / "d").glob("*.md"))
