"""``sbts demo``: the whole workflow on the synthetic stack, its pictures, and its accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from sbts.cli.main import cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(cli, ["demo", str(work), "--size", "60", "80", "--dates", "16"])
    assert result.exit_code == 0, result.output
    return work, result.output


def test_demo_summary_says_where_things_are(demo):
    work, out = demo
    assert str(work) in out and "pictures:" in out and "velocity accuracy:" in out
    for name in ("timeseries.h5", "velocity.h5", "temporalCoherence.h5", "maskTempCoh.h5", "synthetic/truth.h5",
                 "export/velocity.tif", "sbts_run_summary.txt"):
        assert (work / name).exists(), name


@pytest.mark.parametrize("name", ["network.png", "velocity.png", "temporalCoherence.png", "tsview.png"])
def test_demo_pictures_exist_and_are_not_blank(demo, name):
    import matplotlib.image as mpimg

    path = demo[0] / "pic" / name
    assert path.stat().st_size > 20_000
    img = mpimg.imread(path)[..., :3]
    assert img.shape[0] > 300 and img.shape[1] > 300
    colours = np.unique((img.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50  # a real plot, not a blank or single-colour canvas
    assert img.std() > 0.05


def test_demo_recovers_the_subsiding_bowl(demo):
    """Velocity within 1 cm/yr RMS of the truth (turbulence of ~1 cm per date over 2 years)."""
    out = demo[1]
    line = next(s for s in out.splitlines() if "velocity accuracy" in s)
    rms_mm = float(line.split("RMS error ")[1].split(" mm/yr")[0])
    assert rms_mm < 10
    inv = next(s for s in out.splitlines() if "inversion accuracy" in s)
    assert float(inv.split("truth ")[1].split(" mm")[0]) < 5


def test_every_product_of_the_demo_says_how_it_was_made(demo):
    """SBTS_PROVENANCE on every .h5 (MintPy ignores it): sbts version, step, parsed options, and the
    content versions of the inputs it read, which are the versions those inputs carry."""
    import json

    import h5py

    work = demo[0]
    files = sorted(work.rglob("*.h5"))
    assert len(files) > 15
    versions = {}
    records = {}
    for path in files:
        with h5py.File(path, "r") as f:
            assert "SBTS_PROVENANCE" in f.attrs, path
            records[path.relative_to(work).as_posix()] = json.loads(f.attrs["SBTS_PROVENANCE"])
            versions[path.relative_to(work).as_posix()] = json.loads(f.attrs["SBTS_VERSIONS"])
    for name, rec in records.items():
        assert rec["sbts"] and rec["step"] and "options" in rec and "inputs" in rec, name
    velocity = records["velocity.h5"]
    assert velocity["step"] == "velocity" and velocity["options"]["model"]["periods"] == [1.0]
    (source, read), = velocity["inputs"].items()  # the end of the chain, after reference_date
    assert source == "timeseries_demErr.h5"
    assert read["content"] == versions[source]["content"][0] and read["refdate"] == versions[source]["refdate"][0]
    inversion = records["timeseries.h5"]
    assert inversion["step"] == "invert_network" and inversion["options"]["weight_func"] == "var"
    stack = inversion["inputs"]["inputs/ifgramStack.h5"]
    assert stack["content"] == versions["inputs/ifgramStack.h5"]["content"][0]
    # the corrected dataset the inversion read is one of its inputs' parts
    assert stack["data:unwrapPhase_bridging"] == versions["inputs/ifgramStack.h5"]["data:unwrapPhase_bridging"][0]
    assert records["synthetic/ifgramStack.h5"]["step"] == "demo"
