#!/usr/bin/env bash
# Static checks (run by .ci/run before the tests): ruff on everything, mypy on the kernel.
# `bash scripts/lint.sh ruff` or `bash scripts/lint.sh mypy` runs one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SBTS_VENV:-.venv}
what=${1:-all}
if [ "$what" = all ] || [ "$what" = ruff ]; then
    "$VENV/bin/ruff" check .
fi
if [ "$what" = all ] || [ "$what" = mypy ]; then
    # the repository root is the package sbts (package-dir "sbts" = "."): mypy finds it through a link
    mkdir -p build/mypy
    ln -sfn ../.. build/mypy/sbts
    "$VENV/bin/mypy"
fi
