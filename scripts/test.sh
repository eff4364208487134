#!/usr/bin/env bash
# Set up (if needed) and run the test suite (real datasets are taken from ../shared/data when present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
