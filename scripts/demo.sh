#!/usr/bin/env bash
# Set up (if needed) and run the sbts demo: synthetic stack → load → network → invert → correct → export.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/sbts demo "${1:-demo_out}"
