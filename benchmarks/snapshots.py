"""Benchmark a snapshot's build, a purge of 10,000 objectors, and the rebuild it replaces.

    python benchmarks/snapshots.py --users 500000 --media 3000            # ~10M items, 64 buckets
    python benchmarks/snapshots.py --users 500000 --buckets 64,256,1024   # how the purge scales with buckets

For each bucket count, in one run, on the same export and a copy of the same
SQLite ledger:

1. build      `build(...)` of a snapshot under the policy at the cut-off.
2. object     N people who are in the snapshot object now: one
              `Ledger.append` of N `objected` events (at = now).
3. purge      `purge(ledger, name)`: the timed contender.
4. rebuild    a new `build(...)` with a new name, same export, policy and
              cut-off: it applies the same objections. The baseline.
5. check      DuckDB over the Delta tables' current files: no row of an
              objector is left in the purged snapshot, it has exactly the
              rebuild's rows (same item ids), and no image file is left
              behind for a removed row. Any failure exits non-zero.

Every phase runs in its own subprocess, so its peak RSS is its own
(getrusage(RUSAGE_SELF).ru_maxrss, reported by the child; the parent stays
small). The ratio printed is purge seconds / rebuild seconds. The export is
generated into the work folder (under /tmp) unless one is there already.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
T = "2024-06-26T00:00:00Z"


# -- helpers used by the children ----------------------------------------------------


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _du(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        if p.is_file():
            total += p.stat().st_size
    return total


class _Timer:
    """Wall time spent inside some functions, without changing what they do."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, label: str, fn):  # noqa: ANN001, ANN202
        def timed(*a, **k):  # noqa: ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0

        return timed


def _steps() -> tuple[list[tuple[str, float]], callable]:
    """A `say` callback that records when each progress message came."""
    marks: list[tuple[str, float]] = [("start", time.perf_counter())]
    return marks, lambda s: marks.append((s, time.perf_counter()))


def _phases(marks: list[tuple[str, float]], labels: list[tuple[str, str]], end: float) -> dict[str, float]:
    """Seconds between progress messages: labels maps a message prefix to a phase name."""
    out: dict[str, float] = {}
    points = [(m, t) for m, t in marks]
    points.append(("end", end))
    for (msg, t), (_, t_next) in zip(points, points[1:]):
        for prefix, label in labels:
            if msg.startswith(prefix):
                out[label] = out.get(label, 0.0) + t_next - t
    return out


def _files(uri: str) -> list[str]:
    from deltalake import DeltaTable

    return [u.removeprefix("file://") for u in DeltaTable(uri).file_uris()]


# -- children ----------------------------------------------------------------------


def child_build(a: dict) -> dict:
    from consentry.ledger import Ledger
    from consentry.policy import load_policy
    from consentry.sources import Export
    from consentry.timeutil import parse_instant

    build_mod = importlib.import_module("consentry.snapshots.build")
    timer = _Timer()
    build_mod.content_digest = timer.wrap("digest", build_mod.content_digest)
    marks, say = _steps()
    out = Path(a["out"])
    with Ledger(a["ledger"]) as led:
        # Validated first, as `consentry snapshot build` does (remembered by the export's fingerprint):
        # the build itself is what is timed, on the first run as on the rebuild.
        from consentry import config
        from consentry.sources import ValidationMemo, open_export

        tv = time.perf_counter()
        export = open_export(Path(a["export"]), memo=ValidationMemo(config.validation_memo_path()))[0]
        validated = time.perf_counter() - tv
        t0 = time.perf_counter()
        m = build_mod.build(export, led, load_policy(a["policy"]), parse_instant(T), a["name"],
                            out=out, buckets=a["buckets"], say=say)
        seconds = time.perf_counter() - t0
    phases = _phases(marks, [("start", "read export + ledger"), ("ledger read", "decide"),
                             ("decided", "candidates"), ("copying", "images"), ("writing", "write table + digest")],
                     t0 + seconds)
    phases["write table + digest"] = phases.get("write table + digest", 0.0) - timer.seconds.get("digest", 0.0)
    phases["digest"] = timer.seconds.get("digest", 0.0)
    files = _files(str(out / "table"))
    media_dir = out / "media"
    return {
        "seconds": seconds, "items": sum(m.decisions.values()), "rows": m.rows,
        "eligible": m.decisions.get("eligible", 0), "excluded_at_build": m.excluded_at_build,
        "images": m.transforms.get("exif_stripped", 0), "faces_blurred": m.transforms.get("faces_blurred", 0),
        "files": len(files), "table_bytes": sum(os.path.getsize(f) for f in files),
        "media_bytes": _du(media_dir) if media_dir.is_dir() else 0, "disk_bytes": _du(out),
        "phases": phases, "peak_rss_mib": _peak_rss_mib(), "validated_before_s": validated,
    }


def child_object(a: dict) -> dict:
    """Pick N people with rows in the snapshot; record their objections in one batch."""
    import random
    from datetime import UTC, datetime

    import duckdb

    from consentry.ledger import Ledger
    from consentry.ledger.events import Channel, EventType, NewEvent

    files = _files(a["uri"])
    people = [u for (u,) in duckdb.connect().execute(
        f"SELECT DISTINCT user_id FROM read_parquet({files!r}) ORDER BY 1").fetchall()]
    if len(people) < a["n"]:
        raise SystemExit(f"only {len(people):,} people in the snapshot, fewer than --objectors {a['n']:,}")
    chosen = sorted(random.Random(a["seed"]).sample(people, a["n"]))
    Path(a["list"]).write_text("\n".join(chosen) + "\n")
    Path(a["before"]).write_text(json.dumps(files))
    now = datetime.now(UTC)
    events = [NewEvent(user_id=u, type=EventType.objected, at=now, channel=Channel.api, actor="benchmark") for u in chosen]
    with Ledger(a["ledger"]) as led:
        t0 = time.perf_counter()
        stored = led.append(events)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "appended": len(stored), "people_in_snapshot": len(people),
            "peak_rss_mib": _peak_rss_mib()}


def child_purge(a: dict) -> dict:
    import deltalake

    from consentry.ledger import Ledger

    purge_mod = importlib.import_module("consentry.snapshots.purge")
    timer = _Timer()
    purge_mod.content_digest = timer.wrap("digest", purge_mod.content_digest)
    purge_mod.load_inputs = timer.wrap("read export + ledger", purge_mod.load_inputs)
    shared_mod = importlib.import_module("consentry.snapshots.shared")  # where a purge opens the export
    shared_mod.open_export = timer.wrap("validate export", shared_mod.open_export)
    deltalake.write_deltalake = timer.wrap("rewrite buckets", deltalake.write_deltalake)
    deltalake.DeltaTable.vacuum = timer.wrap("vacuum", deltalake.DeltaTable.vacuum)
    marks, say = _steps()
    with Ledger(a["ledger"]) as led:
        # As after `consentry snapshot build`: the export's validation is remembered
        # by its fingerprint, so the purge does not validate it again (untimed).
        from consentry import config
        from consentry.snapshots import Registry
        from consentry.sources import ValidationMemo, open_export

        open_export(Path(Registry(led).require(a["name"]).manifest.export), memo=ValidationMemo(config.validation_memo_path()))
        t0 = time.perf_counter()
        r = purge_mod.purge(led, a["name"], say=say)
        seconds = time.perf_counter() - t0
    phases = dict(timer.seconds)
    rewrite_at = next((t for m, t in marks if m.startswith("rewriting")), None)
    if rewrite_at is not None:  # everything before the rewrite that is not validating or reading: finding the rows
        phases["find rows"] = rewrite_at - t0 - phases.get("read export + ledger", 0.0) - phases.get("validate export", 0.0)
    phases["other (registry, manifest, images)"] = seconds - sum(phases.values())
    return {
        "seconds": seconds, "inner_seconds": r.seconds, "people": r.people, "rows_removed": r.rows_removed,
        "buckets_rewritten": r.buckets_rewritten, "files_removed": r.files_removed, "counts": r.counts,
        "phases": phases, "peak_rss_mib": _peak_rss_mib(),
    }


def child_check(a: dict) -> dict:
    import duckdb

    before = set(json.loads(Path(a["before"]).read_text()))
    purged, rebuilt = _files(a["purged_uri"]), _files(a["rebuilt_uri"])
    after = set(purged)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE TEMP TABLE objectors AS SELECT column0 AS user_id FROM read_csv('{a['list']}', header = false, "
                "columns = {'column0': 'VARCHAR'})")
    con.execute(f"CREATE VIEW p AS SELECT * FROM read_parquet({purged!r}, hive_partitioning = true)")
    con.execute(f"CREATE VIEW r AS SELECT * FROM read_parquet({rebuilt!r}, hive_partitioning = true)")
    q = lambda sql: con.execute(sql).fetchall()[0][0]  # noqa: E731
    folder = Path(a["purged_uri"]).parent
    media_on_disk = {str(p.relative_to(folder)) for p in (folder / "media").rglob("*") if p.is_file()} \
        if (folder / "media").is_dir() else set()
    media_in_table = {m for (m,) in con.execute("SELECT media FROM p WHERE media IS NOT NULL").fetchall()}
    return {
        "objectors": q("SELECT count(*) FROM objectors"),
        "objector_rows_left": q("SELECT count(*) FROM p WHERE user_id IN (SELECT user_id FROM objectors)"),
        "objector_rows_in_rebuild": q("SELECT count(*) FROM r WHERE user_id IN (SELECT user_id FROM objectors)"),
        "rows_tagging_objectors_left": q(
            "SELECT count(DISTINCT t.item_id) FROM (SELECT item_id, unnest(tagged) AS u FROM p) t "
            "JOIN objectors o ON o.user_id = t.u"),
        "purged_rows": q("SELECT count(*) FROM p"),
        "rebuilt_rows": q("SELECT count(*) FROM r"),
        "item_ids_differing": q("SELECT count(*) FROM (SELECT item_id FROM p) x FULL JOIN (SELECT item_id FROM r) y "
                                "USING (item_id) WHERE x.item_id IS NULL OR y.item_id IS NULL"),
        "rows_with_other_content": q(
            "SELECT count(*) FROM p JOIN r USING (item_id) WHERE p.text IS DISTINCT FROM r.text "
            "OR p.media IS DISTINCT FROM r.media OR p.tagged IS DISTINCT FROM r.tagged "
            "OR p.faces_blurred IS DISTINCT FROM r.faces_blurred OR p.user_id IS DISTINCT FROM r.user_id"),
        "rows_with_other_text": q("SELECT count(*) FROM p JOIN r USING (item_id) WHERE p.text IS DISTINCT FROM r.text"),
        "orphan_images": len(media_on_disk - media_in_table),
        "missing_images": len(media_in_table - media_on_disk),
        "files_before": len(before), "files_after": len(after),
        "files_written": len(after - before), "files_dropped_from_table": len(before - after),
        "bytes_written": sum(os.path.getsize(f) for f in after - before),
        "table_bytes_after": sum(os.path.getsize(f) for f in after),
        "files_left_on_disk_not_in_table": sum(
            1 for p in (folder / "table").rglob("*.parquet") if str(p) not in after),
        "disk_bytes_after": _du(folder),
        "peak_rss_mib": _peak_rss_mib(),
    }


CHILDREN = {"build": child_build, "object": child_object, "purge": child_purge, "check": child_check}


# -- orchestration -----------------------------------------------------------------


def run_child(kind: str, args: dict) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(args)], stdout=subprocess.PIPE)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"FAILED: the {kind} phase exited with {proc.returncode}")
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    result["process_seconds"] = wall
    return result


def ensure_export(data: Path, users: int, media: int, seed: int) -> float:
    if (data / "content.parquet").exists():
        return 0.0
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "consentry"), "generate", "--users", str(users), "--media", str(media),
                    "--seed", str(seed), "--out", str(data)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def ensure_ledger(data: Path, db: Path) -> float:
    if db.exists():
        return 0.0
    started = time.perf_counter()
    code = ("import sys; from consentry.ledger import Ledger\n"
            "with Ledger(sys.argv[1]) as led: led.import_jsonl(sys.argv[2])")
    tmp = db.with_suffix(".importing")
    for p in db.parent.glob(tmp.name + "*"):
        p.unlink()
    subprocess.run([sys.executable, "-c", code, f"sqlite:///{tmp}", str(data / "events.jsonl")], check=True)
    copy_sqlite(tmp, db)
    for p in db.parent.glob(tmp.name + "*"):
        p.unlink()
    return time.perf_counter() - started


def copy_sqlite(src: Path, dst: Path) -> None:
    """A consistent copy (WAL included) through SQLite's backup API."""
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    with b:
        a.backup(b)
    a.close()
    b.close()


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=500_000, help="people in the export (~20 items each)")
    ap.add_argument("--media", type=int, default=3_000, help="photos with a real JPEG (image work dominates a build)")
    ap.add_argument("--buckets", default="64", help="bucket counts to try, comma-separated (e.g. 64,256,1024)")
    ap.add_argument("--objectors", type=int, default=10_000)
    ap.add_argument("--policy", default="recommended")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, help="working folder (default /tmp/consentry-snapshots-u<users>-m<media>-s<seed>)")
    ap.add_argument("--keep", action="store_true", help="keep the working folder (the export and ledger are reused next time)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        kind, payload = args.child
        print(json.dumps(CHILDREN[kind](json.loads(payload)), default=str))
        return

    work = (args.work or Path(f"/tmp/consentry-snapshots-u{args.users}-m{args.media}-s{args.seed}")).absolute()
    if work.resolve().is_relative_to(ROOT):
        sys.exit(f"--work {work} is inside the repository; use a scratch folder such as /tmp/...")
    existed = work.exists()
    work.mkdir(parents=True, exist_ok=True)
    data, base = work / "export", work / "ledger-base.db"
    buckets = [int(b) for b in args.buckets.split(",")]
    ok = True
    runs: dict[int, dict] = {}
    try:
        gen_s = ensure_export(data, args.users, args.media, args.seed)
        import_s = ensure_ledger(data, base)
        print(f"export {data} (generated in {gen_s:.1f}s)" if gen_s else f"export {data} (reused)", flush=True)
        print(f"ledger import {import_s:.1f}s" if import_s else "ledger reused", flush=True)
        for b in buckets:
            d = work / f"b{b}"
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            copy_sqlite(base, d / "ledger.db")
            url = f"sqlite:///{d / 'ledger.db'}"
            common = {"export": str(data), "ledger": url, "policy": args.policy, "buckets": b}
            r: dict = {}
            print(f"[{b} buckets] build ...", flush=True)
            r["build"] = run_child("build", {**common, "name": "snap", "out": str(d / "snap")})
            print(f"[{b} buckets] build {r['build']['seconds']:.1f}s; {args.objectors:,} objections ...", flush=True)
            r["object"] = run_child("object", {"ledger": url, "uri": str(d / "snap" / "table"), "n": args.objectors,
                                               "seed": args.seed, "list": str(d / "objectors.txt"),
                                               "before": str(d / "files-before.json")})
            print(f"[{b} buckets] purge ...", flush=True)
            r["purge"] = run_child("purge", {"ledger": url, "name": "snap"})
            print(f"[{b} buckets] purge {r['purge']['seconds']:.1f}s; rebuild ...", flush=True)
            r["rebuild"] = run_child("build", {**common, "name": "snap-rebuilt", "out": str(d / "rebuilt")})
            print(f"[{b} buckets] rebuild {r['rebuild']['seconds']:.1f}s; checking ...", flush=True)
            r["check"] = run_child("check", {"purged_uri": str(d / "snap" / "table"), "rebuilt_uri": str(d / "rebuilt" / "table"),
                                             "list": str(d / "objectors.txt"), "before": str(d / "files-before.json")})
            runs[b] = r
            ok = report(args, b, r) and ok
            if not args.keep:
                shutil.rmtree(d, ignore_errors=True)
        summary(args, runs)
    finally:
        if not args.keep:
            if existed:  # keep what was there before this run (the export and ledger may be reused)
                for b in buckets:
                    shutil.rmtree(work / f"b{b}", ignore_errors=True)
            else:
                shutil.rmtree(work, ignore_errors=True)
    if not ok:
        sys.exit("FAILED: the purged snapshot is not correct (see above)")


def report(args: argparse.Namespace, b: int, r: dict) -> bool:
    bl, ob, pu, rb, ck = r["build"], r["object"], r["purge"], r["rebuild"], r["check"]
    print(f"\n== snapshot benchmark: {args.users:,} users, {bl['items']:,} items decided, policy {args.policy}, "
          f"{b} buckets ==")
    print(f"snapshot: {bl['rows']:,} rows, {bl['images']:,} images ({bl['faces_blurred']:,} faces blurred), "
          f"{bl['files']:,} Parquet files; on disk {gib(bl['disk_bytes'])} (table {gib(bl['table_bytes'])}, "
          f"images {gib(bl['media_bytes'])})")
    print(f"build: {bl['seconds']:.1f}s = {bl['items'] / bl['seconds']:,.0f} items decided/s, "
          f"{bl['rows'] / bl['seconds']:,.0f} rows written/s; peak RSS {bl['peak_rss_mib']:,.0f} MiB")
    print("  " + ", ".join(f"{k} {v:.1f}s" for k, v in bl["phases"].items())
          + f"; the export validated before it (as the CLI does), not counted: {bl['validated_before_s']:.1f}s")
    print(f"objections: {ob['appended']:,} appended in one Ledger.append in {ob['seconds']:.2f}s "
          f"(of {ob['people_in_snapshot']:,} people in the snapshot)")
    print(f"purge: {pu['seconds']:.1f}s, removed {pu['rows_removed']:,} rows of {pu['people']:,} people, rewrote "
          f"{pu['buckets_rewritten']} of {b} buckets; peak RSS {pu['peak_rss_mib']:,.0f} MiB")
    print("  " + ", ".join(f"{k} {v:.1f}s" for k, v in pu["phases"].items()))
    print(f"  files: {ck['files_written']:,} written, {ck['files_dropped_from_table']:,} dropped from the table "
          f"(of {ck['files_before']:,}), {pu['files_removed']:,} deleted from disk (vacuum + images); "
          f"{gib(ck['bytes_written'])} rewritten of {gib(ck['table_bytes_after'])}")
    print(f"rebuild (baseline): {rb['seconds']:.1f}s, {rb['rows']:,} rows; peak RSS {rb['peak_rss_mib']:,.0f} MiB")
    pct = 100 * pu["seconds"] / rb["seconds"]
    print(f"purge ÷ rebuild: {pct:.1f}%  (goal: at most 5%: {'met' if pct <= 5 else 'NOT met'})")
    if pu["phases"].get("validate export"):  # the build is given an export validated before (as the CLI's memo does)
        v = pu["phases"]["validate export"]
        print(f"  derived: without the purge's re-validation of the export ({v:.1f}s): "
              f"{pu['seconds'] - v:.1f}s = {100 * (pu['seconds'] - v) / rb['seconds']:.1f}% of the rebuild")
    failures = []
    if ck["objector_rows_left"]:
        failures.append(f"{ck['objector_rows_left']:,} rows of objectors are still in the purged snapshot")
    if ck["objector_rows_in_rebuild"]:
        failures.append(f"{ck['objector_rows_in_rebuild']:,} rows of objectors are in the rebuilt snapshot")
    if ck["purged_rows"] != ck["rebuilt_rows"]:
        failures.append(f"purged snapshot has {ck['purged_rows']:,} rows, the rebuild {ck['rebuilt_rows']:,}")
    if ck["item_ids_differing"]:
        failures.append(f"{ck['item_ids_differing']:,} item ids are in only one of purged/rebuilt")
    if ck["orphan_images"]:
        failures.append(f"{ck['orphan_images']:,} image files are left on disk for rows no longer in the table")
    if ck["files_left_on_disk_not_in_table"]:
        failures.append(f"{ck['files_left_on_disk_not_in_table']:,} Parquet files not in the table are still on disk")
    print(f"check: objector rows left {ck['objector_rows_left']}, purged rows {ck['purged_rows']:,} = rebuilt rows "
          f"{ck['rebuilt_rows']:,}: {ck['purged_rows'] == ck['rebuilt_rows']}, item ids differing "
          f"{ck['item_ids_differing']}, orphan images {ck['orphan_images']}, stale Parquet files "
          f"{ck['files_left_on_disk_not_in_table']}")
    print(f"  (not failed on) rows tagging an objector left {ck['rows_tagging_objectors_left']:,}; rows whose text "
          f"differs from the rebuild's {ck['rows_with_other_text']:,} (any column: {ck['rows_with_other_content']:,})")
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    print(json.dumps({"users": args.users, "buckets": b, **r}, default=str))
    return not failures


def summary(args: argparse.Namespace, runs: dict[int, dict]) -> None:
    if len(runs) < 2:
        return
    print(f"\n== {args.objectors:,} objectors, by bucket count ==")
    print(f"{'buckets':>8}{'build s':>9}{'purge s':>9}{'rebuild s':>11}{'purge÷rebuild':>15}{'buckets hit':>13}"
          f"{'files written':>15}{'files':>8}")
    for b, r in runs.items():
        pu, rb, ck = r["purge"], r["rebuild"], r["check"]
        print(f"{b:>8}{r['build']['seconds']:>9.1f}{pu['seconds']:>9.1f}{rb['seconds']:>11.1f}"
              f"{100 * pu['seconds'] / rb['seconds']:>14.1f}%{pu['buckets_rewritten']:>13}{ck['files_written']:>15}"
              f"{ck['files_after']:>8}")


if __name__ == "__main__":
    main()
