#!/usr/bin/env bash
# Set up everything sbts needs on a fresh Debian machine with Python 3.11 (run as root, or with sudo
# available for apt-get): GDAL's library, a virtual environment in .venv with GDAL's Python bindings
# built against it, and sbts with its extras.  Safe to run again: finished parts are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${SBTS_VENV:-.venv}

if ! command -v gdal-config >/dev/null 2>&1; then
    echo "[setup] installing libgdal-dev (apt-get)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libgdal-dev >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"

if ! "$VENV/bin/python" -c "from osgeo import gdal, gdal_array" >/dev/null 2>&1; then
    echo "[setup] building GDAL $(gdal-config --version) Python bindings"
    $PIP install wheel setuptools numpy
    # without --no-build-isolation the build "succeeds" but gdal_array is missing
    $PIP install --no-build-isolation "GDAL==$(gdal-config --version)"
fi

echo "[setup] installing sbts and its extras"
$PIP install -e ".[test,weather,dask,tides]"
"$VENV/bin/python" -c "from osgeo import gdal_array; import sbts, h5py, pluggy, click" \
    || { echo "[setup] the environment is incomplete" >&2; exit 1; }
echo "[setup] ready: $VENV/bin/sbts"
