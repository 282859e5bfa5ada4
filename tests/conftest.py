from __future__ import annotations

import functools
import json
import os
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, make_url, text

HERE = Path(__file__).parent
# The kits (exportkit.py, center_kit.py, smtp_server.py, ...) live here, beside this file, and the
# tests in one folder per package of src/consentry, without __init__.py: pytest's default
# "prepend" import mode imports each test file by its basename (unique across the folders) and
# puts only that file's own folder on sys.path. Here first, so `from exportkit import ...` works
# from every folder; then every test folder, because a few test modules import another's helpers
# by its name (engine/test_spark and the benchmarks' baselines use engine/test_properties'
# worlds; test_spark also snapshots/test_snapshots' `world` fixture and sources/
# test_malformed_exports' cases), whichever folder pytest is asked to run.
sys.path[:0] = [str(HERE), *(str(d) for d in sorted(HERE.iterdir()) if d.is_dir() and any(d.glob("test_*.py")))]

# rich fixes a console's width for good when COLUMNS is set as the console is made, and the CLI's
# consoles are made when it is imported. In a pytest-xdist run, 3 tests that set COLUMNS=200 got
# tables wrapped at 80 (as a serial run does with COLUMNS=80 exported). Made here with COLUMNS
# unset, the consoles read it at every print, whatever imported the CLI first.
_columns = os.environ.pop("COLUMNS", None)
import consentry.commands._common  # noqa: E402, F401
if _columns is not None:
    os.environ["COLUMNS"] = _columns

from consentry.ledger import Ledger  # noqa: E402
from consentry.timeutil import parse_instant  # noqa: E402
from spark_cluster import QUICK_JVM  # noqa: E402 - the one home of the tests' JVM options

# The tests' Spark JVMs read kilobytes and most live for one CLI command: the C1 compiler alone
# (and the serial collector) start them faster than the tiered C2 a long job wants. Measured:
# tests/sources/test_object_store.py 156 s -> 135 s, its four `consentry ... --engine spark` runs;
# the modules that keep one session for all their tests neither gain nor lose (191 s -> 196 s).
# spark-submit passes SPARK_SUBMIT_OPTS to the driver's JVM; consentry's own settings are untouched.
# With the class-data archive scripts/test.sh makes once (scripts/spark_classes.py), a driver maps
# Spark's classes instead of loading them: a session starts in 6 s instead of 13 s here, one
# `consentry evaluate --engine spark` of a bucket takes 37 s instead of 45 s; a run starts about 90.
SPARK_CLASSES = os.environ.get("CONSENTRY_TEST_SPARK_CLASSES", "")
os.environ.setdefault("SPARK_SUBMIT_OPTS", QUICK_JVM + (
    f" -XX:SharedArchiveFile={SPARK_CLASSES}" if SPARK_CLASSES and Path(SPARK_CLASSES).is_file() else ""))

if TYPE_CHECKING:
    from smtp_server import SmtpTestServer

T = parse_instant("2024-06-26T00:00:00Z")


@pytest.fixture(autouse=True)
def _no_mail_sender_left_running() -> Iterator[None]:
    """A test that leaves a mail sender running fails. The sender lives until its
    center is garbage-collected, and on the worker's PostgreSQL database (the same
    for every test of a worker) it claims the next test's mails and holds them for
    its 300 s lease: CI once failed that way ("timed out ... re-delivered after the
    lease"). Close the center (`Center.close`, or the app's shutdown) or stop the sender."""
    before = {t for t in threading.enumerate() if t.name == "mail-sender"}
    yield
    left = [t for t in threading.enumerate() if t.name == "mail-sender" and t not in before and t.is_alive()]
    if left:
        pytest.fail(f"{len(left)} mail sender thread(s) still running after the test: close its center or stop it")


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        # The whole schema, so a table added by a later migration is never left behind.
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@functools.cache
def _worker_database(url: str, worker: str | None) -> str:
    """The database of this pytest-xdist worker (`consentry_test_gw0`, ...), made on first use: every
    PostgreSQL test drops and remakes the schema, so two workers must never share one."""
    if not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get("CONSENTRY_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: CONSENTRY_TEST_POSTGRES_URL is not set (scripts/test.sh sets it)")
        pytest.skip("no PostgreSQL: set CONSENTRY_TEST_POSTGRES_URL or run scripts/test.sh, which starts one")
    url = _worker_database(url, os.environ.get("PYTEST_XDIST_WORKER"))
    _reset_postgres(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def ledger(tmp_path: Path):
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield led
    led.close()


@pytest.fixture
def cutoff() -> datetime:
    return T


@pytest.fixture
def server() -> Iterator[SmtpTestServer]:
    """A real SMTP server of the test's own (smtp_server.py: aiosmtpd on 127.0.0.1, a free port)."""
    from smtp_server import SmtpTestServer  # here, not above: most tests send no mail

    with SmtpTestServer() as s:
        yield s


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mailer's retries of a 4xx happen at once (its `_sleep`, the hook it keeps for tests)."""
    from consentry.notices import mailer as mailer_module

    monkeypatch.setattr(mailer_module, "_sleep", lambda seconds: None)


#: Seconds each test file took in a measured run (scripts/test_file_seconds.py writes it);
#: CONSENTRY_TEST_FILE_SECONDS names another such file.
FILE_SECONDS = Path(os.environ.get("CONSENTRY_TEST_FILE_SECONDS") or HERE / "file_seconds.json")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test not marked `slow` is `fast`, so both can be selected (-m fast, -m slow).
    The files are ordered slowest first, by `FILE_SECONDS`: a parallel run
    (scripts/test.sh) hands files to its workers in this order, so the longest
    start first instead of running alone at the end. A file not listed comes
    after those listed; the tests within a file keep their order."""
    for item in items:
        if item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.fast)
    seconds = json.loads(FILE_SECONDS.read_text()) if FILE_SECONDS.exists() else {}
    root = HERE.parent
    # sort calls the key once an item; stable, so a file's tests stay together and in order
    items.sort(key=lambda item: -seconds.get(item.path.relative_to(root).as_posix()
                                             if item.path.is_relative_to(root) else str(item.path), 0.0))


@pytest.fixture(scope="session")
def s3():
    """A real S3 server (moto's, in its own process), this process's AWS_* set to reach it."""
    if not Path(sys.executable).with_name("moto_server").exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the object-store tests: moto_server is missing (pip install -e '.[test]')")
        pytest.skip("no S3 server: pip install -e '.[test]' (moto[server])")
    from s3_server import S3TestServer

    from consentry.sources import store

    with S3TestServer() as server:
        old = server.apply_env()
        store._FILESYSTEMS.clear()  # made again with this server's endpoint
        try:
            yield server
        finally:
            server.restore_env(old)
            store._FILESYSTEMS.clear()
