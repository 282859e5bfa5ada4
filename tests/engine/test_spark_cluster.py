"""The Spark engine on a real standalone cluster (a master and two workers on
127.0.0.1, started from pyspark's own launcher by tests/spark_cluster.py):
the `consentry evaluate --engine spark --spark-master spark://...` command and
`Platform(engine="spark")` both decide exactly what the DuckDB engine decides,
and the work really is spread over both workers.

Which executor ran on which worker is read from each worker's own JSON
(`<worker ui>/json/` lists its executors by application id and executor id)
and joined with the application's REST API (`/api/v1/applications/<app>/executors`,
which has each executor's totalTasks); every executor shares the host
127.0.0.1, so `hostPort` alone cannot tell the workers apart. The folders each
worker creates for its executors (`<work dir>/<app>/<executor id>/`) are checked
to say the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from spark_cluster import QUICK_JVM, Cluster, get_json, missing, standalone_cluster

if _why := missing():
    pytest.skip(f"Spark standalone cluster tests need Java and pyspark: {_why}", allow_module_level=True)

from consentry import Platform  # noqa: E402
from consentry.generate import generate  # noqa: E402
from consentry.ledger import Ledger  # noqa: E402
from consentry.timeutil import parse_instant  # noqa: E402

pytestmark = pytest.mark.slow  # every test here: see the markers in pyproject.toml

AT = "2024-06-26T00:00:00Z"
T = parse_instant(AT)
USERS = 3000
#: Enough partitions that both one-core executors get tasks; AQE must not
#: coalesce the shuffles back into one partition, and no job may start before
#: both executors have registered.
CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.sql.adaptive.coalescePartitions.enabled": "false",
    "spark.scheduler.minRegisteredResourcesRatio": "1.0",
    "spark.scheduler.maxRegisteredResourcesWaitingTime": "60s",
}
#: The driver binds to loopback and uses this venv's Python; its JVM, like the
#: cluster's, skips the optimising JIT (this checks placement and results, not speed).
DRIVER_ENV = {
    "SPARK_LOCAL_IP": "127.0.0.1",
    "PYSPARK_PYTHON": sys.executable,
    "PYSPARK_DRIVER_PYTHON": sys.executable,
    "JAVA_TOOL_OPTIONS": f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} {QUICK_JVM}".strip(),
}


@pytest.fixture(scope="module")
def driver_env() -> Iterator[None]:
    """DRIVER_ENV for this process (its JVM is started by the first Spark session)."""
    saved = {k: os.environ.get(k) for k in DRIVER_ENV}
    os.environ.update(DRIVER_ENV)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def cluster(driver_env) -> Iterator[Cluster]:
    # Pinned as benchmarks/spark.py pins its `-pinned` clusters: the placement checks cover it too.
    with standalone_cluster(workers=2, cores_per_worker=1, memory="1g", java_opts=QUICK_JVM, pin=True) as c:
        assert len(c.workers) == 2
        yield c


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A generated export and its ledger in SQLite."""
    root = tmp_path_factory.mktemp("spark-cluster")
    export = root / "export"
    generate(export, users=USERS, seed=11, media=0)
    url = f"sqlite:///{root / 'ledger.db'}"
    with Ledger(url) as led:
        led.import_jsonl(export / "events.jsonl")
    return export, url


@pytest.fixture(scope="module")
def reference(data: tuple[Path, str]) -> Path:
    """The DuckDB engine's decisions for the same inputs and cut-off."""
    export, url = data
    out = export.parent / "duckdb.parquet"
    with Platform(export=export, ledger=url, policy="recommended", engine="duckdb") as p:
        result = p.evaluate(T, out)
    assert result.items > 10 * USERS
    return out


def multiset_difference(spark_out: Path, duck_out: Path) -> tuple[int, int, int]:
    """(rows in Spark's parts, rows only Spark has, rows only DuckDB has), counting duplicates."""
    con = duckdb.connect()
    a = f"read_parquet('{spark_out}/*.parquet')"
    b = f"read_parquet('{duck_out}')"
    cols_a = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {a}").fetchall()]
    cols_b = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {b}").fetchall()]
    assert sorted(cols_a) == sorted(cols_b), (cols_a, cols_b)
    cols = ", ".join(f'"{c}"' for c in cols_b)
    n = con.execute(f"SELECT count(*) FROM {a}").fetchone()[0]
    only_a = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b})").fetchone()[0]
    only_b = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {b} EXCEPT ALL SELECT {cols} FROM {a})").fetchone()[0]
    return n, only_a, only_b


def _consentry() -> list[str]:
    script = Path(sys.executable).parent / "consentry"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from consentry.cli import app; app()"]


def test_the_cli_on_a_standalone_cluster_decides_as_duckdb_does(cluster, data, reference, tmp_path):
    export, url = data
    out = tmp_path / "decisions.parquet"
    env = {**os.environ, **DRIVER_ENV, "CONSENTRY_HOME": str(tmp_path), "COLUMNS": "200"}
    env.pop("CONSENTRY_LEDGER", None)
    confs = [arg for k, v in CONF.items() for arg in ("--conf", f"{k}={v}")]
    run = subprocess.run(
        [*_consentry(), "evaluate", "--data", str(export), "--at", AT, "--out", str(out), "--ledger", url,
         "--engine", "spark", "--spark-master", cluster.url, *confs],
        check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-5000:]}"
    assert "engine spark" in run.stdout
    assert out.is_dir() and list(out.glob("*.parquet"))
    n, only_spark, only_duck = multiset_difference(out, reference)
    assert (only_spark, only_duck) == (0, 0), f"{only_spark} rows only on Spark, {only_duck} only on DuckDB, of {n}"
    assert n == duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{reference}')").fetchone()[0]


def test_platform_on_a_standalone_cluster_runs_tasks_on_both_workers(cluster, data, reference, tmp_path):
    export, url = data
    out = tmp_path / "decisions.parquet"
    with Platform(export=export, ledger=url, policy="recommended", engine="spark", spark_master=cluster.url,
                  spark_conf=CONF) as p:
        result = p.evaluate(T, out)
        sc = p.spark.sparkContext
        assert sc.master == cluster.url
        app = sc.applicationId
        executors = get_json(f"{sc.uiWebUrl}/api/v1/applications/{app}/executors")
        by_worker = cluster.executors_by_worker(app)
        dirs = cluster.executor_dirs(app)
        cpus = cluster.executor_cpus(app)
        active = [a["id"] for a in cluster.state().get("activeapps", [])]

    assert app in active, f"the master does not list {app} among its running applications: {active}"
    workers_used = {w for w, ids in by_worker.items() if ids}
    assert len(workers_used) == 2, f"executors by worker: {by_worker}"
    assert dirs == {w: sorted(ids) for w, ids in by_worker.items()}, (dirs, by_worker)
    tasks = {e["id"]: e["totalTasks"] for e in executors if e["id"] != "driver"}
    placed = {i for ids in by_worker.values() for i in ids}
    assert set(tasks) == placed, f"REST API executors {sorted(tasks)}, workers' executors {by_worker}"
    assert all(n > 0 for n in tasks.values()), f"tasks per executor: {tasks} (by worker: {by_worker})"
    # Each executor runs on its worker's CPU alone (two CPUs here: one each).
    want = {i: str(w.cpu) for w in cluster.workers for i in by_worker[w.id]}
    assert cpus == want, f"executor JVMs' CPUs {cpus}, their workers' {want}"
    if (os.cpu_count() or 1) > 1:
        assert len(set(want.values())) == 2, want

    n, only_spark, only_duck = multiset_difference(out, reference)
    assert (only_spark, only_duck) == (0, 0), f"{only_spark} rows only on Spark, {only_duck} only on DuckDB, of {n}"
    assert n == result.items
