"""The FP-activation PEs' golden models (fpbitserial, fpmixed) against an independent reference:
exact ``Fraction`` arithmetic of the same block-alignment definition, written from the decoded
values (not the code fields), with its own round-to-nearest-even to FP32 (not hw.fp.encode);
random cases and corners (±0, subnormals, the largest finite values, exponents far apart, Inf /
NaN), every weight precision; and the error statistics against exact FP32 dot products."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from peforge.hw.fp import decode, float_format
from peforge.hw.golden import sign_extend
from peforge.hw.pe.fpalign import align_beats, alignment_error, lsb_exp, to_fp32
from peforge.hw.pe.fpbitserial import FpBitSerialConfig
from peforge.hw.pe.fpmixed import FpMixedConfig
from peforge.sim.testbench.fpcodes import as_signed, corner_codes, random_codes

# --- the reference -------------------------------------------------------------------------------


def ref_beat(values, q: int, emin: int) -> tuple[list[Fraction], Fraction]:
    """A beat's aligned lanes as exact values: each lane's exponent is floor(log2 |v|) (emin for
    zeros and subnormals), the beat's quantum 2**(emax + 1 - q), and a lane keeps
    sign * floor(|v| / quantum) quanta."""
    exps = [max(emin, math.floor(math.log2(abs(v)))) if v else emin for v in values]
    for v, e in zip(values, exps):  # log2 of a Fraction through a float: check it exactly
        assert v == 0 or e == emin or Fraction(2) ** e <= abs(v) < Fraction(2) ** (e + 1)
    quantum = Fraction(2) ** (max(exps) + 1 - q)
    return [(1 if v >= 0 else -1) * math.floor(abs(v) / quantum) for v in values], quantum


def ref_dot(codes, weights, fmt_name: str, align_bits: int, lanes: int, scales=None, group=None):
    """Exact value of the aligned dot product and its NaN flag; ``scales`` / ``group``: a factor
    per group of ``group`` consecutive k (the one dequantization per group)."""
    fmt = float_format(fmt_name)
    total, nan = Fraction(0), False
    for start in range(0, len(codes), lanes):
        values = []
        for c in codes[start:start + lanes]:
            v = decode(fmt, int(c) & 0xFFFF)
            nan |= isinstance(v, float)
            values.append(Fraction(0) if isinstance(v, float) else v)
        aligned, quantum = ref_beat(values, align_bits - 1, fmt.emin)
        factor = 1 if scales is None else scales[start // group]
        total += sum(a * int(w) for a, w in zip(aligned, weights[start:start + lanes])) * quantum * factor
    return total, nan


def ref_fp32(value: Fraction, nan: bool) -> int:
    """Round to FP32, nearest even, by searching float32 neighbours exactly (numpy's float32
    grid, not hw.fp.encode)."""
    if nan:
        return 0x7FC00000
    with np.errstate(over="ignore"):
        guess = np.float32(float(value))
    candidates = [guess, np.nextafter(guess, np.float32(np.inf)), np.nextafter(guess, np.float32(-np.inf))]
    finite = [c for c in candidates if np.isfinite(c)]
    best = min(finite, key=lambda c: (abs(Fraction(float(c)) - value), int(np.array(c).view(np.uint32)) & 1))
    if abs(value) >= Fraction(2) ** 128 - Fraction(2) ** 103:  # past the largest finite, by half an ulp: Inf
        best = np.float32(np.inf) * (1 if value > 0 else -1)
    code = int(np.array(best, dtype=np.float32).view(np.uint32))
    return 0 if code == 0x80000000 else code  # an integer sum of zero is +0


# --- stimulus ------------------------------------------------------------------------------------


def codes_with_corners(fmt_name: str, rng, shape) -> np.ndarray:
    fmt = float_format(fmt_name)
    codes = random_codes(fmt, rng, shape)
    corners = list(corner_codes(fmt).values())
    flat = codes.reshape(-1)
    picks = rng.random(flat.size) < 0.2
    flat[picks] = rng.choice(corners, picks.sum())
    return codes


CASES = [("fp16", 12, 4), ("fp16", 5, 3), ("fp16", 16, 8), ("fp16", 11, 1), ("bf16", 9, 4), ("bf16", 4, 5)]


@pytest.mark.parametrize("fmt_name, align_bits, lanes", CASES)
def test_bitserial_golden_matches_reference(fmt_name, align_bits, lanes):
    rng = np.random.default_rng(align_bits * 10 + lanes)
    for max_w_bits in (2, 5, 8):
        cfg = FpBitSerialConfig(a_float=fmt_name, align_bits=align_bits, lanes=lanes, max_w_bits=max_w_bits)
        M, K, N = 3, 3 * lanes + 1, 2
        a = codes_with_corners(fmt_name, rng, (M, K))
        b = rng.integers(0, 1 << max_w_bits, (K, N))
        for w_bits in range(2, max_w_bits + 1):
            got = cfg.golden_gemm(as_signed(a), b, acc_bits=None, w_bits=w_bits)
            weights = sign_extend(b, w_bits)
            for i in range(M):
                for j in range(N):
                    value, nan = ref_dot(a[i], weights[:, j], fmt_name, align_bits, lanes)
                    fixed = value / Fraction(2) ** cfg.lsb_exp
                    assert fixed.denominator == 1 and got[i, j] == fixed.numerator
                    assert to_fp32(got[i, j], cfg.lsb_exp, nan) == ref_fp32(value, nan)


@pytest.mark.parametrize("fmt_name, align_bits, lanes", CASES)
@pytest.mark.parametrize("w_bits, zero_point", [(2, True), (3, False), (4, True), (4, False)])
def test_mixed_golden_matches_reference(fmt_name, align_bits, lanes, w_bits, zero_point):
    rng = np.random.default_rng(align_bits * 10 + lanes + w_bits)
    group = 2 * lanes
    cfg = FpMixedConfig(a_float=fmt_name, align_bits=align_bits, lanes=lanes, group=group, w_bits=w_bits,
                        zero_point=zero_point, scale_bits=6, scale_frac_bits=3)
    M, K, N = 2, 2 * group + lanes, 3
    groups = -(-K // group)
    a = codes_with_corners(fmt_name, rng, (M, K))
    b = rng.integers(0, 1 << w_bits, (K, N))
    meta = {"zp": rng.integers(0, 1 << w_bits, (groups, N)), "scale": rng.integers(0, 1 << 6, (groups, N))}
    total = cfg.golden_total(as_signed(a), b, acc_bits=None, meta=meta)
    out = cfg.golden_gemm(as_signed(a), b, acc_bits=None, meta=meta)
    for j in range(N):
        weights = (b[:, j] - meta["zp"][np.arange(K) // group, j]) if zero_point else sign_extend(b[:, j], w_bits)
        scales = [Fraction(int(s), 1 << 3) for s in meta["scale"][:, j]]
        for i in range(M):
            value, nan = ref_dot(a[i], weights, fmt_name, align_bits, lanes, scales, group)
            fixed = value / Fraction(2) ** (cfg.lsb_exp - 3)
            assert fixed.denominator == 1 and total[i, j] == fixed.numerator
            assert out[i, j] == math.floor(value / Fraction(2) ** cfg.lsb_exp)
            assert to_fp32(total[i, j], cfg.lsb_exp - 3, nan) == ref_fp32(value, nan)


def test_corners_by_hand():
    fp16 = float_format("fp16")
    c = corner_codes(fp16)
    # ±0 and the smallest subnormal (2**-24) with align_bits 12: the LSB is 2**-24, exact.
    a, shift, nan = align_beats([c["+0"], c["-0"], c["min subnormal"], c["max subnormal"]], fp16, 12, 4)
    assert a.tolist() == [[0, 0, 1, 1023]] and shift.tolist() == [0] and not nan[0]
    assert lsb_exp(fp16, 12) == -24
    # 65504 = 2047 * 2**5 next to 1.0: the beat shift is 29, one keeps 2047 >> 15 = 0 quanta.
    a, shift, _ = align_beats([c["max"], c["one"], c["-max"]], fp16, 12, 3)
    assert a.tolist() == [[2047, 0, -2047]] and shift.tolist() == [29]
    assert Fraction(2047) * 2 ** 29 * Fraction(2) ** -24 == 65504
    # align_bits 5 truncates the largest lane too: 65504 -> floor(2047 / 2**7) = 15 quanta.
    assert align_beats([c["-max"]], fp16, 5, 1)[0].tolist() == [[-15]]
    # Inf / NaN count as zero and flag the beat; they do not take part in the maximum.
    a, shift, nan = align_beats([c["inf"], c["one"], c["nan"], 0], fp16, 12, 4)
    assert a.tolist() == [[0, 1024, 0, 0]] and shift.tolist() == [14] and nan.tolist() == [True]
    # FP32 output: 1 x 2**-24, the largest sum, and the NaN flag.
    assert to_fp32(1, -24) == 0x33800000 and to_fp32(0, -24) == 0 and to_fp32(5, -24, True) == 0x7FC00000
    assert to_fp32(-(1 << 24) - 1, 0) == 0xCB800000  # 2**24 + 1 ties to even: 2**24


def test_fp32_rounding_subnormal_and_overflow():
    assert to_fp32(3, -150) == 0x00000002  # 1.5 * 2**-149 ties to even: 2 * 2**-149
    assert to_fp32(1, -150) == 0  # 0.5 * 2**-149 ties to even: +0
    assert to_fp32((1 << 24) - 1, 104) == 0x7F7FFFFF  # the largest finite FP32
    assert to_fp32((1 << 25) - 1, 103) == 0x7F800000  # rounds past it: +Inf
    for x, e in [(3, -150), (12345678901, -160), (-(1 << 40) + 7, 60), (987654321, -140)]:
        assert to_fp32(x, e) == ref_fp32(Fraction(x) * Fraction(2) ** e, False)


def test_configs_validate_and_describe_their_formats():
    cfg = FpBitSerialConfig()
    assert (cfg.a_format, cfg.a_bits, cfg.cell_a_bits, cfg.lsb_exp) == ("fp16", 16, 12, -24)
    assert cfg.acc_bits == cfg.dot_bits + 8 + 29 and cfg.beat_cycles(8) == 4
    assert FpBitSerialConfig(a_float="bf16").beat_shift == 253
    mixed = FpMixedConfig()
    assert (mixed.a_format, mixed.a_bits, mixed.cell_a_bits, mixed.ws_edge_stages) == ("fp16", 16, 12, 1)
    with pytest.raises(ValueError, match=r"FpBitSerialConfig\.a_float='fp8' is not allowed"):
        FpBitSerialConfig(a_float="fp8")
    with pytest.raises(ValueError, match=r"FpMixedConfig\.align_bits=2 is out of range"):
        FpMixedConfig(align_bits=2)
    with pytest.raises(ValueError, match=r"FpBitSerialConfig\.a_bits=8 is not allowed"):
        FpBitSerialConfig(a_bits=8)


def test_error_statistics_shrink_with_align_bits():
    rows = alignment_error(align_bits=(6, 10, 14), trials=20, k=64, seed=3)
    norms = [row["mean_norm"] for row in rows]
    assert norms[0] > norms[1] > norms[2] > 0
    # truncation of a lane loses less than one quantum 2**(emax + 1 - q) <= 2**(2 - q) * |max lane|
    for row in rows:
        assert row["max_norm"] < 2.0 ** (2 - (row["align_bits"] - 1)) and 0 <= row["exact"] <= 1


@pytest.mark.parametrize("cfg", [FpBitSerialConfig(lanes=4, max_accumulations=64), FpBitSerialConfig(a_float="bf16"),
                                 FpMixedConfig(lanes=4, group=16, max_groups=16),
                                 FpMixedConfig(lanes=4, group=8, max_groups=4, zero_point=False, align_bits=16)])
def test_accumulator_holds_max_reduction_worst_products(cfg):
    """max_reduction products of the largest finite activations and the most negative weights
    (the largest zero point and scale for fpmixed) do not wrap the accumulator."""
    fmt = cfg.fmt
    K = cfg.max_reduction
    a = np.full((1, K), fmt.max_code(True))
    if isinstance(cfg, FpMixedConfig):
        w_max = (1 << cfg.w_bits) - 1
        b = np.full((K, 1), 0 if cfg.zero_point else 1 << cfg.w_bits - 1)
        groups = -(-K // cfg.group)
        meta = {"zp": np.full((groups, 1), w_max), "scale": np.full((groups, 1), (1 << cfg.scale_bits) - 1)}
        wrapped = cfg.golden_total(as_signed(a), b, acc_bits=cfg.acc_bits, meta=meta)
        exact = cfg.golden_total(as_signed(a), b, acc_bits=None, meta=meta)
    else:
        b = np.full((K, 1), 1 << cfg.max_w_bits - 1)
        wrapped = cfg.golden_gemm(as_signed(a), b, acc_bits=cfg.acc_bits)
        exact = cfg.golden_gemm(as_signed(a), b, acc_bits=None)
    assert wrapped[0, 0] == exact[0, 0] > 0
    assert exact[0, 0] < 1 << cfg.acc_bits - 1 <= 2 * exact[0, 0] * (K + 2 * cfg.lanes) // K  # and it nearly fills it


@pytest.mark.parametrize("cfg, floor", [
    (FpBitSerialConfig(), 256 * 16), (FpBitSerialConfig(lanes=3, max_accumulations=5, max_w_bits=3), 5 * 3),
    (FpBitSerialConfig(a_float="bf16", rescale=True, max_shift=15), 256 * 16),
    (FpMixedConfig(), 128 * 64), (FpMixedConfig(lanes=2, group=8, max_groups=4, w_bits=3), 8 * 4)])
def test_max_reduction_is_at_least_the_declared_bound(cfg, floor):
    """The widths guarantee max_accumulations dot products (max_groups groups), with at most
    one spare bit: a parameter is a floor, not a guess."""
    assert floor <= cfg.max_reduction < 8 * floor
