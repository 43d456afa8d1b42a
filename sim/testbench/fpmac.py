"""FpMacPE testbench: dot products of corner codes (signed zeros, subnormals, largest finite, NaN,
Inf, cancellation, ties, overflow to Inf) and of random values, streamed back to back; a reset in
the middle of a dot product; the array testbench's hooks (random values, a few specials)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ...hw.fp import FloatFormat, encode
from ...hw.pe.fpmac import FpMacConfig, fp_dot, value_codes
from ..bench import drive_stream, reset_during
from ..layouts import pack, unpack
from . import Job, Report, run_job


def random_values(f: FloatFormat, rng: np.random.Generator, shape, spread: int = 4) -> np.ndarray:
    """Codes of normal(0, 1) values scaled by 2**[-spread, spread]: finite, results meaningful
    (no overflow of the smallest formats over short dot products)."""
    values = rng.standard_normal(shape) * 2.0 ** rng.integers(-spread, spread + 1, shape)
    return value_codes(f, values)


def random_beats(cfg: FpMacConfig, rng: np.random.Generator, n: int) -> list[tuple[int, list[int], list[int]]]:
    """``n`` single beats ``(acc code, a codes, w codes)`` for the datapath alone: a quarter any
    codes (specials, subnormals), the rest values; the accumulator any code, a value, or the
    negated sum of the products (cancellation)."""
    from ...hw.fp import decode

    f, c, L = cfg.in_format, cfg.acc_format, cfg.lanes
    a, w = random_values(f, rng, (n, L)), random_values(f, rng, (n, L))
    uniform = rng.random((n, L)) < 1 / 4
    a = np.where(uniform, rng.integers(0, 1 << f.bits, (n, L)), a)
    w = np.where(uniform, rng.integers(0, 1 << f.bits, (n, L)), w)
    beats = []
    for i in range(n):
        kind = int(rng.integers(0, 3))
        if kind == 0:
            acc = int(rng.integers(0, 1 << c.bits))
        else:
            value = float(rng.standard_normal() * 2.0 ** int(rng.integers(-20, 21)))
            if kind == 2:
                terms = [decode(f, int(x)) * decode(f, int(y)) for x, y in zip(a[i], w[i])]
                if all(isinstance(t, Fraction) for t in terms):
                    value = -float(sum(terms)) * (1 + value * 2.0 ** -30)
            acc = int(value_codes(c, [value])[0])
        beats.append((acc, a[i].tolist(), w[i].tolist()))
    return beats


def corner_codes(f: FloatFormat) -> dict[str, int]:
    """Named corner codes of format ``f``."""
    sign = 1 << f.bits - 1
    codes = {"+0": 0, "-0": sign, "min subnormal": 1, "-max subnormal": sign | (1 << f.man_bits) - 1,
             "min normal": 1 << f.man_bits, "max": f.max_code(False), "-max": f.max_code(True),
             "1": encode(f, 1), "-1": encode(f, -1), "NaN": f.nan_code, "-NaN": f.nan_code | sign}
    if f.has_inf:
        codes.update({"Inf": f.inf_code(False), "-Inf": f.inf_code(True)})
    return codes


def dot_products(cfg: FpMacConfig, rng: np.random.Generator) -> list[tuple[str, list[tuple[np.ndarray, np.ndarray]]]]:
    """Labelled groups of dot products ``(a, w)`` (code arrays of ``beats × lanes``)."""
    f, L = cfg.in_format, cfg.lanes
    c = corner_codes(f)

    def full(n, a, w):
        return np.full((n, L), a), np.full((n, L), w)

    groups = [
        ("signed zeros", [full(1, c["+0"], c["-0"]), full(2, c["-0"], c["1"]), full(1, c["-0"], c["-0"])]),
        ("subnormals", [full(3, c["min subnormal"], c["1"]), full(2, c["-max subnormal"], c["max"])]),
        ("largest finite, overflow to Inf", [full(1, c["max"], c["max"]), full(6, c["max"], c["1"]),
                                             full(4, c["-max"], c["max"])]),
        ("NaN", [full(1, c["NaN"], c["1"]), full(3, c["1"], c["-NaN"])]),
        ("cancellation", [(np.array([[c["1"]] * L, [c["-1"]] * L]), np.full((2, L), c["1"]))]),
    ]
    if f.has_inf:
        groups.append(("Inf", [full(1, c["Inf"], c["+0"]), full(2, c["Inf"], c["1"]),
                               (np.array([[c["Inf"]] * L, [c["-Inf"]] * L]), np.full((2, L), c["1"]))]))
    # 1 + tiny: ties to even in the accumulator
    tiny = encode(f, Fraction(2) ** max(-cfg.acc_format.precision, f.emin - f.man_bits))
    groups.append(("ties", [(np.array([[c["1"]] * L, [tiny] * L, [tiny] * L]), np.full((3, L), c["1"]))]))
    randoms = []
    for _ in range(24):
        n = int(rng.integers(1, 17))
        randoms.append((random_values(f, rng, (n, L)), random_values(f, rng, (n, L))))
    randoms.append((rng.integers(0, 1 << f.bits, (4, L)), rng.integers(0, 1 << f.bits, (4, L))))  # any code
    groups.append(("random", randoms))
    return groups


def make_job(cfg: FpMacConfig, label: str, dots) -> Job:
    layout = cfg.in_layout()
    beats, intervals, spans, results, cycles = [], [], [], [], []
    for a, w in dots:
        spans.append(len(beats))
        n = len(a)
        for i in range(n):
            beats.append(pack(layout, {"a": [int(x) for x in a[i]], "w": [int(x) for x in w[i]],
                                       "first": i == 0, "last": i == n - 1}))
            intervals.append(1)
        results.append(fp_dot(cfg, np.ravel(a).tolist(), np.ravel(w).tolist()))
        cycles.append(cfg.cycles(n))
    return Job(label, beats, intervals, spans, results, cycles)


async def run(bench, cfg: FpMacConfig, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    report = Report("fpmac")
    out = cfg.out_layout()
    decode = lambda bits: unpack(out, bits, "acc")
    await bench.reset()
    for label, dots in dot_products(cfg, rng):
        await run_job(bench, report, make_job(cfg, label, dots), decode)

    # Reset in the middle of a dot product: the partial sum must not leak into the next one.
    f, L = cfg.in_format, cfg.lanes
    big = [f.max_code(False)] * L
    layout = cfg.in_layout()
    await reset_during(bench, [pack(layout, {"a": big, "w": big, "first": 1, "last": 0})], cycles=1)
    one = encode(f, 1)
    await run_job(bench, report, make_job(cfg, "after reset", [(np.full((2, L), one), np.full((2, L), one))]), decode)
    return report


async def activity(bench, cfg: FpMacConfig, seed: int, n_ops: int) -> int:
    """``n_ops`` random dot products of 16 beats, back to back; returns the MACs done."""
    rng = np.random.default_rng(seed)
    f, L = cfg.in_format, cfg.lanes
    dots = [(random_values(f, rng, (16, L)), random_values(f, rng, (16, L))) for _ in range(n_ops)]
    job = make_job(cfg, "activity", dots)
    await bench.reset()
    await drive_stream(bench, job.beats, len(job.results))
    return 16 * L * n_ops


# --- hooks of the array testbench (peforge.sim.testbench.systolic) ---------------------------------


def array_code_range(pe: FpMacConfig) -> tuple[int, int]:
    """Any code (garbage in padding lanes may be NaN: the array must ignore it)."""
    return 0, (1 << pe.w_bits) - 1


def array_act_range(pe: FpMacConfig) -> tuple[int, int]:
    """Positive finite codes: +0 to the largest. Activations stay finite: a padding column's
    zero weights times a finite activation sum to +0, the 0 the array reads there."""
    return 0, pe.in_format.max_code(False)


def array_random(pe: FpMacConfig, rng: np.random.Generator, M: int, K: int, N: int):
    """Random GEMM operands as values (finite, spread over 2**±4); one weight in 50 a NaN, ±Inf
    or largest-finite code."""
    f = pe.in_format
    a, b = random_values(f, rng, (M, K)), random_values(f, rng, (K, N))
    specials = [f.nan_code, f.max_code(True)] + ([f.inf_code(False), f.inf_code(True)] if f.has_inf else [])
    hit = rng.random(b.shape) < 1 / 50
    b[hit] = rng.choice(specials, int(hit.sum()))
    return a, b


def array_meta(pe: FpMacConfig, rng: np.random.Generator, K: int, N: int, w_bits):
    return {}, None


def array_constant(pe: FpMacConfig, K: int, N: int, corner: str):
    """Weight codes for the generic corners: -max (with the activation +0: signed zero products),
    the largest finite (with the largest activation: the sums overflow to Inf), +0 for the zeros."""
    f = pe.in_format
    return {"most negative": f.max_code(True), "max": f.max_code(False), "zero": 0, "blank": 0}[corner], {}, None


def array_jobs(pe: FpMacConfig, stim, M: int, K: int, N: int) -> list:
    """Special weights (NaN, Inf: NaN from Inf x 0), cancelling pairs, signed zeros."""
    from .systolic import Gemm

    f = pe.in_format
    one, neg = encode(f, 1), encode(f, -1)
    cancel = np.tile([one, neg], -(-K // 2))[:K]
    special = f.inf_code(True) if f.has_inf else f.nan_code
    return [
        ("special weights", [Gemm(np.tile([0, one], (M, -(-K // 2)))[:, :K], np.full((K, N), special))]),
        ("cancellation", [Gemm(np.tile(cancel, (M, 1)), np.full((K, N), one))]),
        ("negative zeros", [Gemm(np.full((M, K), 1 << f.bits - 1), np.full((K, N), one))]),
    ]


def array_fields(pe: FpMacConfig, gemm, index: int, beat, rng: np.random.Generator, cols: int) -> dict:
    return {}
