"""The order a parallel run hands out test files: slowest first, from tests/file_seconds.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from test_file_seconds import file_seconds  # noqa: E402

SECONDS = json.loads((ROOT / "tests" / "file_seconds.json").read_text())


def test_every_file_listed_is_a_test_file_of_this_suite() -> None:
    """A file renamed or removed leaves a stale weight: the list is measured again then."""
    missing = [f for f in SECONDS if not (ROOT / f).is_file()]
    assert not missing, f"tests/file_seconds.json names files that are gone: {missing}"
    assert all(f.startswith("tests/") and Path(f).name.startswith("test_") for f in SECONDS)


@pytest.mark.slow
def test_files_are_collected_slowest_first_and_keep_their_tests_in_order(tmp_path: Path) -> None:
    light, heavy, unlisted = "tests/test_words.py", "tests/test_i18n.py", "tests/test_public_api.py"
    weights = tmp_path / "seconds.json"
    weights.write_text(json.dumps({light: 1.5, heavy: 30.0}))

    def collected(*files: str, seconds: Path = weights) -> list[str]:
        run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                              "-n", "0", *files], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "CONSENTRY_TEST_FILE_SECONDS": str(seconds)})
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        return [line for line in run.stdout.splitlines() if "::" in line]

    ids = collected(unlisted, light, heavy)
    files = [i.split("::")[0] for i in ids]
    blocks = [f for k, f in enumerate(files) if k == 0 or files[k - 1] != f]
    assert blocks == [heavy, light, unlisted]  # heaviest first, each file's tests together, unlisted last
    assert [i for i in ids if i.startswith(heavy)] == collected(heavy)  # a file's own order kept
    assert len(set(ids)) == len(ids) > 3
    # no weights: the order asked for
    none = tmp_path / "none.json"
    none.write_text("{}")
    assert [i.split("::")[0] for i in collected(unlisted, light, seconds=none)][0] == unlisted


def test_the_seconds_are_summed_per_file_from_junit_xml(tmp_path: Path) -> None:
    xml = tmp_path / "run.xml"
    xml.write_text("""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.engine.test_spark" name="test_a" time="2.5"/>
<testcase classname="tests.engine.test_spark.TestGroup" name="test_b" time="1.25"/>
<testcase classname="tests.test_words" name="test_c" time="0.5"/>
<testcase classname="tests.engine.test_spark" name="test_d[x]" time="0.25"/>
</testsuite></testsuites>""")
    assert file_seconds(str(xml)) == {"tests/engine/test_spark.py": 4.0, "tests/test_words.py": 0.5}
    assert list(file_seconds(str(xml))) == ["tests/engine/test_spark.py", "tests/test_words.py"]


def test_the_spark_drivers_start_from_the_class_archive_when_there_is_one() -> None:
    """scripts/test.sh hands the archive's path on; the conftest gives it to every driver JVM
    (unless SPARK_SUBMIT_OPTS was set before the run: a developer's own options win)."""
    archive = os.environ.get("CONSENTRY_TEST_SPARK_CLASSES", "")
    opts = os.environ.get("SPARK_SUBMIT_OPTS", "")
    if not opts.startswith("-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"):
        pytest.skip(f"SPARK_SUBMIT_OPTS was set before the run: {opts!r}")
    assert ("-XX:SharedArchiveFile=" in opts) == bool(archive and Path(archive).is_file()), (archive, opts)
    if archive:
        assert opts.endswith(f" -XX:SharedArchiveFile={archive}")


@pytest.mark.slow
def test_a_broken_class_archive_is_never_handed_on(tmp_path: Path) -> None:
    """A JVM given a truncated archive crashes (SIGBUS), so scripts/spark_classes.py tries each
    new archive with `-Xshare:on` before it keeps it: a truncated one fails that try."""
    if subprocess.run(["sh", "-c", "command -v java"], capture_output=True).returncode != 0:
        pytest.skip("no Java: the Spark tests do not run either")
    import spark_classes

    whole = os.environ.get("CONSENTRY_TEST_SPARK_CLASSES", "")
    if not (whole and Path(whole).is_file()):
        pytest.skip("no archive was made for this run (scripts/test.sh makes one)")
    whole = str(Path(whole).resolve())  # the tries run in the temp folder
    truncated = tmp_path / "truncated.jsa"
    with open(whole, "rb") as src:
        truncated.write_bytes(src.read(1_000_000))
    assert not spark_classes.run(spark_classes.TRY, f"{spark_classes.QUICK} -XX:SharedArchiveFile={truncated} -Xshare:on")
    assert spark_classes.run(spark_classes.TRY, f"{spark_classes.QUICK} -XX:SharedArchiveFile={whole} -Xshare:on")
