from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))

from consentry.ledger import Ledger  # noqa: E402
from consentry.timeutil import parse_instant  # noqa: E402

T = parse_instant("2024-06-26T00:00:00Z")


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        # The whole schema, so a table added by a later migration is never left behind.
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get("CONSENTRY_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: CONSENTRY_TEST_POSTGRES_URL is not set (scripts/test.sh sets it)")
        pytest.skip("no PostgreSQL: set CONSENTRY_TEST_POSTGRES_URL or run scripts/test.sh, which starts one")
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
