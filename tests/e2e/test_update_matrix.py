"""The update path of every processor format, as users run it (issue 18).

For each format the writer puts a 10-date stack on disk as that processor writes it; the last
acquisition's files are held back (for ARIA, the stack VRTs list the pairs without it, as ariaTSsetup
wrote them before it).  ``sbts run`` (the CLI, MintPy's defaults, the update store on, pictures
off) processes the nine dates; the new files arrive; ``sbts run`` again must append the new pairs,
update the inversion from the store, and rerun the steps after it, geocoding and exports included.
Every HDF5 file it leaves must then equal a fresh full run on all files referenced at the same pixel
(and fitted without the same ``exclude_date.txt``: MintPy's excludeDate = auto reads the previous
run's list).  Tolerances: 2e-6 of the largest value for the time series, velocities and maps (float32
noise of a solution from float32 data, with the sums taken in another order); the DEM error 1e-5 of
its largest value, as it is the ratio of two fitted quantities (1e-5 of 30 m moves the series by
~1e-8 m, below their float32 noise); the residual time series 2e-6 of the time series' largest
value, since they are what is left of it and carry its noise.  Masks and integer layers are equal.
Three more runs switch MintPy's per-date corrections (solid Earth tides, the height-correlated
troposphere, a quadratic ramp) and HDF-EOS5 on: ISCE TOPS (radar-coded, latitude/longitude layers),
GAMMA radar-coded (only the corner coordinates) and HyP3 (geocoded).  The update computes the new
date's delays and reruns every step after the inversion.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import formats
import h5py
import numpy as np
import pytest
from checks import CORRECTIONS, sbts, statuses, writer
from formats._common import hold_back, stamps

pytest.importorskip("osgeo.gdal")

NOTE = re.compile(r"^step (\w+): (.*)$", re.M)
LOOSE = {"demErr.h5": 1e-5}


@pytest.fixture(autouse=True)
def always_update(monkeypatch):
    """The stacks here are short (the window is every date), where a full inversion is the cheaper
    choice; these tests are about the update path, so it runs whatever its cost."""
    from sbts.core.inversion import incremental

    monkeypatch.setattr(incremental, "UPDATE_COST_RATIO", {"unweighted": 0.0, "weighted": 0.0})


def _notes(output: str) -> dict[str, str]:
    """The last note of each step (``step NAME: note`` lines of the run's log)."""
    return {name: note for name, note in NOTE.findall(output) if not note.startswith(("running", "done in"))}


def _numeric_datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and o.dtype.kind in "biuf" else None)
    return names


def _compare(full: Path, upd: Path) -> list[str]:
    """Every numeric dataset of every HDF5 file (HDF-EOS5 included) of the full run against the update's."""
    bad = []
    with h5py.File(full / "timeseries.h5", "r") as f:
        series = float(np.nanmax(np.abs(f["timeseries"][()])))
    for path in sorted([*full.rglob("*.h5"), *full.rglob("*.he5")]):
        rel = path.relative_to(full)
        other = upd / rel
        if not other.exists():
            bad.append(f"{rel}: not written by the update")
            continue
        with h5py.File(path, "r") as a, h5py.File(other, "r") as b:
            for name in _numeric_datasets(a):
                if name not in b:
                    bad.append(f"{rel}:{name} missing in the update")
                    continue
                x, y = a[name][()], b[name][()]
                if x.shape != y.shape:
                    bad.append(f"{rel}:{name} shape {y.shape} instead of {x.shape}")
                elif x.dtype.kind != "f":
                    if not np.array_equal(x, y):
                        bad.append(f"{rel}:{name} differs")
                elif not np.array_equal(np.isnan(x), np.isnan(y)):
                    bad.append(f"{rel}:{name} NaN at other pixels")
                elif np.isfinite(x).any():
                    scale = float(np.nanmax(np.abs(x))) or 1.0
                    if rel.name.startswith("timeseriesResidual"):  # what is left of the series: its noise
                        scale = series
                    err = float(np.nanmax(np.abs(x - y))) / scale
                    if err > LOOSE.get(rel.name, 2e-6):
                        bad.append(f"{rel}:{name} {err:.1e} of its largest value apart")
    return bad


def _equals_a_full_run(template: Path, full: Path) -> None:
    """A fresh full run on all files, in ``full``, at the update's reference pixel and from the same
    ``exclude_date.txt``, leaves every HDF5 file the update left beside ``template``."""
    work = template.parent
    full.mkdir()
    with h5py.File(work / "inputs/ifgramStack.h5", "r") as f:
        ref = int(f.attrs["REF_Y"]), int(f.attrs["REF_X"])
    text = template.read_text().replace("updateStore = yes", "updateStore = no")
    (full / template.name).write_text(text + f"mintpy.reference.yx = {ref[0]}, {ref[1]}\n")
    if (work / "exclude_date.txt").exists():
        shutil.copy(work / "exclude_date.txt", full / "exclude_date.txt")
    code, out = sbts("run", full / template.name)
    assert code == 0, out[-3000:]
    assert _notes(out)["invert_network"] == "recomputed (full inversion)"
    assert not _compare(full, work), _compare(full, work)


WITH_CORRECTIONS = ("isce_tops", "gamma_radar", "hyp3")  # lat/lon layers; corners only (GAMMA); geocoded


@pytest.mark.parametrize(("fmt", "extra"), [(f, "") for f in formats.FORMATS if f != "mintpy"]  # mintpy: one
                         + [(f, CORRECTIONS) for f in WITH_CORRECTIONS],                      # HDF5 stack, no new files
                         ids=[f for f in formats.FORMATS if f != "mintpy"] + [f"{f}-corrections" for f in WITH_CORRECTIONS])
def test_update_run_equals_a_full_run(fmt, extra, tmp_path):
    from sbts.core.demo.synthetic import make_synthetic_stack

    module = writer(fmt)
    synth = make_synthetic_stack(shape=(40, 48), num_date=10, seed=3, turbulence_std=0.003)
    last = synth.date_list[-1]
    root = tmp_path / fmt
    template = Path(module.write(root, synth))
    template.write_text(template.read_text() + "\nsbts.networkInversion.updateStore = yes\nmintpy.plot = no\n" + extra)
    arrive = hold_back(root, last, tmp_path / "held")
    relist = module.list_without(root, last) if hasattr(module, "list_without") else None
    try:
        code, out = sbts("run", template)
        assert code == 0, out[-3000:]
    finally:  # the acquisition arrives
        arrive()
        if relist:
            relist()
    code, out = sbts("run", template)
    assert code == 0, out[-3000:]
    notes = _notes(out)
    new_pairs = int(np.count_nonzero(np.asarray(synth.date2_index) == len(synth.date_list) - 1))
    assert notes["load_data"] == f"appended {new_pairs} pair(s), 1 new date(s)", notes
    assert notes["invert_network"].startswith(f"updated: exact update with {new_pairs} new pair(s)"), notes
    # most pixels from the store; those whose network was not connected before from all their pairs
    assert int(re.search(r"(\d+) pixel\(s\) updated", notes["invert_network"]).group(1)) > 1000, notes
    later = ["correct_topography", "residual_RMS", "reference_date", "velocity", "google_earth"]
    later += [] if module.GEOCODED else ["geocode"]
    later += ["correct_SET", "correct_troposphere", "deramp", "hdfeos5"] if extra else []
    ran = statuses(out)
    assert all(ran[s] == "ran" for s in later), {s: ran[s] for s in later}
    if extra:  # the per-date delay file keeps its dates: the new date's tides only are computed
        assert "solid Earth tides: 1 date(s) computed, 9 kept from the previous SET.h5" in out

    _equals_a_full_run(template, root / "full")


#: the real stacks of ../shared/data as users point sbts at them: (dataset, folders, file keys, more
#: template lines, last date, its pairs).  Sydney's only coherence is PyRate's synthetic noise: unweighted
#: (as tests/e2e/test_real_data.py inverts it), so both weightings are tried on real phase
UNWEIGHTED = "mintpy.networkInversion.weightFunc = no\nmintpy.networkInversion.minNumPixel = 10\n"
REAL = {
    "mexico_gamma_geotiff": ("pyrate_s1_mexico_cropA_gamma", ("geotiffs", "headers", "geometry"), (
        ("unwFile", "geotiffs/*_unw.tif"), ("corFile", "geotiffs/*_cc.tif"), ("demFile", "geotiffs/*_dem.tif"),
        ("metaFile", "headers/*_mli.par"), ("bperpFile", "geometry/*_bperp.par"),
        ("lookupYFile", "geometry/*eqa_to_rdc.lt"), ("lookupXFile", "geometry/*eqa_to_rdc.lt")), "", "20180717", 2),
    "sydney_gamma": ("pyrate_envisat_sydney_small_test", ("gamma",), (
        ("unwFile", "gamma/*_utm.unw"), ("metaFile", "gamma/*_slc.par"), ("demFile", "gamma/20060619_utm.dem"),
        ("incAngleFile", "gamma/20060619_utm.inc")), UNWEIGHTED, "20070917", 2),
    "sydney_roipac": ("pyrate_envisat_sydney_small_test", ("roipac",), (
        ("unwFile", "roipac/geo_*.unw"), ("demFile", "roipac/*.dem")),
        # its rsc files have no range or incidence: no DEM-error fit (sbts, as MintPy, stops there)
        UNWEIGHTED + "mintpy.topographicResidual = no\n", "20070917", 2),
}


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(REAL))
def test_update_of_a_real_stack_equals_a_full_run(name, shared_data, tmp_path):
    """The same path on real data: Sentinel-1 over Mexico City (GAMMA GeoTIFFs and par files, fast
    subsidence, real coherence) and Envisat over Sydney (raw GAMMA binaries; ROI_PAC), each as its
    files lie, with the last acquisition (its pairs, their baselines and its par files) arriving
    after a first run.  The update appends the pairs, does not load the geometry again (the new par
    files do not change it), updates the inversion, and every file equals a fresh full run
    (tolerances as above)."""
    dataset, folders, keys, extra, last, new_pairs = REAL[name]
    source = shared_data / dataset
    root = tmp_path / name
    for folder in folders:  # links: the shared files are never touched
        (root / folder).mkdir(parents=True)
        for path in sorted((source / folder).iterdir()):
            (root / folder / path.name).symlink_to(path)
    template = root / "work/smallbaselineApp.cfg"
    template.parent.mkdir()
    template.write_text("\n".join(f"mintpy.load.{key} = {root}/{pattern}" for key, pattern in keys)
                        + "\nsbts.networkInversion.updateStore = yes\nmintpy.plot = no\n" + extra)
    arrive = hold_back(root, last, tmp_path / "held")
    try:
        code, out = sbts("run", template)
        assert code == 0, out[-3000:]
    finally:
        arrive()
    work = template.parent
    geometry = stamps(work / "inputs", "geometry*.h5")
    assert geometry
    code, out = sbts("run", template)
    assert code == 0, out[-3000:]
    notes = _notes(out)
    assert notes["load_data"] == f"appended {new_pairs} pair(s), 1 new date(s)", notes
    assert notes["invert_network"].startswith(f"updated: exact update with {new_pairs} new pair(s)"), notes
    assert stamps(work / "inputs", "geometry*.h5") == geometry
    ran = statuses(out)
    later = ["reference_date", "velocity", "google_earth"]  # the residual RMS needs the DEM-error residuals
    later += [] if "topographicResidual = no" in extra else ["correct_topography", "residual_RMS"]
    assert all(ran[s] == "ran" for s in later), {s: ran[s] for s in later}

    _equals_a_full_run(template, root / "full")
