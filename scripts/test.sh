#!/usr/bin/env bash
# Set up (if needed) and run the test suite (real datasets are taken from ../shared/data when present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_oracle.sh   # MintPy 1.6.4 in .venv-mintpy: the tests compare with it
bash scripts/setup_browser.sh  # headless Chromium for the browser tests of `sbts serve`
export SBTS_REQUIRE_ORACLE=${SBTS_REQUIRE_ORACLE:-1}
export SBTS_REQUIRE_BROWSER=${SBTS_REQUIRE_BROWSER:-1}
exec .venv/bin/python -m pytest -q "$@"
