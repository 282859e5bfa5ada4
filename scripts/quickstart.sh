#!/usr/bin/env bash
# From a fresh machine: install consentry in .venv and run the whole job on
# generated data (generate -> import the ledger -> evaluate -> summary).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
exec .venv/bin/consentry demo "$@"
