"""modify_network's and reference_point's passes over the stack (issue 16: "the network averages") in
the pool and on dask: the mean coherence of every pair, the per-pixel mean coherence and the common
unwrapped mask are the same bits as in one process, in several blocks, with a mask and an area."""

from __future__ import annotations

import numpy as np
import pytest

from sbts.core.demo.run import write_synthetic_files
from sbts.core.demo.synthetic import make_synthetic_stack
from sbts.core.io.blocks import Block
from sbts.core.io.products import IfgramStack
from sbts.core.steps import averages
from sbts.core.steps.network import spatial_average_coherence

BUDGET = 0.0004  # GB: several blocks of the 60 × 80 stack (a block holds ~40 pairs × some rows)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stack")
    synth = make_synthetic_stack(shape=(60, 80), num_date=12, seed=4)
    write_synthetic_files(folder, synth)
    path = folder / "ifgramStack.h5"
    with __import__("h5py").File(path, "r+") as f:  # some pairs dropped: the kept-pair averages skip them
        keep = f["dropIfgram"][()]
        keep[[1, 5]] = False
        f["dropIfgram"][...] = keep
    return IfgramStack(path)


@pytest.mark.parametrize("mode", [dict(workers=2), dict(workers=2, cluster="local")], ids=["pool", "dask"])
def test_network_and_reference_averages_same_bits(stack, mode):
    if mode.get("cluster"):
        pytest.importorskip("dask.distributed")
    rng = np.random.default_rng(0)
    mask = rng.random(stack.shape) > 0.2
    aoi = Block(5, 52, 7, 71)
    here = spatial_average_coherence(stack, mask, aoi, BUDGET)
    assert len(averages._blocks(stack, "coherence", len(stack.pairs), BUDGET / 2)) > 2  # several blocks apart
    np.testing.assert_array_equal(spatial_average_coherence(stack, mask, aoi, BUDGET, **mode), here)
    index = np.array([0, 3, 4, 9])
    np.testing.assert_array_equal(spatial_average_coherence(stack, None, None, BUDGET, index=index, **mode),
                                  spatial_average_coherence(stack, None, None, BUDGET, index=index))
    np.testing.assert_array_equal(averages.temporal_average(stack, "coherence", BUDGET, **mode),
                                  averages.temporal_average(stack, "coherence", BUDGET))
    np.testing.assert_array_equal(averages.connected_component_mask(stack, BUDGET, **mode),
                                  averages.connected_component_mask(stack, BUDGET))
    np.testing.assert_array_equal(averages.valid_in_all_kept(stack, "unwrapPhase", BUDGET, **mode),
                                  averages.valid_in_all_kept(stack, "unwrapPhase", BUDGET))
    assert not list(stack.path.parent.glob(".ifgramStack_task_arrays_*"))  # the shared mask's scratch is gone
