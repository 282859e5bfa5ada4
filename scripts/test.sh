#!/usr/bin/env bash
# The test suite, from a fresh machine: venv, dependencies, PostgreSQL,
# Chromium (Debian's, never a downloaded browser), exiftool and axe-core, then pytest.
#
#   bash scripts/test.sh            everything (what CI runs)
#   bash scripts/test.sh --fast     the tests not marked slow (about half; minutes, not seconds), on what is
#                                   installed already (the first run on a fresh machine sets up)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fast" ]; then
  shift
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import consentry, pytest, hypothesis" 2>/dev/null; then
    exec .venv/bin/python -m pytest -m "not slow" -q "$@"
  fi
  fast=1
fi
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,bench]'

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=""
  command -v chromium >/dev/null || missing="$missing chromium"
  command -v exiftool >/dev/null || missing="$missing libimage-exiftool-perl"
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$missing postgresql"
  [ -f /usr/share/java/postgresql.jar ] || missing="$missing libpostgresql-jdbc-java"  # Spark reads a PostgreSQL ledger over JDBC
  command -v java >/dev/null || missing="$missing openjdk-17-jre-headless"  # pyspark
  if [ -n "$missing" ]; then
    echo "installing from Debian:$missing"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) >/dev/null
  fi
fi
if command -v npm >/dev/null && [ ! -d tests/browser/node_modules/axe-core ]; then
  npm ci --prefix tests/browser --no-audit --no-fund --silent
fi

if [ -z "${CONSENTRY_TEST_POSTGRES_URL:-}" ]; then
  CONSENTRY_TEST_POSTGRES_URL=$(bash scripts/postgres.sh || true)
  export CONSENTRY_TEST_POSTGRES_URL
fi
echo "PostgreSQL for tests: ${CONSENTRY_TEST_POSTGRES_URL:-none (those tests will skip)}"
# The tests' Spark JVMs start from a class-data archive, made once per pyspark and Java (about a
# minute): a session starts in half the time. Nothing made, the tests run without it.
if [ -z "${fast:-}" ] && [ -z "${CONSENTRY_TEST_SPARK_CLASSES:-}" ] && command -v java >/dev/null; then
  CONSENTRY_TEST_SPARK_CLASSES=$(.venv/bin/python scripts/spark_classes.py || true)
  export CONSENTRY_TEST_SPARK_CLASSES
fi
echo "Spark's classes for tests: ${CONSENTRY_TEST_SPARK_CLASSES:-none}"
if [ -n "${fast:-}" ]; then exec .venv/bin/python -m pytest -m "not slow" -q "$@"; fi
# One worker a core, at most 4 (each may start Spark, a browser or a server); a test file stays on
# one worker, so its module fixtures are made once. CONSENTRY_TEST_WORKERS=0 runs in this process.
# Files are handed out slowest first, in the order tests/conftest.py gives them (from
# tests/file_seconds.json), not reordered by xdist by their number of tests.
workers=${CONSENTRY_TEST_WORKERS:-$(( $(nproc) < 4 ? $(nproc) : 4 ))}
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
