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
