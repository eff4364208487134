"""Damaged ``ifgramStack.h5`` / ``timeseries.h5``: truncated, overwritten, missing datasets,
attributes that disagree with the data.  Every command must stop with a clear ``Error:`` line
(never a crash deep inside numpy/h5py, never an "internal error"), and leave no ``.part`` or
damaged output behind.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.rcase(area="corrupt HDF5")

STACK = "inputs/ifgramStack.h5"
TS = "timeseries.h5"
COMMANDS = {
    STACK: {
        "invert": lambda c: ["invert", c, "--force"],
        "network": lambda c: ["network", c],
        "info": lambda c: ["info", c.parent / STACK],
        "export-hdf5": lambda c: ["export", "hdf5", c.parent / STACK, "-o", c.parent / "out.h5"],
    },
    TS: {
        "deramp": lambda c: ["correct", "deramp", c],
        "export-geotiff": lambda c: ["export", "geotiff", c.parent / TS, "-O", "bands=all", "-o", c.parent / "ts.tif"],
        "info": lambda c: ["info", c.parent / TS],
    },
}
CASES = [(f, cmd) for f in COMMANDS for cmd in COMMANDS[f]]


def _check_after(rel, cfg, res, note, damaged=None):
    """Clean error; every final-named product other than the damaged input still opens complete
    (``.part`` files may stay: resumable writers keep them for the rerun)."""
    line = rel.assert_clean_error(res)
    note(observed=line)
    work = cfg.parent
    for p in list(work.glob("*.h5")) + list(work.glob("inputs/*.h5")):
        if damaged is None or p != damaged:
            rel.h5_complete(p)
    return line


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.97])
@pytest.mark.parametrize("target, command", CASES, ids=[f"{f.split('/')[-1]}-{c}" for f, c in CASES])
@pytest.mark.rcase(input="file truncated to a fraction of its size", expected="Error: naming the file as unreadable/damaged")
def test_truncated(rel, project, target, command, fraction, note):
    path = project.parent / target
    rel.truncate(path, fraction)
    res = rel.cli(*COMMANDS[target][command](project))
    line = _check_after(rel, project, res, note, path)
    assert path.name in line


@pytest.mark.parametrize("where", [0.0005, 0.01, 0.5])
@pytest.mark.parametrize("target, command", CASES, ids=[f"{f.split('/')[-1]}-{c}" for f, c in CASES])
@pytest.mark.rcase(input="4 KiB of random bytes written at a position (header / metadata / chunk data)",
                   expected="Error: naming the file, or (raw chunk data, no checksum in HDF5) a normal run")
def test_overwritten(rel, project, target, command, where, note, request):
    path = project.parent / target
    rel.overwrite(path, where, 4096, seed=int(where * 1e4))
    res = rel.cli(*COMMANDS[target][command](project))
    if res.code == 0:
        # the bytes hit raw chunk data: HDF5 cannot tell; the command must still finish cleanly
        assert "Traceback" not in res.out
        note(observed="ran (damage inside raw chunk data is undetectable without checksums)")
        return
    _check_after(rel, project, res, note, path)


@pytest.mark.parametrize("target, dataset, command", [
    (STACK, "unwrapPhase", "invert"), (STACK, "date", "invert"), (STACK, "date", "network"), (STACK, "coherence", "network"),
    (TS, "timeseries", "deramp"), (TS, "date", "deramp"), (TS, "date", "export-geotiff"), (TS, "timeseries", "info"),
])
@pytest.mark.rcase(input="a dataset deleted from the file", expected="Error: naming the file and the missing dataset")
def test_missing_dataset(rel, project, target, dataset, command, note):
    path = project.parent / target
    with h5py.File(path, "r+") as f:
        del f[dataset]
    res = rel.cli(*COMMANDS[target][command](project))
    if command == "info" and res.code == 0:
        note(observed="info lists what is there")
        return
    if command == "network" and dataset == "coherence" and res.code == 0:
        note(observed="network runs without coherence")
        return
    line = _check_after(rel, project, res, note, path)
    assert path.name in line


ATTR_CASES = [
    ("LENGTH", "99"), ("WIDTH", "7"), ("WIDTH", "abc"), ("LENGTH", "-40"), ("LENGTH", "nan"), ("WAVELENGTH", "abc"),
]


@pytest.mark.parametrize("attr, value", ATTR_CASES, ids=[f"{a}={v}" for a, v in ATTR_CASES])
@pytest.mark.parametrize("target, command", [(STACK, "invert"), (TS, "deramp"), (TS, "export-geotiff")],
                         ids=["stack-invert", "ts-deramp", "ts-export"])
@pytest.mark.rcase(input="a root attribute that disagrees with the data", expected="Error: naming the file and attribute")
def test_bad_attribute(rel, project, target, command, attr, value, note):
    if attr == "WAVELENGTH" and target == TS:
        pytest.skip("WAVELENGTH is not used by this command")
    path = project.parent / target
    with h5py.File(path, "r+") as f:
        f.attrs[attr] = value
    res = rel.cli(*COMMANDS[target][command](project))
    line = _check_after(rel, project, res, note, path)
    assert path.name in line or attr in line


@pytest.mark.parametrize("attr, value", [("REF_Y", "5000"), ("REF_X", "-3")])
@pytest.mark.rcase(input="ifgramStack.h5 REF_Y/REF_X outside the image, then invert",
                   expected="Error: the reference pixel is outside the image")
def test_reference_outside(rel, project, attr, value, note):
    path = project.parent / STACK
    with h5py.File(path, "r+") as f:
        f.attrs[attr] = value
    res = rel.cli("invert", project, "--force")
    line = _check_after(rel, project, res, note, path)
    assert "reference" in line.lower()


@pytest.mark.parametrize("what", ["extra-date", "garbage-date", "unsorted-dates", "duplicate-dates"])
@pytest.mark.rcase(input="timeseries.h5 'date' dataset inconsistent (extra entry / unparsable / unsorted / duplicated)",
                   expected="Error: naming the file and the dates")
def test_bad_ts_dates(rel, project, what, note, request):
    path = project.parent / TS
    with h5py.File(path, "r+") as f:
        dates = list(f["date"][()])
        if what == "extra-date":
            dates.append(b"20301231")
        elif what == "garbage-date":
            dates[3] = b"2019AB01"
        elif what == "unsorted-dates":
            dates[2], dates[5] = dates[5], dates[2]
        else:
            dates[4] = dates[3]
        del f["date"]
        f.create_dataset("date", data=np.array(dates, dtype="S8"))
    if what in ("unsorted-dates", "duplicate-dates"):
        res = rel.cli("velocity", project, "-i", path, "-o", project.parent / "vel.h5")
    else:
        res = rel.cli("correct", "deramp", project)
    line = _check_after(rel, project, res, note, path)
    assert TS in line


@pytest.mark.parametrize("what", ["pairs-vs-layers", "date-shape", "garbage-date"])
@pytest.mark.rcase(input="ifgramStack.h5 'date' inconsistent with the layers (fewer pairs / 1-D / unparsable)",
                   expected="Error: naming the file")
def test_bad_stack_dates(rel, project, what, note, request):
    path = project.parent / STACK
    with h5py.File(path, "r+") as f:
        d = f["date"][()]
        del f["date"]
        if what == "pairs-vs-layers":
            f.create_dataset("date", data=d[:-2])
        elif what == "date-shape":
            f.create_dataset("date", data=d[:, 0])
        else:
            d[1, 0] = b"20191399"
            f.create_dataset("date", data=d)
    res = rel.cli("invert", project, "--force")
    line = _check_after(rel, project, res, note, path)
    assert "ifgramStack.h5" in line


@pytest.mark.rcase(input="leftover stale `timeseries.h5.part` of another run (other signature) before invert",
                   expected="discarded, the run finishes with the normal result")
def test_stale_part_file(rel, project):
    work = project.parent
    ref = rel.h5_arrays(work / TS)["timeseries"]
    (work / "timeseries.h5.part").write_bytes(b"garbage, not HDF5" * 100)
    res = rel.cli("invert", project, "--force")
    assert res.code == 0, res.out
    np.testing.assert_array_equal(rel.h5_arrays(work / TS)["timeseries"], ref)
    assert not (work / "timeseries.h5.part").exists()
