"""Plugin discovery (every `sbts` command and step starts with it) imports no scipy: scipy's
sparse, special, ndimage and spatial modules cost ~0.4 s of start-up and are imported where a
function needs them."""

from __future__ import annotations

import subprocess
import sys


def test_discovery_imports_no_scipy():
    code = ("import sys\nfrom sbts.core.plugin.registry import get_registry\nget_registry()\n"
            "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('scipy.')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
