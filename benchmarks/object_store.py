"""Deciding an export in an S3 bucket against the same export on disk.

    python benchmarks/object_store.py --users 50000        # ~1M items; generated into bench-data/ if missing

A real S3 server (moto's, `tests/s3_server.py`, in its own process on
127.0.0.1) holds a copy of the export's three tables. Each contender runs in
its own process, in turns, `--runs` times, keeping its fastest run:

- fetch        pyarrow reads the three tables from the bucket and nothing
               else: the floor of getting the bytes through this server.
- duckdb disk  `evaluate` on the export on disk.
- duckdb s3    `evaluate` on the bucket (DuckDB reading through pyarrow's
               S3 file system, registered with fsspec).
- spark disk   `evaluate` on Spark `local[2]` on the export on disk.
- spark s3     the same on the bucket (the `consentry_export` Python data
               source: each task reads its row group with pyarrow).

Start-up (imports, the Spark session) is inside every figure: these are a
user's runs. The decisions of every contender are compared with DuckDB's on
disk. "server" is the S3 server's own CPU time during the run; "other" is
the share of the machine's CPU every other process used (the server
excluded), over wall time × CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests")]
T = "2024-06-26T00:00:00Z"
TABLES = ("users.parquet", "content.parquet", "tags.parquet")


def child(kind: str, data: str, ledger: str, out: str) -> dict:
    if kind == "fetch":
        import pyarrow.parquet as pq

        from consentry.sources.store import StorePath

        rows = 0
        for name in TABLES:
            with StorePath(f"{data}/{name}").open_native() as fh:
                rows += pq.read_table(fh).num_rows
        return {"rows": rows, "tree_cpu": _tree_cpu()}
    from consentry import Platform
    from consentry.timeutil import parse_instant

    engine = "spark" if kind.startswith("spark") else "duckdb"
    conf = {"spark.sql.shuffle.partitions": "8"} if engine == "spark" else {}
    with Platform(data, ledger, "recommended", engine=engine, spark_master="local[2]", spark_conf=conf) as p:
        r = p.evaluate(parse_instant(T), out)
    return {"rows": r.items, "tree_cpu": _tree_cpu()}


def _tree_cpu() -> float:
    """This process's CPU time and its children's (Spark's JVM, still running:
    its time would otherwise count as another process's)."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def _busy() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """A process's CPU time with its children's (the S3 server)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def run(kind: str, data: str, ledger: str, out: Path, server_pid: int, env: dict) -> dict:
    busy0, srv0, t0 = _busy(), _cpu_of(server_pid), time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, data, ledger, str(out)], stdout=subprocess.PIPE,
                            env=env)
    stdout = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    srv = _cpu_of(server_pid) - srv0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{kind} failed")
    res = json.loads(stdout.decode().splitlines()[-1])
    own = max(usage.ru_utime + usage.ru_stime, res.pop("tree_cpu", 0.0))
    other = max(0.0, _busy() - busy0 - own - srv) / (wall * (os.cpu_count() or 1))
    return {"wall": wall, "cpu": own, "server": srv, "other": other, **res}


def differing(a: Path, b: Path) -> int:
    import duckdb

    def src(p: Path) -> str:
        return f"read_parquet('{p}/*.parquet')" if p.is_dir() else f"read_parquet('{p}')"

    return duckdb.sql(f"SELECT count(*) FROM (SELECT * FROM {src(a)} EXCEPT ALL SELECT * FROM {src(b)}) "
                      f"UNION ALL SELECT count(*) FROM (SELECT * FROM {src(b)} EXCEPT ALL SELECT * FROM {src(a)})").fetchall()[0][0]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(*sys.argv[2:6])))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--contenders", default="fetch,duckdb-disk,duckdb-s3,spark-disk,spark-s3")
    args = ap.parse_args()

    from eligibility import ensure_data, ensure_ledger
    from s3_server import S3TestServer

    data = ROOT / "bench-data" / f"u{args.users}"
    ensure_data(args.users, data)
    ledger, _ = ensure_ledger(data)
    out_dir = data.parent / f"{data.name}-out"  # beside the export: decisions never go into it
    out_dir.mkdir(exist_ok=True)
    kinds = args.contenders.split(",")
    best: dict[str, dict] = {}
    with S3TestServer() as s3:
        stage = data / "tables-only"
        stage.mkdir(exist_ok=True)
        for name in TABLES:
            if not (stage / name).exists():
                os.link(data / name, stage / name)
        t0 = time.perf_counter()
        uri = s3.upload(stage, "bench")
        size = sum((data / n).stat().st_size for n in TABLES)
        print(f"uploaded {size / 1e6:.0f} MB to {uri} in {time.perf_counter() - t0:.1f}s", flush=True)
        env = {**os.environ, **s3.env, "CONSENTRY_HOME": str(out_dir / "home")}
        for r in range(args.runs):
            for kind in kinds:
                src = uri if kind.endswith("s3") or kind == "fetch" else str(data)
                out = out_dir / f"os-{kind}.parquet"
                res = run(kind, src, ledger, out, s3._proc.pid, env)
                print(f"run {r + 1} {kind:12s} {res['wall']:7.2f}s  cpu {res['cpu']:6.2f}s  server {res['server']:6.2f}s  "
                      f"other {100 * res['other']:.1f}%", flush=True)
                res["runs"] = best.get(kind, {}).get("runs", []) + [res["wall"]]
                if kind not in best or res["wall"] < best[kind]["wall"]:
                    best[kind] = res
                else:
                    best[kind]["runs"] = res["runs"]
    ref = out_dir / "os-duckdb-disk.parquet"
    print("\n| contender | seconds (best) | runs | rows/s (fetch: the three tables' rows; else items) | our CPU s | S3 server CPU s | other | ÷ DuckDB on disk | decisions differing |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    base = best.get("duckdb-disk", {}).get("wall")
    for kind in kinds:
        b = best[kind]
        diff = "–" if kind == "fetch" or not ref.exists() else f"{differing(ref, out_dir / f'os-{kind}.parquet'):,}"
        ratio = f"{b['wall'] / base:.2f}" if base else "–"
        print(f"| {kind} | {b['wall']:.2f} | {' / '.join(f'{w:.2f}' for w in b['runs'])} | {b['rows'] / b['wall'] / 1e6:.2f}M | "
              f"{b['cpu']:.2f} | {b['server']:.2f} | {100 * b['other']:.1f}% | {ratio} | {diff} |")


if __name__ == "__main__":
    main()
