"""The vector unit's integer-only operators against float references, over every input code or
many random rows, with the error bounds their docstrings state; the fixed-point helpers by hand."""

import math

import numpy as np
import pytest

from peforge.hw import intops


def test_fixed_point_and_requantize_by_hand():
    assert intops.fixed_point(0.5) == (1 << 30, 31)  # 0.5 = 2**30 / 2**31
    multiplier, shift = intops.fixed_point(0.3)
    assert abs(multiplier / 2 ** shift - 0.3) < 2 ** -31 and 1 << 30 <= multiplier < 1 << 31
    # 100 x 0.5 = 50, 3 x 0.5 = 1.5 rounds up to 2, -3 x 0.5 = -1.5 up to -1; 300 saturates at 127
    half = intops.fixed_point(0.5)
    assert intops.requantize([100, -100, 3, -3, 300, -300], *half, 8).tolist() == [50, -50, 2, -1, 127, -128]
    with pytest.raises(ValueError, match="positive finite"):
        intops.fixed_point(0.0)


@pytest.mark.parametrize("log2_scale, bound", [(-5, 0.06), (-8, 0.02), (-11, 0.006), (-14, 0.006)])
def test_exp_within_its_relative_bound_on_every_code(log2_scale, bound):
    scale = 2.0 ** log2_scale
    q = np.arange(-round(16 / scale), 1)  # x from -16 to 0
    codes, out_scale = intops.i_exp(q, scale)
    reference = np.exp(q * scale)
    counted = reference >= 2 ** -8
    error = np.abs(codes * out_scale - reference)[counted] / reference[counted]
    assert error.max() < bound
    assert codes[-1] * out_scale == pytest.approx(1.0, rel=bound)  # exp(0)


def test_exp_rejects_positive_inputs_and_coarse_scales():
    with pytest.raises(ValueError, match="<= 0"):
        intops.i_exp([1], 0.01)
    with pytest.raises(ValueError, match="outside"):
        intops.i_exp([-1], 1.0)


@pytest.mark.parametrize("log2_scale", [-4, -6, -8, -10])
def test_softmax_rows_within_2_to_minus_7(log2_scale):
    scale = 2.0 ** log2_scale
    rows = np.random.default_rng(log2_scale + 20).integers(-round(12 / scale), round(4 / scale), size=(500, 64))
    codes, out_scale = intops.i_softmax(rows, scale)
    x = rows * scale
    reference = np.exp(x - x.max(axis=-1, keepdims=True))
    reference /= reference.sum(axis=-1, keepdims=True)
    assert np.abs(codes * out_scale - reference).max() < 2 ** -7
    assert out_scale == 2 ** -8 and codes.min() >= 0 and codes.max() <= 256


def test_integer_square_root_is_exact():
    rng = np.random.default_rng(7)
    n = np.concatenate([np.arange(0, 4097), rng.integers(0, 1 << 62, 4000),
                        [(1 << 62) - 1, 1 << 40, (1 << 40) - 1, (1 << 31) ** 2 - 1]])
    assert [int(v) for v in intops.i_sqrt(n)] == [math.isqrt(int(v)) for v in n]
    with pytest.raises(ValueError, match=">= 0"):
        intops.i_sqrt([-1])


@pytest.mark.parametrize("high, bound", [(8, 2.5e-3), (128, 5e-4), (2048, 5e-4)])
def test_rmsnorm_within_its_bound(high, bound):
    rows = np.random.default_rng(high).integers(-high, high, size=(1000, 64))
    codes, out_scale = intops.i_rmsnorm(rows)
    rms = np.sqrt((rows.astype(float) ** 2).mean(axis=-1, keepdims=True))
    reference = np.divide(rows, rms, out=np.zeros(rows.shape), where=rms > 0)
    assert np.abs(codes * out_scale - reference).max() < bound
    assert intops.i_rmsnorm(np.zeros((1, 8), dtype=int))[0].tolist() == [[0] * 8]  # no division by zero


@pytest.mark.parametrize("log2_scale", [-5, -6, -8])
def test_silu_within_0_4_percent_of_x(log2_scale):
    scale = 2.0 ** log2_scale
    q = np.arange(-round(8 / scale), round(8 / scale) + 1)
    codes, out_scale = intops.i_silu(q, scale)
    x = q * scale
    error = np.abs(codes * out_scale - x / (1 + np.exp(-x)))
    assert (error <= 0.004 * np.abs(x)).all()
    assert codes[q == 0].tolist() == [0]


def test_rope_by_hand_and_within_its_bound_on_every_pair():
    # a quarter turn: (x_i, x_j) -> (-x_j, x_i); no turn: unchanged
    assert intops.i_rope([3, 5], [0], [1 << 14], 14).tolist() == [-5, 3]
    assert intops.i_rope([3, -7, 5, 2], [1 << 14, 1 << 14], [0, 0], 14).tolist() == [3, -7, 5, 2]
    codes = np.arange(-128, 128)
    pairs = np.stack(np.meshgrid(codes, codes), axis=-1).reshape(-1, 2)  # every (x_i, x_j) of INT8
    for angle in (0.3, 1.0, 2.5, -2.0):
        for frac_bits in (8, 14):
            cos, sin = (round(f(angle) * 2 ** frac_bits) for f in (math.cos, math.sin))
            out = intops.i_rope(pairs, [cos], [sin], frac_bits)
            exact = np.stack([pairs[:, 0] * math.cos(angle) - pairs[:, 1] * math.sin(angle),
                              pairs[:, 1] * math.cos(angle) + pairs[:, 0] * math.sin(angle)], axis=-1)
            bound = 0.5 + np.abs(pairs).sum(axis=-1, keepdims=True) * 2.0 ** -(frac_bits + 1)
            assert (np.abs(out - exact) <= bound + 1e-9).all()
    with pytest.raises(ValueError, match="even last axis"):
        intops.i_rope([1, 2, 3], [1], [0], 14)


@pytest.mark.parametrize("log2_scale", [-15, -11, -8, -5, -1])
def test_exp_reciprocal_divides_exactly(log2_scale):
    # the vector unit's z = floor(n * recip / 2**recip_shift) must be n // q_ln2 on all of [0, 2**31]
    k = intops.ExpConstants.of(2.0 ** log2_scale)
    rng = np.random.default_rng(-log2_scale)
    n = [int(v) for v in rng.integers(0, (1 << 31) + 1, 20000)] + [0, 1, (1 << 31) - 1, 1 << 31]
    n += [j * k.q_ln2 + d for j in (1, 2, 1000, (1 << 31) // k.q_ln2) for d in (-1, 0, 1)]
    n = [v for v in n if 0 <= v <= 1 << 31]
    assert [v * k.recip >> k.recip_shift for v in n] == [v // k.q_ln2 for v in n]
    assert k.one < 1 << 30 <= 2 * k.one  # exp(0) has 30 bits: every code fits a 32-bit element


def test_reciprocals_by_hand():
    assert intops.i_recip([1, 3, 0, -5, 1 << 20], 20).tolist() == [(1 << 20), 349525, 1 << 20, 1 << 20, 1]
    assert intops.i_recip([1], 40).tolist() == [(1 << 31) - 1]  # saturated to 32 bits
    # sum of squares 4 * 9 = 36 over n = 4 -> mean 9 -> (9 << 4) = 144, root 12 (guard 2): 2**10 // 12 = 85
    assert intops.i_rsqrt_mean([36], 4, 2, 10).tolist() == [85]
    with pytest.raises(ValueError, match="outside 0..62"):
        intops.i_recip([1], 63)
    with pytest.raises(ValueError, match="sums of squares"):
        intops.i_rsqrt_mean([1 << 50], 4, 8, 40)
