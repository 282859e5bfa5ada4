"""The benchmarks that drive a whole snapshot's life still run, at a tiny size.

Their figures are measured by hand (benchmarks/README.md); this only keeps the
scripts from rotting when the library changes under them (snapshots.py once
wrapped a function that had been renamed, and nobody noticed for a session),
and holds them to their own checks: no objector's row left, no stray file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here: see the markers in pyproject.toml

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_snapshots_benchmark_builds_purges_rebuilds_and_checks(tmp_path) -> None:
    done = run(["benchmarks/snapshots.py", "--users", "2000", "--media", "20", "--buckets", "16", "--objectors", "50",
                "--work", str(tmp_path / "work")])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    check = result["check"]
    assert check["objectors"] == 50 and check["objector_rows_left"] == 0
    assert check["purged_rows"] == check["rebuilt_rows"] > 0 and check["item_ids_differing"] == 0
    assert result["purge"]["rows_removed"] > 0 and result["purge"]["phases"]["validate export"] < 5


def test_purge_watch_benchmark_streams_objections_and_measures_them(tmp_path) -> None:
    out = tmp_path / "figures.json"
    run(["benchmarks/purge_watch.py", "--users", "2000", "--media", "20", "--minutes", "0.1", "--rate", "60",
         "--interval", "1", "--buckets", "16", "--work", str(tmp_path / "work"), "--write-json", str(out)])
    figures = json.loads(out.read_text())
    assert figures["objections"] == 6 and figures["objector_rows_left"] == 0 and figures["stray_files"] == 0
    assert 0 < figures["unreadable_s"]["99"] <= figures["bytes_gone_s"]["100"] < 60
    assert figures["purge_rounds_with_removals"] >= 1 and figures["watcher_cpu_s"] > 0


def test_impact_benchmark_finds_every_tagged_person_only_with_the_tagged_count(tmp_path) -> None:
    done = run(["benchmarks/impact.py", "--users", "1000", "--people", "20", "--rounds", "1", "--work", str(tmp_path)])
    rows = {line.split("|")[1].strip(): line.split("|")[4].strip() for line in done.stdout.splitlines()
            if line.startswith("| own rows")}
    assert rows["own rows and tagged photos, the version's index (now)"] == "20 of 20", done.stdout
    assert rows["own rows and tagged photos, every file (2026-12-05)"] == "20 of 20", done.stdout
    assert rows["own rows, one bucket (2026-12-04)"] != "20 of 20", done.stdout  # someone only shown in others' photos
    assert "writing the index of this version" in done.stdout


def test_eligibility_benchmark_decides_with_every_contender_and_they_agree(tmp_path) -> None:
    """It once wrote its decisions into the export's folder, which `evaluate`
    refuses since 2026-12-06 (02:06): the script failed and nothing noticed."""
    data = tmp_path / "u1500"
    done = run(["benchmarks/eligibility.py", "--users", "1500", "--data", str(data), "--pandas-max-users", "1500"])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["items"] > 0
    assert all(r["ok"] for name, r in result.items() if isinstance(r, dict) and "ok" in r), done.stdout
    assert result["polars"]["mismatches"] == 0 and result["pandas"]["mismatches"] == 0
    assert "decisions differing from the engine's: 0" in done.stdout
    assert not any(p.suffix == ".parquet" and "engine" in p.name for p in data.rglob("*")), "decisions in the export"


def test_spark_benchmark_decides_as_duckdb_does(tmp_path) -> None:
    """The same guard: its decisions went into the export's folder too."""
    done = run(["benchmarks/spark.py", "--users", "1000", "--out-dir", str(tmp_path), "--contenders", "duckdb,local2"])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["duckdb"]["ok"] and result["local2"]["ok"], done.stdout
    assert result["local2"]["same"] == {"same": True, "only_here": 0, "only_duckdb": 0}
    assert not list((tmp_path / "u1000").rglob("*-out")), "outputs in the export"
