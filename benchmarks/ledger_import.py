#!/usr/bin/env python
"""What the audit chain costs a ledger import (issue #15, point 5).

A 4.5M-event JSONL file (the 904,582 events of `consentry generate --users
1000000 --seed 1`, five times over with fresh event and user ids) is imported
into a fresh SQLite ledger twice, in child processes, alternating:

* as shipped: every event also appended to the audit hash chain;
* the same import with `chain.append` and `chain.event_records` stubbed out in
  the child (a benchmark only: the product has no way to switch the chain off).

Wall time, the child's CPU time and the other processes' CPU share are printed,
and the chain's share of the import. The goal is under 20%.

    .venv/bin/python benchmarks/ledger_import.py [--copies 5] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"

CHILD = r"""
import sys, time
from consentry.ledger import Ledger
from consentry.ledger import chain
if sys.argv[3] == "without":
    def _append(conn, records, **kw):  # nothing built, hashed or written: all of that is the chain's cost
        return 0
    chain.append = _append
    chain.event_records = lambda rows, **kw: []  # nor the groups' digests
    import consentry.ledger.store as store
    store.chain.append = _append
t = time.perf_counter()
with Ledger(sys.argv[1]) as led:
    r = led.import_jsonl(sys.argv[2])
print(time.perf_counter() - t, r.imported if hasattr(r, "imported") else r)
"""


def busy() -> tuple[int, int]:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def events_file(copies: int) -> Path:
    src = DATA / "u1000000" / "events.jsonl"
    if not src.is_file():
        sys.exit(f"missing {src}: run `consentry generate --users 1000000 --seed 1 --out {src.parent}` first")
    out = DATA / f"events-x{copies}.jsonl"
    if out.is_file():
        return out
    tmp = out.with_suffix(".tmp")
    with tmp.open("w") as w:
        for k in range(copies):
            with src.open() as f:
                for line in f:
                    e = json.loads(line)
                    e["event_id"] = f"{e['event_id']}-{k}"
                    if e.get("user_id"):
                        e["user_id"] = f"{e['user_id']}-{k}"
                    w.write(json.dumps(e, separators=(",", ":")) + "\n")
    tmp.rename(out)
    return out


def run(events: Path, mode: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="consentry-import-") as d:
        url = f"sqlite:///{d}/ledger.db"
        b0, t0 = busy()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", CHILD, url, str(events), mode], check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        b1, t1 = busy()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ncpu = os.cpu_count() or 1
    ticks = os.sysconf("SC_CLK_TCK")
    others = max(0.0, (b1 - b0) / ticks - cpu) / (wall * ncpu)
    return {"mode": mode, "wall": wall, "cpu": cpu, "others": others}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    events = events_file(args.copies)
    n = sum(1 for _ in events.open())
    results = []
    for _ in range(args.rounds):
        for mode in ("with", "without"):
            r = run(events, mode)
            results.append(r)
            print(f"{mode} chain: {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, other processes {r['others']:.1%}", flush=True)
    best = {m: min(r["wall"] for r in results if r["mode"] == m) for m in ("with", "without")}
    share = (best["with"] - best["without"]) / best["with"]
    print(f"\n| import of {n:,} events | wall (fastest of {args.rounds}) | events/s |")
    print("|---|---:|---:|")
    for m in ("with", "without"):
        print(f"| {m} the audit chain | {best[m]:.1f} s | {n / best[m]:,.0f} |")
    print(f"\nthe chain's share of the import: {share:.1%} (goal: under 20%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
