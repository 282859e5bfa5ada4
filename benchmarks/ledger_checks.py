#!/usr/bin/env python
"""What the ledger checks added on 2026-12-05 cost.

* `Ledger.numbering_problem` (head is the last event, no number missing): now
  run by `snapshot build` and `evaluate` before they decide. The peer is the
  read every decision already makes of the ledger's head (`watermark`).
* `audit.derived.check_derived` (models, purges, snapshots and the notice
  outbox against the audit log and the ledger): now part of `audit verify`,
  which the report and the documents run first. The peer is the rest of
  `audit verify` (the chain walk), measured in the same run.

    .venv/bin/python benchmarks/ledger_checks.py [--users 200000] [--postgres URL] [--rounds 5]

A synthetic export (`consentry generate`) and its events are imported into a
fresh SQLite ledger (and PostgreSQL, if given); an in-app notice campaign for
everyone is opened so that the outbox is as large as the people told. Each
figure is the median of the rounds, with the other processes' CPU share.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def busy() -> tuple[int, int]:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def timed(fn, rounds: int) -> tuple[float, float]:  # noqa: ANN001
    """(median seconds, other processes' share of the CPUs meanwhile)."""
    import resource

    times, others = [], []
    for _ in range(rounds):
        b0, t0 = busy()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        w0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - w0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        b1, t1 = busy()
        mine = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 100  # in jiffies (USER_HZ = 100)
        others.append(max(0.0, (b1 - b0 - mine) / max(1, t1 - t0)))
        times.append(wall)
    return statistics.median(times), statistics.median(others)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--postgres", default=None, help="also a PostgreSQL ledger (a database it may fill)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    from consentry.audit.derived import check_derived
    from consentry.audit.log import verify
    from consentry.generate import generate
    from consentry.ledger import Ledger

    work = Path(tempfile.mkdtemp(prefix="consentry-ledger-checks-"))
    export = work / "export"
    generate(export, args.users, seed=5, media=0)
    urls = [f"sqlite:///{work / 'l.db'}"] + ([args.postgres] if args.postgres else [])
    print(f"{args.users:,} users; rounds {args.rounds}; median seconds (other processes' CPU share)\n")
    print("| ledger | events | outbox rows | watermark (peer) | numbering check | chain walk (verify less derived) | derived tables check |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for url in urls:
        with Ledger(url) as led:
            if led.watermark() == 0:
                led.import_jsonl(export / "events.jsonl")
        cutoff = (datetime.now(UTC) + timedelta(days=40)).strftime("%Y-%m-%dT00:00:00Z")
        subprocess.run([sys.executable, "-c", "from consentry.cli import app; app()", "notify", "--data", str(export),
                        "--cutoff", cutoff, "--campaign", "bench", "--channels", "in_app", "--platform", "P",
                        "--controller-name", "C", "--controller-address", "A", "--dpo", "d@example.org",
                        "--base-url", "https://privacy.example.org", "--ledger", url], check=True,
                       capture_output=True, env={**__import__("os").environ, "CONSENTRY_SECRET_KEY": "k9fT2xQ7mZ4pL8sV1bN6cR3wY0hJ5dG2"})
        with Ledger(url) as led:
            with led.reader.connect() as conn:
                from sqlalchemy import func, select

                from consentry.notices.tables import outbox

                n_out = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
            wm = timed(led.watermark, args.rounds)
            num = timed(led.numbering_problem, args.rounds)
            derived = timed(lambda: check_derived(led), args.rounds)
            whole = timed(lambda: verify(led), max(1, args.rounds // 2))
            assert led.numbering_problem() is None and check_derived(led) is None and verify(led).ok
            kind = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
            print(f"| {kind} | {led.watermark():,} | {n_out:,} | {wm[0] * 1000:.1f} ms ({wm[1]:.0%}) | "
                  f"{num[0] * 1000:.1f} ms ({num[1]:.0%}) | {(whole[0] - derived[0]):.2f} s ({whole[1]:.0%}) | "
                  f"{derived[0] * 1000:.0f} ms ({derived[1]:.0%}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
