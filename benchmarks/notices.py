"""A notice campaign for ~100k people against an SMTP sink, and a plain smtplib baseline.

    python benchmarks/notices.py                   # ~100k people with e-mail (generates ~131k users)
    python benchmarks/notices.py --people 20000

The export is generated with consentry's generator (seed 1) into
bench-data/notices-u<users>/ if missing; about 77 % of generated users end up
in the audience with an e-mail address, so `--people N` generates N x 1.31
users and the figures use the real audience size.

The SMTP server is benchmarks/smtp_sink.py, aiosmtpd in its own process, which
only counts mails and recipients. The campaign runs through the library, as
`consentry notify` does: a fresh SQLite ledger (synchronous=NORMAL),
Campaign.open + plan (timed as planning), then send_mail with rate=0 (no limit)
and its default connections. Afterwards the exactly-once checks: mails the sink
took == distinct recipients == `notified` e-mail events == people with e-mail.

Baselines, same run, same sink (a fresh sink process each), same number of mails,
one connection, no database, no signing:

- smtplib + EmailMessage: what a plain script does; one EmailMessage per mail
  (the English notice's subject, text and HTML, the person's address), sent
  with SMTP.send_message.
- smtplib, prebuilt bytes: the MIME bytes built once, only the envelope
  recipient changes; SMTP.sendmail. The ceiling of one connection to this sink.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
import json
import math
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A cut-off the policy's 30-day notice period can still precede (campaigns refuse less).
CUTOFF = (datetime.now(UTC) + timedelta(days=60)).strftime("%Y-%m-%dT00:00:00Z")
SENDER = "Privacy <privacy@example.org>"
SECRET = "benchmark-secret-" + "x" * 32
USERS_PER_PERSON = 1.31  # generated users per person in the audience with an e-mail (seed 1: 0.766)


class Sink:
    """benchmarks/smtp_sink.py in its own process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("smtp_sink.py")), "--port", "0"],
            stdout=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"the SMTP sink did not start: {line!r}")
        self.port = int(line.split()[1])

    def cpu(self) -> float:
        """The sink process's CPU seconds so far (user + system)."""
        return _proc_cpu(self.proc.pid)

    def stop(self) -> dict:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return json.loads(out.strip().splitlines()[-1])


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(v[:8])
    return (total - v[3] - v[4]) / os.sysconf("SC_CLK_TCK"), total / os.sysconf("SC_CLK_TCK")


def ensure_export(users: int, seed: int) -> Path:
    from consentry.generate import generate

    out = ROOT / "bench-data" / f"notices-u{users}-s{seed}"
    if not (out / "users.parquet").exists():
        t = time.perf_counter()
        print(f"generating {users:,} users into {out} ...", flush=True)
        generate(out, users=users, seed=seed, media=0)
        print(f"  {time.perf_counter() - t:.1f} s", flush=True)
    return out


def run_campaign(data: Path, ledger_dir: Path, sink: Sink, connections: int | None) -> dict:
    from sqlalchemy import func, select

    from consentry import config
    from consentry.ledger import Ledger
    from consentry.ledger.tables import events
    from consentry.notices import Mailer, SmtpSettings
    from consentry.notices.campaign import Campaign
    from consentry.notices.tables import outbox
    from consentry.policy import load_policy
    from consentry.sources import ValidationMemo, open_export
    from consentry.timeutil import parse_instant

    t = time.perf_counter()
    export, _, cached = open_export(data, memo=ValidationMemo(config.validation_memo_path()))
    validate_s = time.perf_counter() - t

    policy = load_policy("recommended")
    led = Ledger(f"sqlite:///{ledger_dir / 'ledger.db'}", synchronous="NORMAL")  # as `consentry notify`
    try:
        t = time.perf_counter()
        camp = Campaign.open(led, "bench", policy, parse_instant(CUTOFF))
        plan = camp.plan(export, policy)
        plan_s = time.perf_counter() - t

        mailer = Mailer(SmtpSettings(host="127.0.0.1", port=sink.port, security="none", sender=SENDER, timeout=60))
        kw = {} if connections is None else {"connections": connections}
        t, own0, sink0, (busy0, total0) = time.perf_counter(), time.process_time(), sink.cpu(), _machine_busy()
        summary = camp.send_mail(mailer, policy, secret=SECRET, base_url="https://privacy.example.org", rate=0, **kw)
        send_s = time.perf_counter() - t
        own, sink_cpu = time.process_time() - own0, sink.cpu() - sink0
        busy1, total1 = _machine_busy()
        others = max(0.0, (busy1 - busy0) - own - sink_cpu) / max(1e-9, total1 - total0)

        with led.engine.connect() as conn:
            notified = conn.execute(
                select(func.count(), func.count(func.distinct(events.c.user_id))).where(
                    events.c.type == "notified", events.c.channel == "email", events.c.event_id.like("notice:bench:%")
                )
            ).one()
            states = dict(conn.execute(
                select(outbox.c.state, func.count()).where(outbox.c.channel == "email").group_by(outbox.c.state)
            ).all())
            addresses = [r[0] for r in conn.execute(
                select(outbox.c.address).where(outbox.c.channel == "email").order_by(outbox.c.dedupe_key)
            ).all()]
    finally:
        led.close()
    return {
        "validate_s": validate_s, "validate_cached": cached, "plan_s": plan_s, "send_s": send_s,
        "own_cpu": own, "sink_cpu": sink_cpu, "others_share": others,
        "people": plan.people, "with_email": plan.people - plan.without_email, "summary": summary,
        "notified_events": notified[0], "notified_people": notified[1], "states": states, "addresses": addresses,
    }


def english_notice() -> tuple[str, str, str]:
    from consentry.i18n import gettext
    from consentry.notices.links import objection_token
    from consentry.notices.text import render_notice
    from consentry.policy import load_policy
    from consentry.timeutil import parse_instant

    link = f"https://privacy.example.org/o/{objection_token(SECRET, 'u0000001', 'bench')}"
    return render_notice(gettext("en"), load_policy("recommended"), parse_instant(CUTOFF), link, "the platform", "europe")


def baseline_email_message(port: int, addresses: list[str]) -> float:
    subject, text, html = english_notice()
    t = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.localhost") as conn:
        for i, to in enumerate(addresses):
            msg = EmailMessage()
            msg["From"] = SENDER
            msg["To"] = to
            msg["Subject"] = subject
            msg["Message-ID"] = f"<baseline.{i}@example.org>"
            msg.set_content(text)
            msg.add_alternative(html, subtype="html")
            conn.send_message(msg)
    return time.perf_counter() - t


def baseline_prebuilt(port: int, addresses: list[str]) -> float:
    subject, text, html = english_notice()
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = "someone@example.org"
    msg["Subject"] = subject
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    t = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.localhost") as conn:
        for to in addresses:
            conn.sendmail("privacy@example.org", [to], raw)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=100_000, help="people with an e-mail in the audience (about)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--connections", type=int, default=None, help="SMTP connections (default: the library's)")
    args = ap.parse_args()

    users = math.ceil(args.people * USERS_PER_PERSON)
    data = ensure_export(users, args.seed)
    home = Path(tempfile.mkdtemp(prefix="consentry-notices-bench-"))
    os.environ["CONSENTRY_HOME"] = str(home)
    try:
        sink = Sink()
        try:
            r = run_campaign(data, home, sink, args.connections)
        finally:
            counts = sink.stop()
        n = len(r["addresses"])

        sink = Sink()
        try:
            base_msg_s = baseline_email_message(sink.port, r["addresses"])
        finally:
            base_msg_counts = sink.stop()
        sink = Sink()
        try:
            base_raw_s = baseline_prebuilt(sink.port, r["addresses"])
        finally:
            base_raw_counts = sink.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)

    s = r["summary"]
    ours = s.sent / r["send_s"]
    b_msg, b_raw = n / base_msg_s, n / base_raw_s
    print()
    print(f"export: {users:,} generated users (seed {args.seed}), cut-off {CUTOFF}, policy recommended")
    print(f"people in scope:           {r['people']:,} ({r['with_email']:,} with e-mail, "
          f"{r['people'] - r['with_email']:,} in-app only)")
    print(f"validate export:           {r['validate_s']:.2f} s{' (memo)' if r['validate_cached'] else ''}")
    print(f"planning (open + plan):    {r['plan_s']:.2f} s")
    print(f"sending:                   {s.sent:,} mails in {r['send_s']:.1f} s = {ours:,.0f} mails/s "
          f"({s.bounced} bounced, {s.deferred} deferred)")
    print(f"CPU while sending:         campaign {r['own_cpu'] / max(1, s.sent) * 1000:.2f} ms/mail "
          f"({r['own_cpu'] / r['send_s']:.0%} of a core), sink {r['sink_cpu'] / max(1, s.sent) * 1000:.2f} ms/mail "
          f"({r['sink_cpu'] / r['send_s']:.0%}), other processes {r['others_share']:.1%} of the machine")
    print(f"sink:                      {counts}")
    print()
    print("exactly once:")
    checks = {
        "sink mails": counts["mails"],
        "distinct recipients": counts["distinct_recipients"],
        "notified e-mail events": r["notified_events"],
        "people with an e-mail": r["with_email"],
    }
    for k, v in checks.items():
        print(f"  {k:<24}{v:>10,}")
    extra = {
        "sink recipients == mails": counts["recipients"] == counts["mails"],
        "one notified event per person": r["notified_events"] == r["notified_people"],
        "outbox: every e-mail row sent": r["states"] == {"sent": r["with_email"]},
    }
    for k, v in extra.items():
        print(f"  {k:<40}{'yes' if v else 'NO'}")
    all_ok = len(set(checks.values())) == 1 and all(extra.values())
    print(f"  => {'OK' if all_ok else 'MISMATCH'}" + ("" if all_ok else f" (outbox states: {r['states']})"))
    print()
    print(f"baseline, smtplib + EmailMessage, 1 connection: {n:,} mails in {base_msg_s:.1f} s = {b_msg:,.0f} mails/s "
          f"(sink took {base_msg_counts['mails']:,})")
    print(f"baseline, smtplib prebuilt bytes, 1 connection: {n:,} mails in {base_raw_s:.1f} s = {b_raw:,.0f} mails/s "
          f"(sink took {base_raw_counts['mails']:,})")
    print(f"campaign ÷ smtplib + EmailMessage: {ours / b_msg:.2f}")
    print(f"campaign ÷ smtplib prebuilt bytes: {ours / b_raw:.2f}")
    if not all_ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
