"""Numerical edge cases of the inversion: all-NaN blocks, zero coherence, an invalid reference
pixel, a date left without interferogram, a network split in pieces.

Expected: a message (warning or ``Error:``), and never NaN spread silently over valid pixels: the
pixels untouched by the damage keep finite values, and (when the reference and the network are
unchanged) exactly the values of the undamaged run.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.rcase(area="numerical")

STACK = "inputs/ifgramStack.h5"


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def _ts(rel, work):
    return rel.h5_arrays(work / "timeseries.h5")["timeseries"]


@pytest.mark.rcase(input="unwrapPhase NaN in the 12 rows away from the reference pixel, in every pair (an all-NaN block), invert",
                   expected="those pixels masked (maskTempCoh False), other pixels finite and unchanged")
def test_all_nan_block(rel, project, note):
    work = project.parent
    ref = _ts(rel, work)
    with h5py.File(work / STACK, "r") as f:
        ry = int(f.attrs["REF_Y"])
    bad = slice(0, 12) if ry >= 12 else slice(28, 40)
    good = slice(12, 40) if ry >= 12 else slice(0, 28)

    def damage(f):
        d = f["unwrapPhase"][()]
        d[:, bad, :] = np.nan
        f["unwrapPhase"][...] = d
    _edit(work / STACK, damage)
    res = rel.cli("invert", project, "--force")
    assert res.code == 0, res.out
    ts = _ts(rel, work)
    mask = rel.h5_arrays(work / "maskTempCoh.h5")["mask"]
    assert not mask[bad].any(), "all-NaN pixels reported reliable"
    assert np.isfinite(ts[:, good]).all(), "NaN spread beyond the damaged block"
    np.testing.assert_allclose(ts[:, good], ref[:, good], rtol=0, atol=1e-6)
    note(observed="block masked; valid rows finite and unchanged")


@pytest.mark.rcase(input="coherence = 0 everywhere in 3 pairs (weight var), invert",
                   expected="finite result on every valid pixel, no NaN spread")
def test_zero_coherence_some_pairs(rel, project, note):
    work = project.parent

    def damage(f):
        c = f["coherence"][()]
        c[[2, 5, 9]] = 0
        f["coherence"][...] = c
    _edit(work / STACK, damage)
    res = rel.cli("invert", project, "--force", "-w", "var")
    assert res.code == 0, res.out
    ts = _ts(rel, work)
    mask = rel.h5_arrays(work / "maskTempCoh.h5")["mask"]
    assert mask.sum() > 0
    assert np.isfinite(ts[:, mask]).all()
    note(observed=f"{int(mask.sum())} reliable pixels, all finite")


@pytest.mark.parametrize("weight", ["var", "coh", "fim"])
@pytest.mark.rcase(input="coherence = 0 everywhere in every pair, invert",
                   expected="Error: (no usable weight / no reliable pixel), or finite unweighted result; never all-NaN with exit 0")
def test_zero_coherence_everywhere(rel, project, weight, note):
    work = project.parent
    _edit(work / STACK, lambda f: f["coherence"].__setitem__(Ellipsis, 0))
    res = rel.cli("invert", project, "--force", "-w", weight)
    if res.code != 0:
        note(observed=rel.assert_clean_error(res))
        return
    ts = _ts(rel, work)
    mask = rel.h5_arrays(work / "maskTempCoh.h5")["mask"]
    assert mask.any() and np.isfinite(ts[:, mask]).all(), "exit 0 with no finite reliable pixel"
    note(observed="finite result")


@pytest.mark.parametrize("how", ["zero", "nan"])
@pytest.mark.rcase(input="reference pixel's phase set to 0 / NaN in some pairs, invert",
                   expected="Error: the reference pixel has no data, naming it and the pairs")
def test_reference_pixel_invalid(rel, project, how, note):
    work = project.parent
    with h5py.File(work / STACK, "r") as f:
        ry, rx = int(f.attrs["REF_Y"]), int(f.attrs["REF_X"])

    def damage(f):
        d = f["unwrapPhase"][()]
        d[[1, 4], ry, rx] = 0 if how == "zero" else np.nan
        f["unwrapPhase"][...] = d
    _edit(work / STACK, damage)
    res = rel.cli("invert", project, "--force")
    line = rel.assert_clean_error(res, "reference")
    note(observed=line)


@pytest.mark.rcase(input="mintpy.network.excludeDate = the 6th date (its pairs dropped), network + invert",
                   expected="the date leaves the time series (or a message); no NaN over valid pixels")
def test_date_without_ifgram(rel, project, note):
    work = project.parent
    with h5py.File(work / STACK, "r") as f:
        dates = sorted({d.decode() for d in f["date"][()].ravel()})
    gone = dates[5]
    project.write_text(project.read_text() + f"mintpy.network.excludeDate = {gone}\n")
    res = rel.cli("network", project)
    assert res.code == 0, res.out
    res = rel.cli("invert", project, "--force")
    if res.code != 0:
        note(observed=rel.assert_clean_error(res))
        return
    with h5py.File(work / "timeseries.h5", "r") as f:
        ts_dates = [d.decode() for d in f["date"][()]]
    ts = _ts(rel, work)
    mask = rel.h5_arrays(work / "maskTempCoh.h5")["mask"]
    assert gone not in ts_dates, f"{gone} kept in timeseries.h5 with no interferogram"
    assert np.isfinite(ts[:, mask]).all()
    note(observed=f"{gone} removed, {len(ts_dates)} dates")


@pytest.mark.rcase(input="network split in two pieces (dropIfgram on every pair bridging the 6th/7th date), invert",
                   expected="warning about disconnected pieces; finite result on valid pixels")
def test_network_split(rel, project, note):
    work = project.parent
    with h5py.File(work / STACK, "r") as f:
        d = f["date"][()].astype(str)
    dates = sorted(set(d.ravel()))
    cut = dates[6]
    bridging = (d[:, 0] < cut) & (d[:, 1] >= cut)
    _edit(work / STACK, lambda f: f["dropIfgram"].__setitem__(Ellipsis, ~bridging))
    res = rel.cli("invert", project, "--force")
    if res.code != 0:
        note(observed=rel.assert_clean_error(res))
        return
    assert "disconnected" in res.out or "pieces" in res.out, res.out[-800:]
    ts = _ts(rel, work)
    mask = rel.h5_arrays(work / "maskTempCoh.h5")["mask"]
    assert np.isfinite(ts[:, mask]).all()
    note(observed="warned; finite")


@pytest.mark.rcase(input="every pair dropped (dropIfgram all False), invert",
                   expected="Error: no interferogram kept")
def test_all_pairs_dropped(rel, project, note):
    work = project.parent
    _edit(work / STACK, lambda f: f["dropIfgram"].__setitem__(Ellipsis, False))
    res = rel.cli("invert", project, "--force")
    note(observed=rel.assert_clean_error(res))


@pytest.mark.rcase(input="unwrapPhase = +Inf in one pixel of one pair, invert",
                   expected="that pixel masked or its pair excluded; no Inf/NaN elsewhere")
def test_inf_phase(rel, project, note):
    work = project.parent
    with h5py.File(work / STACK, "r") as f:
        ry, rx = int(f.attrs["REF_Y"]), int(f.attrs["REF_X"])
    y, x = (ry + 7) % 40, (rx + 9) % 50

    def damage(f):
        d = f["unwrapPhase"][()]
        d[3, y, x] = np.inf
        f["unwrapPhase"][...] = d
    _edit(work / STACK, damage)
    res = rel.cli("invert", project, "--force")
    assert res.code == 0, res.out
    ts = _ts(rel, work)
    other = np.ones(ts.shape[1:], bool)
    other[y, x] = False
    assert np.isfinite(ts[:, other]).all(), "Inf spread to other pixels"
    assert not np.isinf(ts[:, y, x]).any(), "Inf written into the time series"
    note(observed=f"pixel value finite={bool(np.isfinite(ts[:, y, x]).all())}")
