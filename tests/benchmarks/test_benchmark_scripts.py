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
