"""Objections per second through the HTTP API, and whether any acknowledged one is lost.

    python benchmarks/objection_intake.py                       # SQLite
    python benchmarks/objection_intake.py --postgres URL        # and PostgreSQL (a scratch database is created)

Starts `consentry serve` (uvicorn, --workers 2) on a fresh ledger, drives it
with wrk (Debian package `wrk`: a C load generator, so the client does not
steal the server's CPU) from C concurrent connections, each request an
objection for a different person. Baseline in the same run: the same server
answering a static file (no database), the ceiling of the web stack itself.
Afterwards the ledger rows are counted: every 201 must be there. The last
column ("others") is the share of the CPUs that other processes took during
the runs: on a shared machine, trust only runs where it is near 0%.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

LUA = """
counter = 0
request = function()
  counter = counter + 1
  local path = string.format("/api/v1/people/b%%d-%%d/objection", math.random(1, 1000000000), counter)
  return wrk.format("POST", path, {["Authorization"] = "Bearer %s", ["Content-Type"] = "application/json"%s}, "{}")
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not come up")


def _ticks(pids: list[int]) -> int:
    """CPU time (clock ticks) used so far by these processes and their children's threads."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def _tree(pid: int) -> list[int]:
    out = [pid]
    for p in out:
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _machine_busy() -> int:
    cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return sum(map(int, cpu)) - int(cpu[3]) - int(cpu[4])  # all but idle and iowait


def wrk(url: str, seconds: int, connections: int, threads: int, script: Path | None, server: int | None = None) -> dict:
    """`server`: its pid, to tell how much CPU other processes took meanwhile
    (this machine is shared: a busy neighbour shows up there, not as a slow server)."""
    import resource

    pids = _tree(server) if server else []
    before = (_machine_busy(), _ticks(pids), resource.getrusage(resource.RUSAGE_CHILDREN))
    start = time.monotonic()
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    if server:
        hz, ncpu, wall = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1, time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_ticks = (after.ru_utime + after.ru_stime - before[2].ru_utime - before[2].ru_stime) * hz
        other = _machine_busy() - before[0] - (_ticks(pids) - before[1]) - wrk_ticks
        other_cpu = max(0.0, other / (hz * ncpu * wall))
    else:
        other_cpu = float("nan")

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "requests": total,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
        "other_cpu": other_cpu,
    }


def run_backend(name: str, ledger_url: str, data: Path, args: argparse.Namespace, work: Path) -> dict:
    from consentry.access import ApiClients
    from consentry.ledger import Ledger

    with Ledger(ledger_url) as led:
        _, key = ApiClients(led.engine).create("bench")
        before = led.count()
    port = free_port()
    env = dict(os.environ, CONSENTRY_SECRET_KEY=secrets.token_hex(32), CONSENTRY_HOME=str(work))
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "consentry"), "serve", "--data", str(data), "--ledger", ledger_url,
         "--mail-dir", str(work / "mail"), "--port", str(port), "--workers", str(args.workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base + "/static/site.css")
        script = work / f"{name}.lua"
        script.write_text(LUA % (key, ', ["Connection"] = "close"' if args.new_connections else ""))
        wrk(base + "/static/site.css", 2, args.connections, args.threads, None)  # warm up
        floor = wrk(base + "/static/site.css", args.seconds, args.connections, args.threads, None, server.pid)
        intake = wrk(base, args.seconds, args.connections, args.threads, script, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    with Ledger(ledger_url) as led:
        rows = led.count() - before
    acknowledged = intake["requests"] - intake["non_2xx"]
    return {"floor": floor, "intake": intake, "ledger_rows": rows, "acknowledged": acknowledged}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--new-connections", action="store_true",
                    help="each objection on a new connection (Connection: close), as clients that keep none open")
    ap.add_argument("--postgres", help="a PostgreSQL server URL (postgresql+psycopg://user@host:port/db)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="consentry-intake-"))
    from consentry.generate import generate

    data = work / "export"
    generate(data, users=500, seed=1, media=0)
    results = {"sqlite": run_backend("sqlite", f"sqlite:///{work / 'ledger.db'}", data, args, work)}
    if args.postgres:
        from sqlalchemy import create_engine, text

        db = f"consentry_intake_{os.getpid()}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {db}"))
        url = args.postgres.rsplit("/", 1)[0] + "/" + db
        with admin.connect() as conn:  # what "durable" means on this server: printed with its figures
            durability = {k: conn.execute(text(f"SHOW {k}")).scalar_one() for k in ("fsync", "synchronous_commit")}
        try:
            results["postgresql"] = run_backend("postgresql", url, data, args, work)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
    shutil.rmtree(work, ignore_errors=True)

    print(f"\n== objection intake: {args.workers} workers, {args.connections} connections"
          f"{' (a new one per objection)' if args.new_connections else ''}, {args.seconds}s each ==")
    if args.postgres:
        print("PostgreSQL server: " + ", ".join(f"{k}={v}" for k, v in durability.items()))
        if durability["fsync"] != "on" or durability["synchronous_commit"] != "on":
            print("  an acknowledged event is not on disk when this server answers: its figures overstate "
                  "a durable PostgreSQL (run it with fsync=on and synchronous_commit=on)")
    print(f"{'ledger':<11}{'objections/s':>13}{'p50 ms':>9}{'p99 ms':>9}{'static/s':>10}{'÷ static':>9}"
          f"{'acked':>8}{'in ledger':>11}{'lost':>6}{'others':>8}")
    for name, r in results.items():
        i, f = r["intake"], r["floor"]
        lost = max(0, r["acknowledged"] - r["ledger_rows"])
        # During a PostgreSQL intake its server's own work counts as "other": use the static run there.
        others = f["other_cpu"] if name == "postgresql" else max(i["other_cpu"], f["other_cpu"])
        print(f"{name:<11}{i['rps']:>13,.0f}{i['p50_ms']:>9.1f}{i['p99_ms']:>9.1f}{f['rps']:>10,.0f}"
              f"{i['rps'] / f['rps']:>9.2f}{r['acknowledged']:>8}{r['ledger_rows']:>11}{lost:>6}"
              f"{others:>8.0%}")
        if others > 0.05:
            print(f"  {name}: other processes used {others:.0%} of the CPUs meanwhile:"
                  " figures are low, measure again on a quiet machine")
        if i["non_2xx"] or i["socket_errors"]:
            print(f"  {name}: {i['non_2xx']} non-2xx responses, {i['socket_errors']} socket errors")


if __name__ == "__main__":
    main()
