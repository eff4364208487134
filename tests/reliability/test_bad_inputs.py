"""Bad inputs for every reader and every command: one clear line, non-zero exit, nothing damaged.

Readers are driven through ``sbts load`` on small stacks written in tmp_path (the generated
ISCE/SNAP/HyP3/ARIA layouts of tests/fixtures, the synthetic MintPy stack, copies of the real
GAMMA/ROI_PAC/GeoTIFF files); each case breaks one thing.  The outcome must be either a correct
load (e.g. a pair with a different size dropped with a warning) or an ``Error:`` line that names
what is wrong; never a traceback, an "internal error", or a half-written ``inputs/ifgramStack.h5``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

pytestmark = pytest.mark.rcase(area="bad input")


# =========================================================================== reader stacks
def _isce(root: Path):
    from fixtures.isce_topsstack import build_topsstack, template_text

    build_topsstack(root / "tops")
    return template_text(root / "tops"), sorted((root / "tops/merged/interferograms").glob("*/filt_fine.unw"))


def _snap(root: Path):
    from fixtures.snap_dimap import build_snap, template_text

    build_snap(root / "snap")
    return template_text(root / "snap"), sorted((root / "snap").glob("*.data/Unw_*.img"))


def _hyp3(root: Path):
    pytest.importorskip("osgeo.gdal")
    from fixtures.hyp3_products import build_hyp3, template_text

    build_hyp3(root / "hyp3")
    return template_text(root / "hyp3"), sorted((root / "hyp3").glob("*/*_unw_phase.tif"))


def _aria(root: Path):
    pytest.importorskip("osgeo.gdal")
    from fixtures.aria_products import build_aria_vrt, vrt_template

    build_aria_vrt(root / "aria")
    return vrt_template(root / "aria"), sorted((root / "aria/unwrappedPhase").glob("*.vrt"))


def _mintpy(root: Path):
    from sbts.core.demo.run import write_synthetic

    write_synthetic(root / "syn", shape=(20, 24), num_date=6)
    text = (f"mintpy.load.processor = mintpy\nmintpy.load.unwFile = {root}/syn/ifgramStack.h5\n"
            f"mintpy.load.demFile = {root}/syn/geometryGeo.h5\n")
    return text, [root / "syn/ifgramStack.h5"]


def _gamma(root: Path, shared: Path):
    src = shared / "pyrate_envisat_sydney_small_test/gamma"
    shutil.copytree(src, root / "gamma")
    g = root / "gamma"
    text = (f"mintpy.load.processor = auto\nmintpy.load.unwFile = {g}/*_utm.unw\nmintpy.load.metaFile = {g}/*_slc.par\n"
            f"mintpy.load.demFile = {g}/20060619_utm.dem\n")
    return text, sorted(g.glob("*_utm.unw"))


def _roipac(root: Path, shared: Path):
    src = shared / "pyrate_envisat_sydney_small_test/roipac"
    shutil.copytree(src, root / "roipac")
    r = root / "roipac"
    text = f"mintpy.load.processor = auto\nmintpy.load.unwFile = {r}/geo_*.unw\nmintpy.load.demFile = {r}/*.dem\n"
    return text, sorted(r.glob("geo_*.unw"))


def _geotiff(root: Path, shared: Path):
    pytest.importorskip("osgeo.gdal")
    src = shared / "pyrate_s1_mexico_cropA_gamma"
    dst = root / "mexico"
    for sub in ("geotiffs", "headers"):
        shutil.copytree(src / sub, dst / sub)
    text = (f"mintpy.load.processor = auto\nmintpy.load.unwFile = {dst}/geotiffs/*_unw.tif\n"
            f"mintpy.load.corFile = {dst}/geotiffs/*_cc.tif\nmintpy.load.demFile = {dst}/geotiffs/*_dem.tif\n"
            f"mintpy.load.metaFile = {dst}/headers/*_mli.par\n")
    return text, sorted((dst / "geotiffs").glob("*_unw.tif"))


READERS = ["isce", "snap", "hyp3", "aria", "mintpy", "gamma", "roipac", "geotiff"]
SIDECAR = {  # reader → function(first unw) → the sidecar that gives its size / metadata
    "isce": lambda u: u.with_name(u.name + ".xml"),
    "snap": lambda u: u.with_suffix(".hdr"),
    "hyp3": lambda u: u.with_name(u.name.replace("_unw_phase.tif", ".txt")),
    "aria": lambda u: u.with_suffix(".hdr") if u.with_suffix(".hdr").exists() else u.with_name(u.stem + ".hdr"),
    "roipac": lambda u: u.with_name(u.name + ".rsc"),
    "gamma": lambda u: next(u.parent.glob(u.name.split("-")[0] + "_slc.par")),
    "geotiff": lambda u: next((u.parent.parent / "headers").glob("*_mli.par")),
}


@pytest.fixture
def reader_stack(request, tmp_path):
    """(reader name, template path, unwrapped-phase files) of a valid small stack."""
    name = request.param
    root = tmp_path / "data"
    root.mkdir()
    if name in ("gamma", "roipac", "geotiff"):
        shared = request.getfixturevalue("shared_data")
        text, unws = {"gamma": _gamma, "roipac": _roipac, "geotiff": _geotiff}[name](root, shared)
    else:
        text, unws = {"isce": _isce, "snap": _snap, "hyp3": _hyp3, "aria": _aria, "mintpy": _mintpy}[name](root)
    cfg = tmp_path / "work" / "t.cfg"
    cfg.parent.mkdir()
    cfg.write_text(text)
    return name, cfg, unws


def _load(rel, cfg: Path):
    return rel.cli("load", cfg)


def _no_half_written(cfg: Path, rel) -> None:
    inputs = cfg.parent / "inputs"
    for p in inputs.glob("*.h5"):
        rel.h5_complete(p)


# --------------------------------------------------------------------------- the valid stack loads
@pytest.mark.parametrize("reader_stack", READERS, indirect=True)
@pytest.mark.rcase(input="valid small stack (control)", expected="loads, exit 0")
def test_control_loads(rel, reader_stack):
    name, cfg, unws = reader_stack
    res = _load(rel, cfg)
    assert res.code == 0, res.out
    _no_half_written(cfg, rel)


# --------------------------------------------------------------------------- truncated / empty rasters
@pytest.mark.parametrize("how", ["truncated", "empty"])
@pytest.mark.parametrize("reader_stack", READERS, indirect=True)
@pytest.mark.rcase(input="first interferogram raster truncated to half / emptied (0 bytes)",
                   expected="Error: naming the file; no inputs/ifgramStack.h5")
def test_truncated_raster(rel, reader_stack, how, note):
    name, cfg, unws = reader_stack
    target = unws[0]
    if how == "truncated":
        rel.truncate(target, 0.5)
    else:
        target.write_bytes(b"")
    res = _load(rel, cfg)
    if res.code == 0:
        pytest.fail(f"{how} {target.name} loaded without error:\n{res.out[-500:]}")
    line = rel.assert_clean_error(res)
    note(observed=line)
    assert not (cfg.parent / "inputs/ifgramStack.h5").exists()
    _no_half_written(cfg, rel)


# --------------------------------------------------------------------------- missing / garbage sidecars
@pytest.mark.parametrize("how", ["missing", "garbage"])
@pytest.mark.parametrize("reader_stack", [r for r in READERS if r in SIDECAR], indirect=True)
@pytest.mark.rcase(input="sidecar (.xml/.hdr/.txt/.rsc/.par) of the first pair missing / random non-UTF-8 bytes",
                   expected="Error: naming the sidecar, or the pair loaded without it (warning)")
def test_sidecar(rel, reader_stack, how, note):
    name, cfg, unws = reader_stack
    side = SIDECAR[name](unws[0])
    assert side.exists(), side
    if how == "missing":
        side.unlink()
    else:
        side.write_bytes(b"\xff\xfe\x00garbage \xc3\x28 = :\n" * 5)
    res = _load(rel, cfg)
    if res.code == 0:
        # acceptable only when the reader can do without it (e.g. GAMMA metadata from another date's par)
        assert "warning" in res.out.lower() or name in ("gamma", "geotiff"), res.out[-800:]
        note(observed="loaded (sidecar not needed)")
        _no_half_written(cfg, rel)
        return
    line = rel.assert_clean_error(res)
    note(observed=line)
    _no_half_written(cfg, rel)


# --------------------------------------------------------------------------- wrong byte order
@pytest.mark.parametrize("reader_stack", ["isce", "snap"], indirect=True)
@pytest.mark.rcase(input="header declares the other byte order than the data",
                   expected="loads (values garbage but finite or NaN→0), no crash; or a clear error")
def test_wrong_byte_order(rel, reader_stack, note):
    name, cfg, unws = reader_stack
    side = SIDECAR[name](unws[0])
    text = side.read_text()
    if name == "isce":
        new = text.replace("<value>l</value>", "<value>b</value>") if "<value>l</value>" in text else \
            text.replace('"byte_order"><value>', '"byte_order"><value>b')
    else:
        new = text.replace("byte order = 1", "byte order = 0")
    assert new != text
    side.write_text(new)
    res = _load(rel, cfg)
    if res.code != 0:
        note(observed=rel.assert_clean_error(res))
    else:
        _no_half_written(cfg, rel)
        note(observed="loaded")


# --------------------------------------------------------------------------- grid mismatch between files
@pytest.mark.parametrize("reader_stack", ["isce", "snap", "hyp3"], indirect=True)
@pytest.mark.rcase(input="one pair's raster has another size than the others",
                   expected="that pair dropped with a warning naming it, or Error: naming it")
def test_mismatched_grid(rel, reader_stack, note):
    name, cfg, unws = reader_stack
    odd = unws[-1]
    if name == "isce":
        from fixtures.isce_topsstack import write_isce_image

        write_isce_image(odd, [np.ones((12, 17), np.float32), np.ones((12, 17), np.float32)])
    elif name == "snap":
        from fixtures.snap_dimap import write_envi

        write_envi(odd, np.ones((9, 11), np.float32), odd.stem, "abs_phase")
    else:
        from fixtures.hyp3_products import write_tif

        write_tif(odd, np.ones((9, 11), np.float32), nodata=0.0)
    res = _load(rel, cfg)
    if res.code == 0:
        assert "dropping" in res.out or "differ" in res.out, res.out[-800:]
        from sbts.core.io.products import IfgramStack

        stack = IfgramStack(cfg.parent / "inputs/ifgramStack.h5")
        assert len(stack.pairs) == len(unws) - 1
        note(observed="pair dropped with a warning")
    else:
        note(observed=rel.assert_clean_error(res))
    _no_half_written(cfg, rel)


# --------------------------------------------------------------------------- dates
@pytest.mark.parametrize("reader_stack", ["isce", "hyp3", "roipac"], indirect=True)
@pytest.mark.rcase(input="interferogram whose name/folder has no parsable date (20191399)",
                   expected="Error: naming the file, or the file skipped with a warning")
def test_unparsable_dates(rel, reader_stack, note):
    name, cfg, unws = reader_stack
    u = unws[0]
    if name == "isce":
        folder = u.parent
        folder.rename(folder.with_name("20191399_20191400"))
    elif name == "hyp3":
        folder = u.parent
        new = folder.with_name(folder.name.replace("20251001T", "20251399T"))
        folder.rename(new)
        for f in new.iterdir():
            f.rename(f.with_name(f.name.replace("20251001T", "20251399T")))
        txt = next(new.glob("*.txt"))
        txt.write_text(txt.read_text().replace("20251001T", "20251399T"))
    else:
        rsc = u.with_name(u.name + ".rsc")
        rsc.write_text("\n".join(ln for ln in rsc.read_text().splitlines() if not ln.startswith("DATE")))
        u.rename(u.with_name("geo_061399-061400.unw"))
        rsc.rename(u.with_name("geo_061399-061400.unw.rsc"))
    res = _load(rel, cfg)
    if res.code == 0:
        assert "warning" in res.out.lower() or "skip" in res.out.lower(), res.out[-800:]
        note(observed="skipped with a warning")
    else:
        note(observed=rel.assert_clean_error(res))
    _no_half_written(cfg, rel)


@pytest.mark.parametrize("reader_stack", ["isce"], indirect=True)
@pytest.mark.rcase(input="pair stored later_earlier (folder 20190113_20190101)",
                   expected="stored as earlier_later with the phase sign flipped, or a clear error")
def test_unsorted_pair(rel, reader_stack, note):
    from sbts.core.io.products import IfgramStack

    name, cfg, unws = reader_stack
    folder = unws[0].parent
    d1, d2 = folder.name.split("_")
    raw = np.fromfile(unws[0], "<f4").reshape(30, 2, 40)[:, 1, :]
    folder.rename(folder.with_name(f"{d2}_{d1}"))
    res = _load(rel, cfg)
    if res.code != 0:
        note(observed=rel.assert_clean_error(res))
        return
    stack = IfgramStack(cfg.parent / "inputs/ifgramStack.h5")
    k = stack.pairs.date12.index(f"{d1}_{d2}")
    got = stack.read("unwrapPhase", index=k)
    if np.allclose(got, -raw):
        note(observed="stored earlier_later, sign flipped")
    else:
        assert np.allclose(got, raw), "phase neither kept nor negated"
        pytest.fail(f"pair {d2}_{d1} loaded as {d1}_{d2} without flipping the phase sign")


@pytest.mark.parametrize("reader_stack", ["isce", "snap"], indirect=True)
@pytest.mark.rcase(input="the same pair twice (a copy of one interferogram under another folder)",
                   expected="Error: naming both files, or one kept with a warning; never two layers of one pair")
def test_duplicate_pair(rel, reader_stack, note):
    from sbts.core.io.products import IfgramStack

    name, cfg, unws = reader_stack
    if name == "isce":
        src = unws[0].parent
        dst = src.parent / "zz" / src.name
        shutil.copytree(src, dst)
        cfg.write_text(cfg.read_text().replace("/merged/interferograms/*/", "/merged/interferograms/**/"))
    else:
        data = unws[0].parent
        dim = data.with_suffix(".dim")
        copy = data.with_name("copy_" + data.name)
        shutil.copytree(data, copy)
        shutil.copy(dim, copy.with_suffix(".dim"))
    res = _load(rel, cfg)
    if res.code != 0:
        note(observed=rel.assert_clean_error(res))
        return
    stack = IfgramStack(cfg.parent / "inputs/ifgramStack.h5")
    dup = len(stack.pairs.date12) - len(set(stack.pairs.date12))
    assert dup == 0, f"{dup} duplicate pair(s) written into ifgramStack.h5: {stack.pairs.date12}"
    note(observed="one kept")


# =========================================================================== commands on broken inputs
@pytest.fixture
def proj(project):
    return project


BROKEN = {
    # id: (args builder(cfg) -> list, preparation(cfg) -> None, text the message must contain)
    "load-template-missing": (lambda c: ["load", c.parent / "nope.cfg"], None, "nope.cfg"),
    "load-template-non-utf8": (lambda c: ["load", c], lambda c: c.write_bytes(b"mintpy.load.unwFile = \xff\xfe\n"), "UTF-8"),
    "load-template-bad-line": (lambda c: ["load", c], lambda c: c.write_text("this is not a key value line\n"), "line 1"),
    "load-no-match": (lambda c: ["load", c, "--unw", "nothing_here/*.unw", "--processor", "isce"], None, ""),
    "load-unknown-processor": (lambda c: ["load", c, "--processor", "nosuchproc"], None, "nosuchproc"),
    "load-bad-subset": (lambda c: ["load", c, "--subset-yx", "abc"], None, "subset"),
    "load-subset-outside": (lambda c: ["load", c, "--subset-yx", "500:600,500:600"], None, "subset"),
    "network-stack-missing": (lambda c: ["network", c, "-i", c.parent / "nope.h5"], None, "nope.h5"),
    "network-stack-not-hdf5": (lambda c: ["network", c, "-i", c.parent / "junk.h5"],
                               lambda c: (c.parent / "junk.h5").write_bytes(b"not hdf5" * 100), "junk.h5"),
    "network-bad-date-key": (lambda c: ["network", c],
                             lambda c: c.write_text(c.read_text() + "mintpy.network.startDate = 2019-13-45\n"), "startDate"),
    "network-bad-ref-yx": (lambda c: ["network", c, "--ref-yx", "5000,5000"], None, ""),
    "network-ref-yx-garbage": (lambda c: ["network", c, "--ref-yx", "a,b"], None, ""),
    "invert-stack-missing": (lambda c: ["invert", c, "-i", c.parent / "nope.h5"], None, "nope.h5"),
    "invert-bad-min-temp-coh": (lambda c: ["invert", c],
                                lambda c: c.write_text(c.read_text() + "mintpy.networkInversion.minTempCoh = high\n"),
                                "minTempCoh"),
    "invert-bad-weight-func": (lambda c: ["invert", c],
                               lambda c: c.write_text(c.read_text() + "mintpy.networkInversion.weightFunc = magic\n"),
                               "weightFunc"),
    "invert-timeseries-as-stack": (lambda c: ["invert", c, "-i", c.parent / "timeseries.h5"], None, "timeseries.h5"),
    "deramp-input-missing": (lambda c: ["correct", "deramp", c, "-i", c.parent / "nope.h5"], None, "nope.h5"),
    "deramp-bad-kind": (lambda c: ["correct", "deramp", c, "-s", "mintpy.deramp=cubic"], None, "deramp"),
    "deramp-stack-as-input": (lambda c: ["correct", "deramp", c, "-i", c.parent / "inputs/ifgramStack.h5"], None, ""),
    "export-geotiff-not-hdf5": (lambda c: ["export", "geotiff", c.parent / "junk.h5", "-o", c.parent / "x.tif"],
                                lambda c: (c.parent / "junk.h5").write_bytes(b"\x89HDF\r\n" + b"\0" * 50), "junk.h5"),
    "export-geotiff-no-dataset": (lambda c: ["export", "geotiff", c.parent / "velocity_missing.h5"], None, ""),
    "export-geotiff-bad-date": (lambda c: ["export", "geotiff", c.parent / "timeseries.h5", "19990101",
                                           "-o", c.parent / "x.tif"], None, "19990101"),
    "export-geotiff-bad-dataset": (lambda c: ["export", "geotiff", c.parent / "temporalCoherence.h5", "nosuch",
                                              "-o", c.parent / "x.tif"], None, "nosuch"),
    "export-hdf5-not-hdf5": (lambda c: ["export", "hdf5", c.parent / "junk.h5", "-o", c.parent / "x.h5"],
                             lambda c: (c.parent / "junk.h5").write_text("text"), "junk.h5"),
    "export-unknown-format": (lambda c: ["export", "nosuchformat", c.parent / "timeseries.h5"], None, ""),
    "info-missing": (lambda c: ["info", c.parent / "nope.h5"], None, "nope.h5"),
    "info-empty-file": (lambda c: ["info", c.parent / "empty.h5"], lambda c: (c.parent / "empty.h5").write_bytes(b""),
                        "empty.h5"),
    "info-text-file": (lambda c: ["info", c], None, "t.cfg"),
    "run-template-missing": (lambda c: ["run", c.parent / "nope.cfg"], None, "nope.cfg"),
    "run-unknown-step": (lambda c: ["run", c, "--end", "no_such_step"], None, "no_such_step"),
    "run-end-before-start": (lambda c: ["run", c, "--start", "invert_network", "--end", "load_data"], None, ""),
    "run-bad-value": (lambda c: ["run", c, "--dostep", "invert_network"],
                      lambda c: c.write_text(c.read_text() + "mintpy.networkInversion.minNormVelocity = maybe\n"),
                      "minNormVelocity"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.rcase(input="command on a broken input", expected="exit ≠ 0, one `Error:` line naming the culprit, "
                   "no traceback, outputs intact")
def test_command_broken_input(rel, project, case, note):
    args, prep, needle = BROKEN[case]
    if prep:
        prep(project)
    work = project.parent
    keep = ["timeseries.h5", "temporalCoherence.h5", "maskTempCoh.h5", "syn/ifgramStack.h5", "syn/geometryGeo.h5"]
    before = {p: rel.sha(work / p) for p in keep}
    res = rel.cli(*args(project))
    line = rel.assert_clean_error(res, *([needle] if needle else []))
    note(observed=line)
    if "invert" not in case:
        for p, h in before.items():
            assert rel.sha(work / p) == h, f"{p} changed by a failed {args(project)[0]}"
    for p in list(work.glob("*.h5")) + list(work.glob("inputs/*.h5")):
        if p.name != "junk.h5" and p.name != "empty.h5":
            rel.h5_complete(p)  # nothing left damaged
    assert not list(work.rglob("*.part")), "a .part file was left behind"


@pytest.mark.rcase(input="`sbts info` on a text file, as a subprocess", expected="exit 1, stderr exactly one `Error:` line")
def test_subprocess_exit_status(rel, tmp_path):
    f = tmp_path / "x.h5"
    f.write_text("hello")
    res = rel.run("info", f)
    assert res.code == 1
    assert "Traceback" not in res.out
    errors = [ln for ln in res.out.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "x.h5" in errors[0], res.out


@pytest.mark.rcase(input="`sbts -v info` on a text file", expected="the traceback is shown with -v")
def test_verbose_shows_traceback(rel, tmp_path):
    f = tmp_path / "x.h5"
    f.write_text("hello")
    res = rel.run("-v", "info", f)
    assert res.code != 0 and "Traceback" in res.out


# =========================================================================== network shapes
@pytest.mark.rcase(input="stack of a single pair: load → network → invert",
                   expected="a 2-date time series (exact), or a clear error")
def test_single_pair(rel, tmp_path, note):
    import h5py

    from sbts.core.io.products import IfgramStack, TimeSeries

    cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
    src = cfg.parent / "syn/ifgramStack.h5"
    stack = IfgramStack(src)
    keep = np.zeros(len(stack.pairs), bool)
    keep[0] = True
    with h5py.File(src, "r+") as f:
        for name in ("unwrapPhase", "coherence", "connectComponent"):
            data = f[name][0:1]
            del f[name]
            f.create_dataset(name, data=data)
        for name in ("date", "bperp", "dropIfgram"):
            if name in f:
                data = f[name][0:1]
                del f[name]
                f.create_dataset(name, data=data)
    for step in ("load", "network", "invert"):
        res = rel.cli(step, cfg)
        if res.code != 0:
            note(observed=f"{step}: " + rel.assert_clean_error(res))
            return
    ts = TimeSeries(cfg.parent / "timeseries.h5")
    assert len(ts.dates) == 2
    data = ts.read_dates()
    assert np.all(data[0] == 0)
    note(observed="2-date time series")


@pytest.mark.rcase(input="`sbts load` with mintpy.load.unwFile = syn/nothing.h5 (no match) but a valid demFile",
                   expected="Error: naming the unwFile pattern")
def test_bug_unwfile_matches_nothing(rel, tmp_path):
    cfg = rel.project(tmp_path / "w", shape=(20, 24), num_date=6)
    cfg.write_text(cfg.read_text().replace("syn/ifgramStack.h5", "syn/nothing.h5"))
    res = rel.cli("load", cfg)
    rel.assert_clean_error(res, "unwFile")
