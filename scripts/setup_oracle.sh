#!/usr/bin/env bash
# Set up (if needed) the MintPy 1.6.4 oracle the tests compare sbts with: a separate virtual
# environment, .venv-mintpy, with MintPy from PyPI and GDAL's bindings (built against the system
# GDAL as in setup.sh).  MintPy is GPL-3: it is only installed and run, never imported by sbts.
# Safe to run again: a complete environment is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${SBTS_MINTPY_VENV:-.venv-mintpy}
if "$VENV/bin/python" -c "import mintpy, h5py; from osgeo import gdal_array" >/dev/null 2>&1; then
    # pysolid: MintPy's solid_earth_tides.py needs it (added to oracles made before it was listed)
    "$VENV/bin/python" -c "import pysolid" >/dev/null 2>&1 \
        || "$VENV/bin/python" -m pip --disable-pip-version-check -q install pysolid
    exit 0
fi
echo "[setup] installing the MintPy 1.6.4 test oracle into $VENV"
"$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
$PIP install wheel setuptools numpy
$PIP install "mintpy==1.6.4" pysolid
$PIP install --no-build-isolation "GDAL==$(gdal-config --version)"
"$VENV/bin/python" -c "import mintpy, h5py; from osgeo import gdal_array" \
    || { echo "[setup] the MintPy oracle environment is incomplete" >&2; exit 1; }
