"""bench/bench_serve.py keeps working (a tiny size; its timings are not checked: no timed tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_bench_serve_runs_on_a_tiny_cube(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "bench_serve.py"), "--size", "40", "50", "6",
                           "--repeat", "2", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "sbts serve bench: 40 × 50 × 6 float32" in out
    for row in ("tile z", "pixel history + model (6 dates)", "history A − B", "peak resident memory"):
        assert row in out, out
    assert (tmp_path / "timeseries.h5").is_file()  # --dir: the files stay for a rerun
