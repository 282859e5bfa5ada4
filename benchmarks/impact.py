#!/usr/bin/env python
"""What counting a person's tagged photos costs `impact` (the privacy center's
/me and `consentry impact`).

`impact` used to count only the person's own rows, reading one bucket of the
snapshot (their `md5(user_id) % buckets`). It now also counts the rows of
others that tag them, which can sit in any bucket, so it reads the `user_id`
and `tagged` columns of every file. Same run, same snapshot, in turns:

* own rows only, one bucket: the old query, the peer;
* own rows and tagged photos, every file: `people_index.rows_of`, the query of
  2026-12-05, which reads the table itself;
* own rows and tagged photos from the index of the table's version
  (`people_index.counts`, as shipped since 2026-12-06): the first question
  writes it (timed apart), every later one reads the row group of one id.

    .venv/bin/python benchmarks/impact.py [--users 20000] [--people 200] [--rounds 5]

A synthetic export (`consentry generate`) is built once into bench-data/, a
snapshot of it under `recommended` into a temporary folder; the people asked
about are sampled from those tagged in the snapshot. The other processes' CPU
share is printed with each figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"


def busy() -> tuple[int, int]:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def own_bucket_only(rec, user_id: str) -> int:  # noqa: ANN001 - the query before: their bucket, their rows
    import duckdb
    from deltalake import DeltaTable

    from consentry.snapshots.shared import bucket_of

    files = DeltaTable(rec.uri).file_uris(file_pruning_predicate=[("bucket", "=", str(bucket_of(user_id, rec.manifest.buckets)))])
    if not files:
        return 0
    con = duckdb.connect()
    try:
        return int(con.execute(f"SELECT count(*) FROM read_parquet({files!r}) WHERE user_id = ?", [user_id]).fetchall()[0][0])
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--people", type=int, default=200, help="how many people to ask about, per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", type=Path, default=DATA, help="where the generated export is kept")
    args = ap.parse_args()

    import duckdb
    from deltalake import DeltaTable

    from consentry.generate import generate
    from consentry.ledger import Ledger
    from consentry.policy import load_policy
    from consentry.snapshots import Registry, build
    from consentry.snapshots.people_index import INDEX_DIR, counts, rows_of
    from consentry.sources import Export

    export_dir = args.work / f"impact-u{args.users}"
    if not (export_dir / "users.parquet").exists():
        generate(export_dir, args.users, seed=3, media=0)
    with tempfile.TemporaryDirectory() as tmp:
        led = Ledger(f"sqlite:///{tmp}/l.db")
        led.import_jsonl(export_dir / "events.jsonl")
        m = build(Export(export_dir), led, load_policy("recommended"), datetime(2024, 6, 26, tzinfo=UTC), "s",
                  out=Path(tmp) / "s")
        rec = Registry(led).require("s")
        files = DeltaTable(rec.uri).file_uris()
        people = [r[0] for r in duckdb.sql(
            f"SELECT DISTINCT t FROM (SELECT unnest(tagged) AS t FROM read_parquet({files!r})) ORDER BY hash(t) "
            f"LIMIT {args.people}").fetchall()]
        print(f"snapshot: {m.rows:,} rows in {len(files)} files, {m.buckets} buckets; asking about {len(people)} "
              f"people tagged in it")
        index = Path(rec.uri).parent / INDEX_DIR
        start = time.perf_counter()
        counts(rec, people[0])
        print(f"writing the index of this version (the first question after a build or purge): "
              f"{time.perf_counter() - start:.2f} s, {sum(f.stat().st_size for f in index.glob('*.parquet')):,} bytes")
        contenders = (("own rows, one bucket (2026-12-04)", lambda u: (own_bucket_only(rec, u), 0)),
                      ("own rows and tagged photos, every file (2026-12-05)", lambda u: rows_of(rec, u)),
                      ("own rows and tagged photos, the version's index (now)", lambda u: counts(rec, u)))
        runs: dict[str, list[float]] = {name: [] for name, _ in contenders}
        found: dict[str, int] = {}
        cpu = []
        for _ in range(args.rounds):
            for name, fn in contenders:
                b0, t0 = busy()
                start, own0 = time.perf_counter(), time.process_time()
                seen = sum(sum(fn(u)) > 0 for u in people)
                wall, own = time.perf_counter() - start, time.process_time() - own0
                runs[name].append(wall / len(people) * 1000)
                b1, t1 = busy()
                # the other processes' share of the CPUs: the machine's busy share less this process's
                cpu.append(max(0.0, (b1 - b0) / max(1, t1 - t0) - own / (wall * (os.cpu_count() or 1))))
                found[name] = seen
        print("| query | ms per person (median of rounds) | rounds | people found in the snapshot |")
        print("|---|---:|---|---:|")
        for name, ms in runs.items():
            print(f"| {name} | {statistics.median(ms):.1f} | {', '.join(f'{x:.1f}' for x in ms)} | "
                  f"{found[name]} of {len(people)} |")
        print(f"other processes' CPU share during the runs: {min(cpu):.1%}-{max(cpu):.1%}")
        led.close()


if __name__ == "__main__":
    main()
