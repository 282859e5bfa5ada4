"""A real Spark standalone cluster on 127.0.0.1, for tests and benchmarks.

    with standalone_cluster(workers=2) as cluster:
        Platform(..., engine="spark", spark_master=cluster.url)

The master and every worker are started from pyspark's own launcher
(`<pyspark>/bin/spark-class org.apache.spark.deploy.master.Master ...`), each
as a subprocess in its own process group with its log in a temporary folder.
The context manager waits until the master's JSON (`<ui>/json/`) lists every
worker as ALIVE, and on exit sends SIGTERM, then SIGKILL, to every process
group (the executors a worker forks are in its group) and waits for them.

Which executor ran on which worker: every executor shares the host 127.0.0.1,
so an executor's `hostPort` in the application's REST API cannot tell workers
apart, and the master's JSON lists applications without their executors. Each
worker's own JSON (`<worker ui>/json/`) lists the executors it launched, as
(`appid`, executor `id`) pairs: `Cluster.executors_by_worker(app_id)` reads
them. The executor ids are the ones the application's REST API reports
(`/api/v1/applications/<app>/executors`), so the two can be joined. As a
second, independent witness, each worker creates `<work dir>/<app>/<executor id>/`
for every executor it launches (`Cluster.executor_dirs(app_id)`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["QUICK_JVM", "Cluster", "ClusterError", "Worker", "free_port", "missing", "pyspark_home", "standalone_cluster"]


#: For tests: the client compiler only and one GC thread. A minute-long job on
#: fresh JVMs then costs about half the CPU; never use it to measure speed.
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


class ClusterError(RuntimeError):
    """The cluster did not come up; the message holds the tails of its logs."""


def missing() -> str | None:
    """Why a cluster cannot be started here (no Java, no pyspark), or None."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'consentry[spark]')"
    java = Path(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java or not Path(java).exists():
        return "no Java: Spark needs a JDK (17) on PATH or in JAVA_HOME"
    return None


def pyspark_home() -> Path:
    """The pip-installed pyspark folder: it is a whole SPARK_HOME (bin/, jars/)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    """A TCP port nothing listens on now (bind to port 0, let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 30.0):  # noqa: ANN201 - parsed JSON
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return json.load(resp)


@dataclass
class Worker:
    id: str  # worker-<date>-127.0.0.1-<port>, as the master names it
    host_port: str  # 127.0.0.1:<port>
    ui: str  # its web UI, http://127.0.0.1:<port>
    work_dir: Path
    cpu: int | None = None  # the one CPU it and its executors run on (`pin`), else None


@dataclass
class Cluster:
    url: str  # spark://127.0.0.1:<port>
    ui: str  # the master's web UI, http://127.0.0.1:<port>
    workers: list[Worker] = field(default_factory=list)
    logs: Path = Path()  # the master's and workers' logs (and the workers' work dirs)
    started: float = 0.0  # seconds from launch until every worker was ALIVE

    def state(self) -> dict:
        """The master's JSON: workers, aliveworkers, activeapps, ..."""
        return get_json(f"{self.ui}/json/")

    def executors_by_worker(self, app_id: str) -> dict[str, list[str]]:
        """Worker id -> ids of the executors of `app_id` it is running now (from
        each worker's own JSON; finished executors are included too)."""
        found: dict[str, list[str]] = {}
        for w in self.workers:
            state = get_json(f"{w.ui}/json/")
            ids = [str(e["id"]) for e in state.get("executors", []) + state.get("finishedexecutors", [])
                   if e.get("appid") == app_id]
            found[w.id] = ids
        return found

    def executor_cpus(self, app_id: str) -> dict[str, str]:
        """Executor id -> the CPUs its JVM may run on (`Cpus_allowed_list` of
        /proc/<pid>/status), for the live executors of `app_id`."""
        found = {}
        for p in Path("/proc").iterdir():
            try:
                args = (p / "cmdline").read_bytes().decode(errors="replace").split("\0") if p.name.isdigit() else []
                if "org.apache.spark.executor.CoarseGrainedExecutorBackend" in args and app_id in args:
                    status = (p / "status").read_text().splitlines()
                    found[args[args.index("--executor-id") + 1]] = next(
                        line.split(":", 1)[1].strip() for line in status if line.startswith("Cpus_allowed_list"))
            except (OSError, ValueError, IndexError, StopIteration):
                continue
        return found

    def executor_dirs(self, app_id: str) -> dict[str, list[str]]:
        """Worker id -> executor ids found as `<work dir>/<app_id>/<id>/` folders."""
        return {w.id: sorted(p.name for p in (w.work_dir / app_id).iterdir() if p.is_dir())
                if (w.work_dir / app_id).is_dir() else [] for w in self.workers}


def _env(home: Path, java_opts: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if java_opts and java_opts not in env.get("JAVA_TOOL_OPTIONS", ""):  # every JVM of the cluster reads it, executors included (they inherit a worker's environment)
        env["JAVA_TOOL_OPTIONS"] = f"{env.get('JAVA_TOOL_OPTIONS', '')} {java_opts}".strip()
    env.update({
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_HOSTNAME": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        # The master's REST submission server binds a fixed port (6066) by
        # default: two clusters (or a stray one) would collide on it.
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false -Duser.timezone=UTC",
        "SPARK_WORKER_OPTS": "-Duser.timezone=UTC",
        "SPARK_NO_DAEMONIZE": "1",
    })
    env.pop("SPARK_CONF_DIR", None)  # pyspark's own defaults, not a machine's spark-defaults.conf
    return env


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty)"


def _stop(procs: list[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM every process group, then SIGKILL what is left; reap them all."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    for p in procs:
        # Also the group's other members (the executors a worker forked), even
        # when the group's leader already exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)
    # The executors were the workers' children: once orphaned, init reaps them.
    # Wait until no process is left in any of the groups.
    deadline = time.monotonic() + 10
    for p in procs:
        while time.monotonic() < deadline:
            try:
                os.killpg(p.pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.1)


@contextlib.contextmanager
def standalone_cluster(workers: int = 2, cores_per_worker: int = 1, memory: str = "1g",
                       timeout: float = 90.0, java_opts: str | None = None, pin: bool = False) -> Iterator[Cluster]:
    """A Spark standalone master and `workers` workers on 127.0.0.1, each offering
    `cores_per_worker` cores and `memory` to executors; stopped on exit.

    `java_opts` go to every JVM of the cluster, the executors' too, through
    JAVA_TOOL_OPTIONS (the executors' own `spark.executor.extraJavaOptions`
    belong to the application, and consentry fixes them). Tests pass
    `QUICK_JVM`: short jobs on cold JVMs spend most of their CPU in the JIT.

    `pin` keeps worker i, and the executors it forks, on CPU i (modulo the
    CPUs there are; `os.sched_setaffinity`, inherited by children), as if each
    worker were a machine of `cores_per_worker` = 1 core: unpinned, a lone
    worker's executor runs its JIT compiler and collector on the other cores,
    which on a real cluster belong to the other machines. The master and
    the driver are not pinned."""
    if why := missing():
        raise ClusterError(why)
    home = pyspark_home()
    spark_class = home / "bin" / "spark-class"
    env = _env(home, java_opts)
    tmp = Path(tempfile.mkdtemp(prefix="consentry-cluster-"))
    procs: list[subprocess.Popen] = []
    logs: list[Path] = []

    cpus = sorted(os.sched_getaffinity(0))

    def start(name: str, args: list[str], cpu: int | None = None) -> None:
        log = tmp / f"{name}.log"
        logs.append(log)
        pinned = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
        with open(log, "wb") as fh:
            procs.append(subprocess.Popen([str(spark_class), *args], env=env, cwd=tmp, stdout=fh,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True, preexec_fn=pinned))

    def failure(why: str) -> ClusterError:
        tails = "\n".join(f"--- {log.name} (last lines) ---\n{_tail(log)}" for log in logs)
        return ClusterError(f"{why}\nlogs in {tmp}\n{tails}")

    try:
        launched = time.monotonic()
        port, ui_port = free_port(), free_port()
        url, ui = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}"
        start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                         "--webui-port", str(ui_port)])
        spec: dict[int, tuple[int, Path, int | None]] = {}  # worker port -> (web UI port, work dir, CPU)
        for i in range(workers):
            wd = tmp / f"worker-{i}"
            wd.mkdir()
            wport, wui_port = free_port(), free_port()
            cpu = cpus[i % len(cpus)] if pin else None
            spec[wport] = (wui_port, wd, cpu)
            start(f"worker-{i}", ["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                                  "--port", str(wport), "--cores", str(cores_per_worker), "--memory", memory,
                                  "--webui-port", str(wui_port), "--work-dir", str(wd)],
                  cpu=cpu)
        deadline = time.monotonic() + timeout
        alive: list[dict] = []
        while True:
            for p, log in zip(procs, logs, strict=True):
                if p.poll() is not None:
                    raise failure(f"{log.stem} exited with code {p.returncode} before the cluster was up")
            with contextlib.suppress(OSError, ValueError):
                alive = [w for w in get_json(f"{ui}/json/").get("workers", [])
                         if w.get("state") == "ALIVE" and w.get("port") in spec]
            if len(alive) >= workers:
                break
            if time.monotonic() > deadline:
                raise failure(f"the master at {ui} lists {len(alive)} ALIVE worker(s) of {workers} after {timeout:.0f}s")
            time.sleep(0.5)
        cluster = Cluster(url=url, ui=ui, logs=tmp, started=time.monotonic() - launched)
        for w in sorted(alive, key=lambda w: w["id"]):
            wui_port, wd, cpu = spec[w["port"]]
            cluster.workers.append(Worker(id=w["id"], host_port=f"{w['host']}:{w['port']}",
                                          ui=f"http://127.0.0.1:{wui_port}", work_dir=wd, cpu=cpu))
        yield cluster
    except BaseException:
        _stop(procs)
        raise  # the logs stay in `tmp` for whoever reads the error
    else:
        _stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)
