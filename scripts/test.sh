#!/usr/bin/env bash
# The test suite, from a fresh machine: venv, dependencies, PostgreSQL, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,bench]'
if [ -z "${CONSENTRY_TEST_POSTGRES_URL:-}" ]; then
  CONSENTRY_TEST_POSTGRES_URL=$(bash scripts/postgres.sh || true)
  export CONSENTRY_TEST_POSTGRES_URL
fi
echo "PostgreSQL for tests: ${CONSENTRY_TEST_POSTGRES_URL:-none (those tests will skip)}"
exec .venv/bin/python -m pytest "$@"
