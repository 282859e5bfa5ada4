"""Time `evaluate` on DuckDB and on Spark: local[2], and a real standalone
cluster of one and of two one-core workers on this machine.

    python benchmarks/spark.py --users 50000
    python benchmarks/spark.py --users 1000000 --write-md spark-bench.md   # ~20M items

The export is generated once with `consentry generate --seed S --media 0` into
`<out-dir>/u<users>` (`u<users>-s<seed>` for a seed other than 1, so seed 1
shares eligibility.py's data) and its ledger imported into SQLite there; both
are reused when present. The ledger is read as the CLI reads it: through
the events kept per watermark in `<export>-out/extracts` (made by the first
evaluate that needs them, shared with eligibility.py), unless `--no-extract`
says to read the database on every evaluate. Every contender runs in its own process, one after
the other; the standalone clusters are started by that process with
tests/spark_cluster.py (`standalone_cluster`), so the master, the workers and
their executors are all its descendants.

For each contender:

- start-up: the Spark session (JVM, executors registered, a trivial query
  run), measured apart; the cluster's own start-up is shown next to it.
- evaluate: wall seconds of `Platform.evaluate` alone (the first one in that
  session, cold JIT included: what a `consentry evaluate` run pays), and
  items/s. With `--runs N`, the best of the N-1 further runs is shown too.
- CPU: our CPU is the utime+stime of the contender's whole process tree (the
  driver, its JVM, the master, workers and executors; children that exit and
  are reaped count through their parent's cutime+cstime), read from
  /proc/<pid>/stat before and after. `other` is what the rest of the machine
  used meanwhile: /proc/stat's busy time (user+nice+system+irq+softirq) over
  the same window, minus ours, over wall × cores. `steal` is /proc/stat's
  steal over wall × cores (time the hypervisor gave to other machines). A run
  with `other` or `steal` well above zero was contended: its time is not clean.
- plan: shuffles (`Exchange` nodes) and broadcasts (`BroadcastExchange`) in
  the physical plan of the decision query evaluate runs (through
  `engine.spark.decided`, which keeps the people step as evaluate does) and of
  the people step (`people_sql()`), as planned (AQE's initial plan,
  `_jdf.queryExecution().executedPlan()`); and in the plan the write really
  ran with (AQE's final plan, from the application's REST API
  `/api/v1/applications/<app>/sql?planDescription=true`). `people computed` counts
  how often the decision plan reads the users table, i.e. computes the people
  step itself (0 when it reads the kept copy, whose reads are shown too).
- same: whether the decisions (the Parquet parts, read with DuckDB) equal
  DuckDB's as a multiset of rows (EXCEPT ALL, both ways).
- tasks: on a cluster, the tasks each executor ran, by worker (each worker's
  JSON lists its executors; the REST API has their task counts).

Memory: `--memory-per-core` (default 2g) per core: local[2] gets twice that as
driver memory, and each one-core worker offers it to its one executor.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # spark_cluster.py lives with the tests that use it too
T = "2024-06-26T00:00:00Z"
CLK = os.sysconf("SC_CLK_TCK")
CONTENDERS = {
    "duckdb": "DuckDB (engine duckdb)",
    "local2": "Spark local[2]",
    "cluster1": "Spark standalone, 1 worker × 1 core",
    "cluster2": "Spark standalone, 2 workers × 1 core",
    # Each worker and its executor on a CPU of its own, as on a machine of its own (see
    # spark_cluster.standalone_cluster's `pin`); the driver and master float.
    "cluster1-pinned": "Spark standalone, 1 worker × 1 core, pinned to a CPU",
    "cluster2-pinned": "Spark standalone, 2 workers × 1 core, each pinned to its CPU",
}


# -- CPU accounting -----------------------------------------------------------------


def _procs() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime+stime+cutime+cstime in clock ticks), for every process."""
    out = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            f = (p / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(p.name)] = (int(f[1]), int(f[11]) + int(f[12]) + int(f[13]) + int(f[14]))
    return out


def tree_ticks(root: int) -> int:
    """CPU ticks of `root` and all its descendants (reaped ones through cutime/cstime)."""
    procs = _procs()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += procs.get(pid, (0, 0))[1]
        todo.extend(children.get(pid, []))
    return total


def machine_ticks() -> tuple[int, int]:
    """(busy, steal) ticks of the whole machine, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = f[:8]
    return user + nice + system + irq + softirq, steal


class CpuWindow:
    def __enter__(self) -> Self:
        self.busy0, self.steal0 = machine_ticks()
        self.own0 = tree_ticks(os.getpid())
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        busy, steal = machine_ticks()
        own = tree_ticks(os.getpid()) - self.own0
        cores = os.cpu_count() or 1
        span = self.wall * cores * CLK
        self.own_cores = own / CLK / self.wall
        self.other = max(0, busy - self.busy0 - own) / span
        self.steal = (steal - self.steal0) / span

    def as_dict(self) -> dict:
        return {"seconds": self.wall, "own_cores": self.own_cores, "other": self.other, "steal": self.steal}


# -- plans --------------------------------------------------------------------------

_NODE = re.compile(r"^[\s|:+\-*]*(?:\*\(\d+\)\s*)?(\w+)")


def count_nodes(plan: str) -> dict[str, int]:
    """Shuffle exchanges, broadcasts and reused exchanges in a plan's tree text."""
    n = {"shuffles": 0, "broadcasts": 0, "reused": 0}
    for line in plan.splitlines():
        m = _NODE.match(line)
        if not m:
            continue
        name = m.group(1)
        if name == "Exchange":
            n["shuffles"] += 1
        elif name == "BroadcastExchange":
            n["broadcasts"] += 1
        elif name == "ReusedExchange":
            n["reused"] += 1
    return n


def final_plan(description: str) -> str:
    """The tree of AQE's final plan out of the REST API's planDescription."""
    tree = description.split("\n\n", 1)[0]
    if "== Final Plan ==" in tree:
        tree = tree.split("== Final Plan ==", 1)[1].split("== Initial Plan ==", 1)[0]
    return tree


def people_reads(plan: str) -> int:
    """How often a plan reads a kept copy of the people step: a checkpoint
    (`Scan ExistingRDD`) or a cached relation (`InMemoryTableScan`)."""
    return sum(1 for line in plan.splitlines() if "Scan ExistingRDD" in line or "InMemoryTableScan" in line)


def spark_plans(platform, at) -> dict:
    """Planned shuffles of the people step and of the decision query evaluate
    runs, on freshly loaded views, through the same `decided` evaluate uses."""
    from consentry.engine import spark as backend
    from consentry.engine.compile import Compiler

    spark = platform.spark
    scratch = backend.scratch_dir()
    try:
        backend.load_inputs(spark, platform.export, platform.ledger, at, scratch)
        comp = Compiler(platform.policy, at)
        people_plan = spark.sql(comp.people_sql())._jdf.queryExecution().executedPlan().toString()
        with backend.decided(spark, platform.policy, at) as decisions:
            dec = decisions._jdf.queryExecution().executedPlan().toString()
        users = str(platform.export.files["users"].path)
        return {
            "people": count_nodes(people_plan),
            "decisions": {**count_nodes(dec), "people_reads": people_reads(dec), "users_scans": sum(
                1 for line in dec.splitlines() if "FileScan" in line and users in line)},
            "people_text": people_plan,
            "decisions_text": dec,
        }
    finally:
        backend.remove(scratch)


def executed_write_plan(sc) -> dict:
    """Counts in the final plan of the last Parquet write the application ran."""
    from spark_cluster import get_json

    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/sql?details=true&planDescription=true&length=1000"
    writes = [q for q in get_json(url, timeout=30) if "InsertIntoHadoopFsRelationCommand" in q.get("planDescription", "")]
    if not writes:
        return {}
    tree = final_plan(writes[-1]["planDescription"])
    return {**count_nodes(tree), "people_reads": people_reads(tree), "text": tree}


def executors(sc, cluster) -> list[dict]:
    from spark_cluster import get_json

    rows = get_json(f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/executors")
    where = {}
    if cluster is not None:
        for worker, ids in cluster.executors_by_worker(sc.applicationId).items():
            where.update({i: worker for i in ids})
    # Task time and GC time summed over the executor's tasks (ms), what it read from other executors' shuffles.
    return [{"id": e["id"], "worker": where.get(e["id"], "driver" if e["id"] == "driver" else "?"),
             "tasks": e["totalTasks"], "cores": e["totalCores"], "task_s": e.get("totalDuration", 0) / 1000,
             "gc_s": e.get("totalGCTime", 0) / 1000, "shuffle_read_mb": e.get("totalShuffleRead", 0) / 1e6}
            for e in rows]


# -- what this machine's cores give together -----------------------------------------


def _stream(cpu: int, seconds: float, q) -> None:  # noqa: ANN001 - a multiprocessing queue
    """Sum a 512 MB array over and over on `cpu` alone; put the GB/s."""
    import numpy as np

    os.sched_setaffinity(0, {cpu})
    a = np.ones(1 << 26, dtype=np.int64)
    a.sum()
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        a.sum()
        n += 1
    q.put(n * a.nbytes / (time.perf_counter() - t) / 1e9)


def memory_scaling(seconds: float = 4.0) -> dict:
    """GB/s one core streams through memory alone, and the cores together,
    each pinned to its own: how far this machine lets work that reads and
    writes memory at full speed (scans, hash joins, Parquet) scale with cores,
    whatever the engine."""
    import multiprocessing as mp

    cpus = sorted(os.sched_getaffinity(0))
    ctx = mp.get_context("spawn")

    def run(on: list[int]) -> float:
        q = ctx.Queue()
        procs = [ctx.Process(target=_stream, args=(c, seconds, q)) for c in on]
        for pr in procs:
            pr.start()
        rates = [q.get() for _ in procs]
        for pr in procs:
            pr.join()
        return sum(rates)

    alone = run(cpus[:1])
    together = run(cpus)
    return {"cores": len(cpus), "alone_gbs": alone, "together_gbs": together, "ratio": together / alone}


# -- a contender, in its own process ------------------------------------------------


def child(kind: str, data: Path, ledger: str, out: Path, policy: str, mem: str, conf: dict[str, str],
          runs: int, extracts: Path | None = None) -> dict:
    from consentry import Platform
    from consentry.timeutil import parse_instant

    at = parse_instant(T)
    result: dict = {"kind": kind}
    if kind == "duckdb":
        with Platform(export=data, ledger=ledger, policy=policy, engine="duckdb", extracts=extracts) as p:
            with CpuWindow() as w:
                r = p.evaluate(at, out)
            result.update(w.as_dict(), counts=r.counts, watermark=r.watermark)
            result["warm"] = _warm(p, at, out, runs)
        return result

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    conf = {"spark.scheduler.minRegisteredResourcesRatio": "1.0",
            "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
            "spark.driver.memory": mem, **conf}
    with _cluster(kind, mem) as cluster:
        if cluster is None:
            master, want = "local[2]", 0
            amount, unit = re.fullmatch(r"(\d+)([a-zA-Z]*)", mem).groups()
            conf["spark.driver.memory"] = f"{int(amount) * 2}{unit}"  # local[2]: two cores in one JVM
        else:
            master, want = cluster.url, len(cluster.workers)
            conf = {"spark.executor.memory": mem, "spark.executor.cores": "1", **conf}
            result["cluster_start"] = cluster.started
        started = time.perf_counter()
        with Platform(export=data, ledger=ledger, policy=policy, engine="spark", spark_master=master,
                      spark_conf=conf, extracts=extracts) as p:
            spark = p.spark
            spark.sql("SELECT 1").collect()
            sc = spark.sparkContext
            while sc._jsc.sc().getExecutorMemoryStatus().size() - 1 < want:  # the driver counts as one
                if time.perf_counter() - started > 180:
                    raise RuntimeError(f"only {sc._jsc.sc().getExecutorMemoryStatus().size() - 1} of {want} executors")
                time.sleep(0.2)
            result["startup"] = time.perf_counter() - started
            with CpuWindow() as w:
                r = p.evaluate(at, out)
            result.update(w.as_dict(), counts=r.counts, watermark=r.watermark)
            result["executed"] = executed_write_plan(sc)
            result["executors"] = executors(sc, cluster)
            # Each executor JVM's allowed CPUs, witnesses that `-pinned` contenders are pinned.
            result["executor_cpus"] = sorted(cluster.executor_cpus(sc.applicationId).values()) if cluster else []
            result["warm"] = _warm(p, at, out, runs)
            result["plans"] = spark_plans(p, at)
    return result


def _warm(p, at, out: Path, runs: int) -> float | None:
    best = None
    for _ in range(runs - 1):
        t = time.perf_counter()
        p.evaluate(at, out)
        s = time.perf_counter() - t
        best = s if best is None else min(best, s)
    return best


class _cluster:
    """standalone_cluster for cluster1/cluster2, nothing for local2."""

    def __init__(self, kind: str, mem: str) -> None:
        self.kind, self.mem, self.cm = kind, mem, None

    def __enter__(self):
        if not self.kind.startswith("cluster"):
            return None
        from spark_cluster import standalone_cluster

        workers, _, pinned = self.kind[len("cluster"):].partition("-")
        self.cm = standalone_cluster(workers=int(workers), cores_per_worker=1, memory=self.mem, pin=bool(pinned))
        return self.cm.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self.cm is not None:
            self.cm.__exit__(*exc)


# -- orchestration ------------------------------------------------------------------


def ensure_data(users: int, seed: int, data: Path) -> None:
    if (data / "content.parquet").exists() or (data / "content").is_dir():
        print(f"reusing the export in {data}", file=sys.stderr)
        return
    data.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    cli = Path(sys.executable).parent / "consentry"
    subprocess.run([str(cli), "generate", "--users", str(users), "--out", str(data), "--seed", str(seed),
                    "--media", "0"], check=True)
    print(f"generated {data} in {time.perf_counter() - t:.1f}s", file=sys.stderr)


def ensure_ledger(data: Path) -> str:
    from consentry.ledger import Ledger

    url = f"sqlite:///{data / 'ledger.db'}"
    with Ledger(url) as led:
        if not led.count():
            t = time.perf_counter()
            led.import_jsonl(data / "events.jsonl")
            print(f"imported the ledger in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return url


def same_as(reference: Path, out: Path) -> dict:
    """Multiset comparison of two decision outputs (a file or a folder of parts)."""
    import duckdb

    def src(p: Path) -> str:
        return f"read_parquet('{p}/*.parquet')" if p.is_dir() else f"read_parquet('{p}')"

    con = duckdb.connect()
    a, b = src(out), src(reference)
    ca = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {a}").fetchall()]
    cb = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {b}").fetchall()]
    if sorted(ca) != sorted(cb):
        return {"same": False, "why": f"columns {ca} vs {cb}"}
    cols = ", ".join(f'"{c}"' for c in cb)
    only_a = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b})").fetchone()[0]
    only_b = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {b} EXCEPT ALL SELECT {cols} FROM {a})").fetchone()[0]
    return {"same": only_a == 0 and only_b == 0, "only_here": only_a, "only_duckdb": only_b}


def run_child(args: list[str]) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", *args], check=False, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return {"ok": False, "total": time.perf_counter() - t}
    return {"ok": True, "total": time.perf_counter() - t, **json.loads(proc.stdout.strip().splitlines()[-1])}


def rate(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.0f}k"


def table(results: dict[str, dict], items: int) -> str:
    rows = [("| contender | start-up s | evaluate s | items/s | our CPU (cores) | other procs' CPU | steal "
             "| shuffles / broadcasts, decisions: planned → executed | people step: shuffles / broadcasts "
             "| people computed in the decision plan | same as DuckDB |"),
            "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|"]
    for name, r in results.items():
        label = CONTENDERS[name]
        if not r.get("ok"):
            rows.append(f"| {label} | FAILED | | | | | | | | | |")
            continue
        start = "–"
        if "startup" in r:
            start = f"{r['startup']:.1f}" + (f" (+{r['cluster_start']:.1f} cluster)" if "cluster_start" in r else "")
        secs = f"{r['seconds']:.1f}" + (f" (warm {r['warm']:.1f})" if r.get("warm") else "")
        plan = people = computed = "–"
        if "plans" in r:
            d, e, pp = r["plans"]["decisions"], r.get("executed", {}), r["plans"]["people"]
            plan = f"{d['shuffles']} / {d['broadcasts']} → {e.get('shuffles', '?')} / {e.get('broadcasts', '?')}"
            people = f"{pp['shuffles']} / {pp['broadcasts']}"
            computed = (f"{d['users_scans']}× (kept copy read {d['people_reads']}×; "
                        f"executed: {e.get('people_reads', '?')}×)")
        same = "reference" if name == "duckdb" else (
            "yes" if r.get("same", {}).get("same") else f"**no** {r.get('same')}")
        rows.append(f"| {label} | {start} | {secs} | {rate(items / r['seconds'])} | {r['own_cores']:.2f} "
                    f"| {r['other']:.0%} | {r['steal']:.0%} | {plan} | {people} | {computed} | {same} |")
    return "\n".join(rows)


def tasks_table(results: dict[str, dict]) -> str:
    rows = []
    for name, r in results.items():
        cpus = ", ".join(r.get("executor_cpus", [])) or "–"
        for e in r.get("executors", []):
            if e["id"] != "driver" or name == "local2":
                rows.append(f"| {CONTENDERS[name]} | {e['id']} | {e['worker']} | {e['tasks']} "
                            f"| {e.get('task_s', 0):.1f} | {e.get('gc_s', 0):.1f} | {e.get('shuffle_read_mb', 0):,.0f} "
                            f"| {cpus} |")
    if not rows:
        return ""
    return "\n".join(["| contender | executor | worker | tasks | task time s | GC s | shuffle read MB "
                      "| executor JVMs' CPUs |", "|---|---|---|---:|---:|---:|---:|---|", *rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1_000_000, help="people to generate (about 20 items each)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench-data", help="where the export and outputs go")
    ap.add_argument("--policy", default="recommended")
    ap.add_argument("--contenders", default=",".join(CONTENDERS), help=f"a subset of {','.join(CONTENDERS)}")
    ap.add_argument("--memory-per-core", default="2g", help="Spark memory per core (local[2] gets twice it)")
    ap.add_argument("--conf", action="append", default=[], help="a Spark setting KEY=VALUE for every Spark contender")
    ap.add_argument("--runs", type=int, default=1, help="evaluate N times per session: the first, and the best warm one")
    ap.add_argument("--no-extract", action="store_true",
                    help="read the ledger from its database on every evaluate, instead of through the events it "
                         "keeps per watermark (the CLI's way; kept in <export>-out/extracts)")
    ap.add_argument("--write-md", type=Path, help="also write the tables (and the plans) to this Markdown file")
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child is not None:
        kind, data, ledger, out, policy, mem, conf, runs, extracts = args.child
        print(json.dumps(child(kind, Path(data), ledger, Path(out), policy, mem, json.loads(conf), int(runs),
                               Path(extracts) if extracts else None), default=str))
        return

    data = (args.out_dir / (f"u{args.users}" if args.seed == 1 else f"u{args.users}-s{args.seed}")).resolve()
    ensure_data(args.users, args.seed, data)
    ledger = ensure_ledger(data)
    outs = data.parent / f"{data.name}-out"  # beside the export: decisions never go into it
    outs.mkdir(exist_ok=True)
    conf = dict(pair.split("=", 1) for pair in args.conf)
    kinds = [k.strip() for k in args.contenders.split(",") if k.strip()]
    unknown = set(kinds) - set(CONTENDERS)
    if unknown:
        ap.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    if "duckdb" not in kinds:
        kinds.insert(0, "duckdb")  # the reference every Spark run is compared with
    kinds.sort(key=lambda k: k != "duckdb")

    mem = memory_scaling()
    print(f"memory: one core streams {mem['alone_gbs']:.1f} GB/s alone, {mem['cores']} together "
          f"{mem['together_gbs']:.1f} GB/s ({mem['ratio']:.2f}x)", file=sys.stderr)
    results: dict[str, dict] = {}
    for kind in kinds:
        out = outs / f"{kind}.parquet"
        if out.is_dir():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()
        print(f"running {kind} ...", file=sys.stderr)
        r = run_child([kind, str(data), ledger, str(out), args.policy, args.memory_per_core, json.dumps(conf),
                       str(args.runs), "" if args.no_extract else str(outs / "extracts")])
        if r["ok"] and kind != "duckdb":
            r["same"] = same_as(outs / "duckdb.parquet", out)
        results[kind] = r
        print(f"  {kind}: {json.dumps({k: v for k, v in r.items() if k in ('ok', 'seconds', 'startup', 'total')})}",
              file=sys.stderr)

    ref = results["duckdb"]
    items = sum(ref.get("counts", {}).values())
    marks = {r.get("watermark") for r in results.values() if r.get("ok")}
    head = (f"## evaluate on DuckDB and Spark: {args.users:,} users, {items:,} items, policy {args.policy}\n\n"
            f"Machine: {os.cpu_count()} cores; Spark memory {args.memory_per_core} per core; ledger watermark "
            f"{', '.join(map(str, sorted(m for m in marks if m is not None)))}, "
            f"{'read from the database on every evaluate' if args.no_extract else 'read through the events kept per watermark, as the CLI reads it'}. Streaming through memory "
            f"(a 512 MB sum, each process pinned to its CPU): one core {mem['alone_gbs']:.1f} GB/s alone, "
            f"{mem['cores']} together {mem['together_gbs']:.1f} GB/s, **{mem['ratio']:.2f}×** one core: the most "
            f"that work bound by memory bandwidth can gain from the second worker here.\n")
    md = "\n".join([head, table(results, items), "", tasks_table(results), ""])
    print(md)
    if args.write_md:
        plans = []
        for name, r in results.items():
            if "plans" in r:
                plans += [f"### {CONTENDERS[name]}: people step (planned)\n", "```", r["plans"]["people_text"], "```",
                          f"### {CONTENDERS[name]}: decisions (planned)\n", "```", r["plans"]["decisions_text"], "```",
                          f"### {CONTENDERS[name]}: the write as executed (AQE final plan)\n", "```",
                          r.get("executed", {}).get("text", "(not found)"), "```"]
        args.write_md.write_text(md + "\n" + "\n".join(plans) + "\n")
        print(f"wrote {args.write_md}", file=sys.stderr)
    print(json.dumps({"users": args.users, "items": items, "memory_scaling": mem, **{
        k: {kk: vv for kk, vv in v.items() if kk not in ("counts", "plans", "executed")} for k, v in results.items()}},
        default=str))


if __name__ == "__main__":
    main()
