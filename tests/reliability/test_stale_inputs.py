"""Stale inputs after the source changed: ``sbts run`` must reload when the processor's files change.

``load_data`` took no inputs, so a second ``sbts run`` after an interferogram was rewritten or a pair
was added skipped the load and ran the whole chain on the old stack with exit 0.  The processor's
files (those the reader reads, by name, size and modification time) are now the inputs of
``load_data``: a change reloads, and every step after it reruns on the new stack.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.rcase(area="stale inputs", expected="the changed source is reloaded and the chain reruns; "
                                                             "unchanged sources skip")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # the e2e format writers


def _statuses(out: str) -> dict[str, str]:
    import re

    return dict(re.findall(r"^(\w+)\s+(ran|skipped|disabled|failed)\s*$", out, re.M))


def _run(rel, cfg: Path, *extra) -> dict[str, str]:
    res = rel.cli("run", cfg, "--end", "invert_network", *extra)
    assert res.code == 0, res.out
    return _statuses(res.out)


def _bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


@pytest.mark.rcase(input="the source ifgramStack.h5 (mintpy reader) rewritten with other phases after a run")
def test_changed_source_stack_is_reloaded(rel, tmp_path):
    cfg = rel.project(tmp_path / "p")
    _run(rel, cfg)
    src = tmp_path / "p" / "syn" / "ifgramStack.h5"
    with h5py.File(src, "r+") as f:
        f["unwrapPhase"][0] = f["unwrapPhase"][0] + 1.0
    _bump_mtime(src)
    second = _run(rel, cfg)
    assert second["load_data"] == "ran" and second["invert_network"] == "ran", second
    with h5py.File(src, "r") as a, h5py.File(tmp_path / "p" / "inputs" / "ifgramStack.h5", "r") as b:
        np.testing.assert_array_equal(a["unwrapPhase"][0], b["unwrapPhase"][0])
    third = _run(rel, cfg)
    assert set(third.values()) <= {"skipped", "disabled"}, third


@pytest.mark.rcase(input="nothing changed in the sources between two runs")
def test_unchanged_sources_do_not_reload(rel, tmp_path):
    cfg = rel.project(tmp_path / "p")
    _run(rel, cfg)
    stack = tmp_path / "p" / "inputs" / "ifgramStack.h5"
    before = stack.stat().st_mtime_ns
    second = _run(rel, cfg)
    assert second["load_data"] == "skipped" and stack.stat().st_mtime_ns == before


def _gamma(tmp_path: Path):
    from formats import gamma_geo

    from sbts.core.demo.synthetic import make_synthetic_stack

    synth = make_synthetic_stack(shape=(30, 40), num_date=8, seed=5)
    cfg = Path(gamma_geo.write(tmp_path / "g", synth))
    cfg.write_text(cfg.read_text() + "mintpy.networkInversion.minNumPixel = 10\n")
    return synth, cfg


@pytest.mark.rcase(input="one GAMMA interferogram (.unw) rewritten by the processor after a run")
def test_rewritten_gamma_interferogram_is_reloaded(rel, tmp_path):
    synth, cfg = _gamma(tmp_path)
    _run(rel, cfg)
    unw = sorted((tmp_path / "g" / "PROCESS" / "DONE").rglob("geo_*.unw"))[3]
    data = np.fromfile(unw, ">f4") + np.float32(0.5)
    data.astype(">f4").tofile(unw)
    _bump_mtime(unw)
    second = _run(rel, cfg)
    assert second["load_data"] == "ran" and second["modify_network"] == "ran" and second["invert_network"] == "ran"
    with h5py.File(cfg.parent / "inputs" / "ifgramStack.h5", "r") as f:
        np.testing.assert_array_equal(f["unwrapPhase"][3].ravel(), data)


@pytest.mark.rcase(input="a GAMMA pair folder added (new .unw/.cor/.off/.base_perp) after a run")
def test_added_gamma_pair_is_loaded(rel, tmp_path):
    synth, cfg = _gamma(tmp_path)
    done = tmp_path / "g" / "PROCESS" / "DONE"
    last = sorted(done.iterdir())[-1]
    hidden = last.with_name("hidden")
    last.rename(hidden)  # the first run sees one pair fewer
    _run(rel, cfg)
    with h5py.File(cfg.parent / "inputs" / "ifgramStack.h5", "r") as f:
        assert f["date"].shape[0] == synth.num_pair - 1
    hidden.rename(last)
    second = _run(rel, cfg)
    assert second["load_data"] == "ran" and second["invert_network"] == "ran", second
    with h5py.File(cfg.parent / "inputs" / "ifgramStack.h5", "r") as f:
        assert f["date"].shape[0] == synth.num_pair


@pytest.mark.rcase(input="the interferograms of the template's pattern deleted after a run",
                   expected="clear error naming the pattern, no run on the old stack")
def test_removed_sources_stop_the_run(rel, tmp_path):
    synth, cfg = _gamma(tmp_path)
    _run(rel, cfg)
    for p in (tmp_path / "g" / "PROCESS" / "DONE").rglob("geo_*.unw"):
        p.unlink()
    res = rel.cli("run", cfg, "--end", "invert_network")
    line = rel.assert_clean_error(res, "unwFile")
    assert "matches no file" in line
