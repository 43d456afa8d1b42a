"""The fpmac golden model (integer, bit-level) against an independent reference written with exact
rationals: values decoded by ml_dtypes, the window and the sum in ``fractions.Fraction``, the one
rounding by :func:`peforge.hw.fp.encode`. Random beats per input format (20,000 at lanes 1, 100,000 with ``--slow``;
fewer at lanes 4), the corners, hand-checked values, and the exactly rounded sum where the window
holds every term."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from peforge.hw.fp import encode, float_format
from peforge.hw.pe.fpmac import ACC_FORMATS, INPUT_FORMATS, FpMacConfig, approx_error_stats, fp_beat, fp_dot

DTYPES = {"bf16": ml_dtypes.bfloat16, "fp16": np.float16, "e4m3": ml_dtypes.float8_e4m3fn,
          "e5m2": ml_dtypes.float8_e5m2, "fp32": np.float32}
UINTS = {8: np.uint8, 16: np.uint16, 32: np.uint32}


def values(name: str, codes) -> np.ndarray:
    """Float64 values of ``codes`` of format ``name``, by ml_dtypes (exact: every value fits)."""
    bits = float_format(name).bits
    with np.errstate(invalid="ignore"):  # NaN codes
        return np.asarray(codes, dtype=np.int64).astype(UINTS[bits]).view(DTYPES[name]).astype(np.float64)


def codes_of(name: str, x) -> np.ndarray:
    """Codes of format ``name`` nearest to float64 ``x`` (ml_dtypes' round to nearest even)."""
    bits = float_format(name).bits
    with np.errstate(over="ignore", invalid="ignore"):  # out of range: Inf (E4M3: NaN)
        return np.asarray(x, dtype=np.float64).astype(DTYPES[name]).view(UINTS[bits]).astype(np.int64)


class Reference:
    """One beat ``round(c + Σ a·w)`` from the arithmetic's definition, in rationals."""

    def __init__(self, cfg: FpMacConfig):
        self.cfg = cfg
        fi, fc = ml_dtypes.finfo(DTYPES[cfg.fmt]), ml_dtypes.finfo(DTYPES[cfg.acc])
        self.p_in, self.p_acc = fi.nmant + 1, fc.nmant + 1
        self.emin_in, self.emin_acc = fi.minexp, fc.minexp
        self.window = max(2 * self.p_in, self.p_acc) + self.p_acc + 3
        self.sum_bits = self.window + cfg.lanes.bit_length()
        self.acc = float_format(cfg.acc)

    def _flush(self, x: float, emin: int) -> float:
        if not self.cfg.subnormals and x != 0 and abs(x) < 2.0 ** emin:
            return math.copysign(0.0, x)
        return x

    def _exponent(self, x: float, emin: int) -> int:
        return max(math.frexp(x)[1] - 1, emin)

    def beat(self, c: float, a: list[float], w: list[float]) -> int:
        cfg, acc = self.cfg, self.acc
        c = self._flush(c, self.emin_acc)
        a = [self._flush(x, self.emin_in) for x in a]
        w = [self._flush(x, self.emin_in) for x in w]
        if math.isnan(c) or any(math.isnan(x) for x in a + w):
            return acc.nan_code
        if any((math.isinf(x) and y == 0) or (x == 0 and math.isinf(y)) for x, y in zip(a, w)):
            return acc.nan_code
        infinite = [math.copysign(1, x) * math.copysign(1, y) for x, y in zip(a, w) if math.isinf(x) or math.isinf(y)]
        infinite += [math.copysign(1, c)] if math.isinf(c) else []
        if infinite:
            return acc.nan_code if len(set(infinite)) > 1 else encode(acc, float(infinite[0]) * math.inf)
        # (numerator, log2 denominator, top) of each term: |value| < 2**top
        terms = [_ratio(c) + (self._exponent(c, self.emin_acc) + 1,)]
        for x, y in zip(a, w):
            (nx, kx), (ny, ky) = _ratio(x), _ratio(y)
            terms.append((nx * ny, kx + ky, self._exponent(x, self.emin_in) + self._exponent(y, self.emin_in) + 2))
        signs = [math.copysign(1, c) < 0] + [(math.copysign(1, x) < 0) != (math.copysign(1, y) < 0)
                                              for x, y in zip(a, w)]
        tops = [top for n, _, top in terms if n]
        if not tops:
            return encode(acc, 0, negative_zero=all(signs))
        u = max(tops) - self.window  # the window's unit is 2**u
        total = sum(_truncate(n, k + u) for n, k, _ in terms)
        if total == 0:
            return encode(acc, 0)
        if not cfg.approx_norm:
            return encode(acc, Fraction(total) * Fraction(2) ** u, subnormals=cfg.subnormals)
        zeros, fine = self.sum_bits - abs(total).bit_length(), self.sum_bits - self.window + 4
        shift = zeros if zeros < fine else fine + 4 * ((zeros - fine) // 4)  # exact near the top, else groups
        quantum = Fraction(2) ** (u + self.sum_bits - shift - self.p_acc)
        rounded = round(abs(total) * Fraction(2) ** u / quantum) * quantum  # ties to even
        return encode(acc, rounded if total > 0 else -rounded, subnormals=False)

    def exact(self, c: float, a: list[float], w: list[float]) -> Fraction:
        return Fraction(c) + sum(Fraction(x) * Fraction(y) for x, y in zip(a, w))


def _ratio(x: float) -> tuple[int, int]:
    """``x`` as ``n / 2**k`` exactly."""
    n, d = x.as_integer_ratio()
    return n, d.bit_length() - 1


def _truncate(n: int, k: int) -> int:
    """``n / 2**k`` truncated toward zero."""
    if k <= 0:
        return n << -k
    return n >> k if n >= 0 else -(-n >> k)


def random_beats(cfg: FpMacConfig, n: int, rng: np.random.Generator):
    """``n`` beats (acc code, a codes, w codes): a third uniform codes (every special and subnormal),
    the rest drawn as values, half with an accumulator that cancels the products."""
    f, c = float_format(cfg.fmt), float_format(cfg.acc)
    L = cfg.lanes
    a = codes_of(cfg.fmt, rng.standard_normal((n, L)) * 2.0 ** rng.integers(-6, 7, (n, L)))
    w = codes_of(cfg.fmt, rng.standard_normal((n, L)) * 2.0 ** rng.integers(-6, 7, (n, L)))
    uniform = rng.random((n, L)) < 1 / 3
    a = np.where(uniform, rng.integers(0, 1 << f.bits, (n, L)), a)
    w = np.where(uniform, rng.integers(0, 1 << f.bits, (n, L)), w)
    with np.errstate(invalid="ignore", over="ignore"):
        dots = np.nan_to_num((values(cfg.fmt, a) * values(cfg.fmt, w)).sum(axis=1), nan=1.0, posinf=1.0,
                             neginf=-1.0)
    kind = rng.integers(0, 3, n)
    cancel = -dots * (1 + rng.standard_normal(n) * 2.0 ** rng.integers(-30, -2, n))
    scaled = rng.standard_normal(n) * 2.0 ** rng.integers(-40, 40, n)
    acc = np.where(kind == 0, rng.integers(0, 1 << c.bits, n), codes_of(cfg.acc, np.where(kind == 1, cancel, scaled)))
    return acc, a, w


def compare(cfg: FpMacConfig, acc, a, w) -> tuple[int, list[str]]:
    ref = Reference(cfg)
    cv, av, wv = values(cfg.acc, acc), values(cfg.fmt, a), values(cfg.fmt, w)
    bad = []
    for i in range(len(acc)):
        got = fp_beat(cfg, int(acc[i]), a[i].tolist(), w[i].tolist())
        want = ref.beat(float(cv[i]), av[i].tolist(), wv[i].tolist())
        if got != want:
            bad.append(f"acc={int(acc[i]):#x} a={[hex(x) for x in a[i]]} w={[hex(x) for x in w[i]]}: "
                       f"golden {got:#x}, reference {want:#x}")
    return len(acc), bad


CONFIGS = [FpMacConfig(fmt=fmt) for fmt in INPUT_FORMATS]


@pytest.mark.parametrize("beats", [20_000, pytest.param(100_000, marks=pytest.mark.slow)])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.fmt)
def test_golden_equals_reference_on_random_beats(cfg, beats):
    rng = np.random.default_rng(len(cfg.fmt) * 7 + cfg.in_format.bits + beats)
    n, bad = compare(cfg, *random_beats(cfg, beats, rng))
    assert n == beats and not bad, f"{len(bad)} mismatches: " + "; ".join(bad[:4])


VARIANTS = ([FpMacConfig(fmt=fmt, lanes=4) for fmt in INPUT_FORMATS]
            + [FpMacConfig(fmt=fmt, acc=acc, subnormals=False) for fmt in ("bf16", "e4m3") for acc in ACC_FORMATS]
            + [FpMacConfig(fmt=fmt, acc=acc, lanes=lanes, subnormals=False, approx_norm=True)
               for fmt in ("bf16", "fp16", "e5m2") for acc in ("fp32", "bf16") for lanes in (1, 3)]
            + [FpMacConfig(fmt="fp16", acc="fp16", lanes=2), FpMacConfig(fmt="fp32", acc="bf16", lanes=2)])


@pytest.mark.parametrize("cfg", VARIANTS, ids=repr)
def test_golden_equals_reference_variants(cfg):
    rng = np.random.default_rng(cfg.lanes + len(cfg.acc))
    n, bad = compare(cfg, *random_beats(cfg, 2_000, rng))
    assert not bad, f"{len(bad)} mismatches: " + "; ".join(bad[:4])


def corner_beats(cfg: FpMacConfig):
    """Signed zeros, subnormals, largest finite, NaN, Inf, a + (-a), ties, overflow to Inf."""
    f, c = float_format(cfg.fmt), float_format(cfg.acc)
    sign_f, sign_c = 1 << f.bits - 1, 1 << c.bits - 1
    one = encode(f, 1)
    specials = [0, sign_f, 1, sign_f | 1, (1 << f.man_bits) - 1, 1 << f.man_bits, f.max_code(False), f.max_code(True),
                one, one | sign_f, f.nan_code, f.nan_code | sign_f]
    if f.has_inf:
        specials += [f.inf_code(False), f.inf_code(True)]
    accs = [0, sign_c, 1, c.max_code(False), c.max_code(True), encode(c, 1), encode(c, -1), c.nan_code]
    accs += [c.inf_code(False), c.inf_code(True)]
    beats = [(x, [y], [z]) for x in accs for y in specials for z in specials]
    # 1 + 2**-p_acc and its neighbours: ties to even in the accumulator
    for k in range(1, 5):
        tiny = encode(f, Fraction(2) ** (-c.precision)) if f.emin <= -c.precision else 1
        beats.append((encode(c, 1 + Fraction(k - 1, 2 ** (c.precision - 1))), [tiny], [one]))
    return [(acc, a, w) for acc, a, w in beats]


@pytest.mark.parametrize("cfg", CONFIGS + [FpMacConfig(fmt="e4m3", acc="fp16", subnormals=False),
                                           FpMacConfig(fmt="bf16", acc="bf16", subnormals=False, approx_norm=True)],
                         ids=repr)
def test_golden_equals_reference_on_corners(cfg):
    beats = corner_beats(cfg)
    acc = np.array([b[0] for b in beats])
    a = np.array([b[1] for b in beats])
    w = np.array([b[2] for b in beats])
    n, bad = compare(cfg, acc, a, w)
    assert n > 1000 and not bad, f"{len(bad)} mismatches: " + "; ".join(bad[:4])


def bf(x) -> int:
    return encode(float_format("bf16"), Fraction(x))


def test_hand_values():
    cfg = FpMacConfig()  # bf16 x bf16 into fp32
    tiny = bf(Fraction(1, 1 << 24))
    assert fp_beat(cfg, 0x3F800000, [bf(1)], [tiny]) == 0x3F800000  # 1 + 2**-24: a tie, to even (down)
    assert fp_beat(cfg, 0x3F800001, [bf(1)], [tiny]) == 0x3F800002  # 1 + 2**-23 + 2**-24: a tie, to even (up)
    assert fp_beat(cfg, 0x3F800000, [bf(-1)], [bf(1)]) == 0  # a + (-a) = +0
    assert fp_beat(cfg, 0x80000000, [bf(-1)], [0]) == 0x80000000  # -0 + (-1 x +0) = -0
    assert fp_beat(cfg, 0x00000000, [bf(-1)], [0]) == 0  # +0 + -0 = +0
    assert fp_beat(cfg, 0x3F800000, [0x7F80], [0]) == 0x7FC00000  # Inf x 0 = NaN
    assert fp_beat(cfg, 0xFF800000, [0x7F80], [bf(1)]) == 0x7FC00000  # -Inf + Inf = NaN
    assert fp_beat(cfg, 0x3F800000, [0xFF80], [bf(2)]) == 0xFF800000  # Inf propagates with its sign
    assert fp_beat(cfg, 0x7F7FFFFF, [0x7F7F], [bf(1)]) == 0x7F800000  # max + max: overflow to Inf
    assert fp_dot(cfg, [bf(1.5), bf(2)], [bf(2), bf(-0.25)]) == 0x40200000  # 3 - 0.5 = 2.5
    e4m3 = FpMacConfig(fmt="e4m3")
    assert fp_beat(e4m3, 0x80000000, [0x7E], [0x7E]) == encode(float_format("fp32"), 448 * 448)
    assert fp_beat(e4m3, 0, [0x7F], [0x38]) == 0x7FC00000 and fp_beat(e4m3, 0, [0xFF], [0]) == 0x7FC00000
    flush = FpMacConfig(subnormals=False)
    assert fp_beat(flush, 0x80000000, [0x0001], [bf(1)]) == 0  # the subnormal input is +0
    assert fp_beat(FpMacConfig(), 0x80000000, [0x0001], [bf(1)]) == encode(float_format("fp32"), Fraction(2) ** -133)


@pytest.mark.parametrize("cfg", [FpMacConfig(fmt=fmt, lanes=lanes) for fmt in INPUT_FORMATS for lanes in (1, 4)],
                         ids=repr)
def test_exactly_rounded_when_the_window_holds_every_term(cfg):
    """Terms within D = p_acc + 3 bits below the largest: golden = encode(exact sum)."""
    rng = np.random.default_rng(3)
    ref = Reference(cfg)
    acc, a, w = random_beats(cfg, 3_000, rng)
    cv, av, wv = values(cfg.acc, acc), values(cfg.fmt, a), values(cfg.fmt, w)
    checked = 0
    for i in range(len(acc)):
        x, y, z = float(cv[i]), av[i].tolist(), wv[i].tolist()
        if not all(math.isfinite(v) for v in [x] + y + z):
            continue
        terms = [(Fraction(x), ref._exponent(x, ref.emin_acc) + 1)]
        terms += [(Fraction(s) * Fraction(t), ref._exponent(s, ref.emin_in) + ref._exponent(t, ref.emin_in) + 2)
                  for s, t in zip(y, z)]
        tops = [top for value, top in terms if value]
        if not tops or any((value / Fraction(2) ** (max(tops) - ref.window)).denominator != 1 for value, _ in terms):
            continue
        exact = ref.exact(x, y, z)
        if exact == 0:
            continue
        checked += 1
        assert fp_beat(cfg, int(acc[i]), a[i].tolist(), w[i].tolist()) == encode(ref.acc, exact), (acc[i], a[i], w[i])
    assert checked > 300


def test_approx_norm_error_is_small_but_not_zero():
    """Exact but where terms cancel by more than 4 bits: then a few bits of a bf16 sum are lost."""
    stats = approx_error_stats("bf16", "bf16", length=32, cases=400)
    assert 0 < stats["mean_rel"] < 2 ** -12 and 0 < stats["max_ulps"] <= 8
    assert 0.9 < stats["exact_fraction"] < 1


def test_approx_norm_needs_flushed_subnormals():
    with pytest.raises(ValueError, match=r"^FpMacConfig.approx_norm=True needs subnormals=false"):
        FpMacConfig(approx_norm=True)
    with pytest.raises(ValueError, match=r"FpMacConfig.fmt='fp8' is not allowed"):
        FpMacConfig(fmt="fp8")
    assert FpMacConfig().a_format == FpMacConfig().w_format == "bf16"


def test_figures_by_hand():
    cfg = FpMacConfig(fmt="e4m3", lanes=4, output_register=True)
    fig = cfg.figures()
    assert (fig.lanes, fig.a_bits, fig.max_w_bits, fig.k_bits, fig.ws_edge_stages) == (4, 8, 8, 0, 0)
    assert (fig.a_format, fig.w_format, cfg.acc_bits, cfg.out_bits) == ("e4m3", "e4m3", 32, 32)
    assert fig.max_reduction == 2 ** 62 and cfg.beat_cycles(8) == 1
    assert cfg.cycles(5) == 6 and cfg.os_latency() == 2  # accumulate, output register
    # bf16 x bf16 into fp32: products of 16 bits, W = 24 + (24 + 3), Ws = W + 1 (two terms)
    spec = FpMacConfig().beat_spec()
    assert (spec.term_bits, spec.guard, spec.window, spec.sum_bits) == (24, 27, 51, 52)
