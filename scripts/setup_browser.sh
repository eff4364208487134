#!/usr/bin/env bash
# Headless browser for the tests of `sbts serve`: Debian's chromium + chromium-driver (run as root, or
# with sudo available), and selenium in .venv (the [test] extra).  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SBTS_VENV:-.venv}
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "[setup-browser] installing chromium and chromium-driver (apt-get)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
if ! "$VENV/bin/python" -c "import selenium" >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip --disable-pip-version-check -q install "selenium>=4.10"
fi
echo "[setup-browser] ready: $(chromium --version 2>/dev/null | head -1), $(chromedriver --version | head -1)"
