"""INT8 weights as digit planes of the mixed PE's codes (:mod:`peforge.dse.tile.lower_mixed`): the
planes' GEMMs, by the PE's own golden (the model its RTL matches bit for bit), accumulated as the
tile engine accumulates, equal the integer product ``A W^T``."""

from __future__ import annotations

import numpy as np
import pytest

from peforge.dse.tile.lower_mixed import int8_planes
from peforge.hw.golden import wrap
from peforge.hw.pe.mixed import MixedConfig

OUT_BITS = 32  # the output scratchpad's elements


def planes_product(a, weights, pe):
    total = np.zeros((a.shape[0], weights.shape[0]), dtype=object)
    for plane in int8_planes(weights, pe):
        for _ in range(plane.repeats):
            total = wrap(total + pe.golden_gemm(a, plane.codes.T, acc_bits=pe.acc_bits, meta=plane.meta), OUT_BITS)
    return total


@pytest.mark.parametrize("params", [dict(lanes=4, w_bits=4, group=32), dict(lanes=4, w_bits=3, group=8),
                                    dict(lanes=2, w_bits=2, group=4, scale_frac_bits=0),
                                    dict(lanes=4, w_bits=4, group=16, scale_bits=20)],
                         ids=["default-4bit", "3bit", "2bit-frac0", "4bit-wide-scale"])
def test_planes_give_the_integer_product(params):
    pe = MixedConfig(**params)
    rng = np.random.default_rng(params["w_bits"])
    k = 3 * pe.group + 5  # a partial last group
    a = rng.integers(-128, 128, (7, k))
    w = rng.integers(-128, 128, (9, k))
    w[0, :] = -128
    w[1, :] = 127
    a[0, :] = -128
    got = planes_product(a, w, pe)
    assert np.array_equal(got.astype(np.int64), a @ w.T)


def test_default_pe_plans_a_low_plane_and_a_high_plane_run_twice():
    pe = MixedConfig(lanes=4, w_bits=4, group=32)  # 16-bit scales, 12 fraction bits
    low, high = int8_planes(np.array([[-128, -1, 0, 127]]), pe)
    assert (low.repeats, int(low.meta["scale"][0, 0]), int(low.meta["zp"][0, 0])) == (1, 4096, 0)
    assert (high.repeats, int(high.meta["scale"][0, 0]), int(high.meta["zp"][0, 0])) == (2, 32768, 8)
    assert low.codes.tolist() == [[0, 15, 0, 15]] and high.codes.tolist() == [[0, 7, 8, 15]]


def test_refusals():
    with pytest.raises(ValueError, match="zero_point"):
        int8_planes(np.zeros((2, 4)), MixedConfig(lanes=4, w_bits=4, group=4, zero_point=False))
    with pytest.raises(ValueError, match="no exact scale"):
        int8_planes(np.zeros((2, 4)), MixedConfig(lanes=4, w_bits=4, group=4, scale_bits=8, scale_frac_bits=8))
    with pytest.raises(ValueError, match="INT8"):
        int8_planes(np.full((2, 4), 128), MixedConfig(lanes=4, w_bits=4, group=4))
