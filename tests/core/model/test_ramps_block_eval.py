"""BlockRamp / evaluate_ramps give the very float64 sum of the documented terms, added in order."""

from __future__ import annotations

import numpy as np
import pytest

from sbts.core.io.blocks import Block
from sbts.core.model.ramps import RAMP_KINDS, BlockRamp, evaluate_ramps, num_coefficients

SHAPE = (23, 41)


def _naive(cf: np.ndarray, kind: str, block: Block) -> np.ndarray:
    """Σ c·term on a zeroed full layer, term after term (the plain formula, no shortcut)."""
    y = (np.arange(block.row_start, block.row_stop, dtype=np.float64) / SHAPE[0])[:, None]
    x = (np.arange(block.col_start, block.col_stop, dtype=np.float64) / SHAPE[1])[None, :]
    values = {"1": 1.0, "x": x, "y": y, "x2": x * x, "y2": y * y, "xy": x * y}
    layer = np.zeros(block.shape)
    for c, t in zip(cf, {"linear": "1 x y", "quadratic": "1 x y x2 y2 xy", "linear_range": "1 x",
                         "linear_azimuth": "1 y", "quadratic_range": "1 x x2",
                         "quadratic_azimuth": "1 y y2"}[kind].split()):
        layer += c * values[t]
    return layer


@pytest.mark.parametrize("kind", RAMP_KINDS)
@pytest.mark.parametrize("block", [Block(0, SHAPE[0], 0, SHAPE[1]), Block(5, 17, 3, 30), Block(4, 5, 0, SHAPE[1]),
                                   Block(0, SHAPE[0], 7, 8), Block(9, 10, 9, 10)])
def test_block_ramp_is_the_plain_sum_bit_for_bit(kind, block):
    coeffs = np.random.default_rng(5).normal(0, 1, (4, num_coefficients(kind)))
    coeffs[1, 0] = -0.0
    ramp = BlockRamp(SHAPE, kind, block)
    for cf in coeffs:
        np.testing.assert_array_equal(ramp.evaluate(cf), _naive(cf, kind, block), strict=True)
    got64 = evaluate_ramps(coeffs, SHAPE, kind, block, dtype=np.float64)
    got32 = evaluate_ramps(coeffs, SHAPE, kind, block)
    for i, cf in enumerate(coeffs):
        np.testing.assert_array_equal(got64[i], _naive(cf, kind, block), strict=True)
        np.testing.assert_array_equal(got32[i], _naive(cf, kind, block).astype(np.float32), strict=True)


def test_block_ramp_rejects_a_wrong_number_of_coefficients():
    with pytest.raises(ValueError, match="coefficients"):
        BlockRamp(SHAPE, "linear").evaluate(np.zeros(6))
