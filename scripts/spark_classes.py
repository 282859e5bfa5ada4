"""A class-data archive (AppCDS) for the tests' Spark JVMs, made once per pyspark and Java.

    .venv/bin/python scripts/spark_classes.py     prints the archive's path (made if missing), or nothing

The test suite starts about 90 Spark driver JVMs (a session per Spark test file,
and every `consentry ... --engine spark` a test runs), and each spent about 13 s
loading and verifying Spark's classes before its first job. From an archive of
the classes a session loads, the JVM maps them instead: about 7 s. `scripts/test.sh`
runs this before pytest and hands the path on (CONSENTRY_TEST_SPARK_CLASSES);
`tests/conftest.py` adds `-XX:SharedArchiveFile` to the drivers' options.

A JVM given a truncated archive crashes (SIGBUS), so the archive is written
under a temporary name by a JVM that exits on its own, tried by a second JVM,
and only then renamed into place. Anything that fails leaves no archive, and
the tests run as before. Test-only: consentry's own Spark settings are untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from spark_cluster import QUICK_JVM as QUICK  # noqa: E402 - the tests' JVM options, as the conftest gives them

#: What a test's Spark session does, so that its classes are in the archive.
WORKLOAD = r"""
import sys, tempfile
from consentry.engine.spark import session
s = session("local[2]", {"spark.sql.shuffle.partitions": "2"})
d = tempfile.mkdtemp()
s.sql("SELECT id, id % 7 AS k, CAST(id AS STRING) AS t, TIMESTAMP '2024-06-26 00:00:00' AS at FROM range(1000)") \
    .write.parquet(d + "/p")
df = s.read.parquet(d + "/p")
df.createOrReplaceTempView("p")
s.sql("SELECT k, count(*), max(at), row_number() OVER (ORDER BY k) FROM p GROUP BY k").collect()
s.sql("SELECT a.k, b.t FROM p a LEFT JOIN p b ON a.t = b.t WHERE a.id < 10").collect()
df.write.json(d + "/j"); s.read.json(d + "/j").count()
df.write.csv(d + "/c", header=True); s.read.csv(d + "/c", header=True).count()
df.mapInArrow(lambda batches: batches, df.schema).count()
s.stop()
"""

#: Stops the driver JVM and waits for it: the archive is written as it exits.
STOP = r"""
from pyspark import SparkContext
gw = SparkContext._gateway
proc = getattr(gw, "proc", None)
gw.shutdown()
if proc is not None:
    proc.stdin.close()
    sys.exit(0 if proc.wait(120) == 0 else 1)
sys.exit(1)
"""

TRY = r"""
from consentry.engine.spark import session
s = session("local[1]")
assert s.sql("SELECT 41 + 1 AS x").collect()[0]["x"] == 42
s.stop()
"""


def archive_path() -> Path | None:
    """The archive for this venv's pyspark and this machine's Java, beside the venv's Python."""
    try:
        import pyspark

        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60).stderr
    except (ImportError, OSError, subprocess.SubprocessError):
        return None
    tag = "".join(ch for ch in java.splitlines()[0] if ch.isalnum() or ch in ".-_")[:60] if java else "java"
    return Path(sys.prefix) / f"spark-classes-{pyspark.__version__}-{tag}.jsa"


def run(code: str, opts: str) -> bool:
    env = {**os.environ, "SPARK_SUBMIT_OPTS": opts}
    try:  # in the temp folder: a JVM that crashes on a bad archive leaves its hs_err_pid*.log there
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600,
                              cwd=tempfile.gettempdir())
    except subprocess.SubprocessError:
        return False
    return done.returncode == 0


def make(path: Path) -> bool:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")  # beside it: the rename is atomic
    try:
        if not run(WORKLOAD + STOP, f"{QUICK} -XX:ArchiveClassesAtExit={tmp}") or not tmp.is_file():
            return False
        if not run(TRY, f"{QUICK} -XX:SharedArchiveFile={tmp} -Xshare:on"):  # on: refuse to start without it
            return False
        os.replace(tmp, path)
        return True
    except OSError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def main() -> int:
    path = archive_path()
    if path is None:
        return 0
    if path.is_file() or make(path):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
