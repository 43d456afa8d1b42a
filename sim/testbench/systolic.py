"""SystolicArray testbench: whole GEMMs of random and corner shapes (M, K, N not multiples of the
array, K = 1, M = 1), corner values, streamed back to back; every output row is checked against
the golden GEMM and its cycle against :meth:`SystolicConfig.outputs`; then a reset mid-GEMM.

What differs by PE comes from the PE's testbench module (``peforge.sim.testbench.<kind>``),
which provides:

``array_code_range(pe) -> (lo, hi)``
    the range of random weight codes on the array port;
``array_meta(pe, rng, K, N, w_bits) -> (meta, w_bits)``
    random per-column metadata (a dict of arrays, as :func:`~peforge.hw.systolic.systolic_gemm`
    takes it) and the run-time precision to send (``w_bits`` as asked, or chosen);
``array_constant(pe, K, N, corner) -> (code, meta, w_bits)``
    one weight code and metadata for the corners ``"most negative"`` (with the most negative
    activation: the largest products), ``"max"``, ``"zero"`` and ``"blank"`` (zero metadata too);
``array_jobs(pe, stim, M, K, N) -> [(label, [Gemm])]``
    the PE's own corner jobs (e.g. every run-time precision);
``array_fields(pe, gemm, index, beat, rng, cols) -> dict``
    the PE's fields of input beat ``index`` (a :class:`~peforge.hw.systolic.PlanBeat`): column
    metadata of the weights it carries, the precision on the first beat, garbage elsewhere.

and optionally (defaults: signed integers of ``a_bits``, uniform over the code ranges):

``array_act_range(pe) -> (lo, hi)``
    the range of activation codes (garbage, the corners' extremes);
``array_random(pe, rng, M, K, N) -> (a, b)``
    the operands of a random GEMM (e.g. a float PE's codes of random values).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...hw.systolic import SystolicConfig, systolic_gemm
from ..bench import drive_stream, reset_during
from ..layouts import pack
from . import Job, Report, run_job, testbench_module


@dataclass
class Gemm:
    """One GEMM as the caller holds it: activations, weight codes, column metadata, precision."""

    a: np.ndarray  # M x K
    b: np.ndarray  # K x N codes
    meta: dict[str, np.ndarray] = field(default_factory=dict)  # per-column metadata, as the PE's golden takes it
    w_bits: int | None = None  # run-time precision as sent (may be out of range; None: the PE has none)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.a.shape[1], self.b.shape[1]


class Stimulus:
    """Random and corner-case GEMMs for one config."""

    def __init__(self, cfg: SystolicConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        self.pe_bench = testbench_module(cfg.pe)
        act_range = getattr(self.pe_bench, "array_act_range", None)
        self.a_min, self.a_max = (act_range(cfg.pe_config) if act_range
                                  else (-(1 << cfg.a_bits - 1), (1 << cfg.a_bits - 1) - 1))
        self.w_min, self.w_max = self.pe_bench.array_code_range(cfg.pe_config)

    def random(self, M: int, K: int, N: int, w_bits: int | None = None) -> Gemm:
        cfg, rng = self.cfg, self.rng
        draw = getattr(self.pe_bench, "array_random", None)
        if draw:
            g = Gemm(*draw(cfg.pe_config, rng, M, K, N))
        else:
            g = Gemm(rng.integers(self.a_min, self.a_max + 1, (M, K)),
                     rng.integers(self.w_min, self.w_max + 1, (K, N)))
        g.meta, g.w_bits = self.pe_bench.array_meta(cfg.pe_config, rng, K, N, w_bits)
        return g

    def constant(self, M: int, K: int, N: int, a: int, corner: str) -> Gemm:
        code, meta, w_bits = self.pe_bench.array_constant(self.cfg.pe_config, K, N, corner)
        return Gemm(np.full((M, K), a), np.full((K, N), code), meta, w_bits)

    def random_shape(self) -> tuple[int, int, int]:
        cfg, rng = self.cfg, self.rng
        return (int(rng.integers(1, min(cfg.max_m, 2 * cfg.rows + 3) + 1)),
                int(rng.integers(1, min(cfg.max_k, 3 * cfg.k_per_fold + 2) + 1)),
                int(rng.integers(1, min(cfg.max_n, 2 * cfg.cols + 2) + 1)))

    def corners(self) -> list[tuple[str, list[Gemm]]]:
        cfg = self.cfg
        R, C, Kf = cfg.rows, cfg.cols, cfg.k_per_fold
        M, K, N = min(cfg.max_m, R + 1), min(cfg.max_k, Kf + 1), min(cfg.max_n, C + 1)
        jobs = [
            ("most negative a and w", [self.constant(M, K, N, self.a_min, "most negative")]),
            ("all max", [self.constant(M, K, N, self.a_max, "max")]),
            ("zero", [self.constant(M, K, N, 0, "zero"), self.constant(1, 1, 1, self.a_min, "blank")]),
            ("one element (M = K = N = 1)", [self.random(1, 1, 1)]),
            ("K = 1", [self.random(M, 1, N)]),
            ("M = 1", [self.random(1, K, N)]),
            ("exact multiples", [self.random(min(cfg.max_m, 2 * R), min(cfg.max_k, 2 * Kf), min(cfg.max_n, 2 * C))]),
        ]
        return jobs + self.pe_bench.array_jobs(cfg.pe_config, self, M, K, N)


def golden(cfg: SystolicConfig, g: Gemm) -> np.ndarray:
    return systolic_gemm(g.a, g.b, cfg.pe_config, acc_bits=cfg.acc_bits, w_bits=g.w_bits, meta=g.meta, rows=cfg.rows,
                         dataflow=cfg.dataflow)


def _pick(matrix: np.ndarray, index, garbage: np.ndarray) -> list[list[int]]:
    """``matrix[rows, cols]`` where in range, else the garbage (the block must ignore it)."""
    rows, cols = index
    inside = (rows < matrix.shape[0]) & (cols < matrix.shape[1])
    values = np.where(inside, matrix[np.minimum(rows, matrix.shape[0] - 1), np.minimum(cols, matrix.shape[1] - 1)],
                      garbage)
    return [[int(x) for x in line] for line in values]


def beats_of(cfg: SystolicConfig, g: Gemm, rng: np.random.Generator, stim: Stimulus) -> list[int]:
    """The GEMM as input beats in plan order; padding lanes and later beats' shape fields hold garbage."""
    layout = cfg.in_layout()
    M, K, N = g.shape
    R, C, L = cfg.rows, cfg.cols, cfg.lanes
    beats = []
    for index, beat in enumerate(cfg.plan(M, K, N)):
        fields = {
            "a": _pick(g.a, beat.a, rng.integers(stim.a_min, stim.a_max + 1, (R, L)))
            if beat.a else rng.integers(stim.a_min, stim.a_max + 1, (R, L)).tolist(),
            "w": _pick(g.b, beat.w, rng.integers(stim.w_min, stim.w_max + 1, (C, L)))
            if beat.w else rng.integers(stim.w_min, stim.w_max + 1, (C, L)).tolist(),
        }
        shape = (M, K, N) if index == 0 else (int(rng.integers(1, cfg.max_m + 1)), int(rng.integers(1, cfg.max_k + 1)),
                                              int(rng.integers(1, cfg.max_n + 1)))
        fields.update(m=shape[0], k=shape[1], n=shape[2])
        fields.update(stim.pe_bench.array_fields(cfg.pe_config, g, index, beat, rng, C))
        beats.append(pack(layout, fields))
    return beats


def make_job(cfg: SystolicConfig, label: str, gemms: list[Gemm], rng: np.random.Generator, stim: Stimulus) -> Job:
    """GEMMs back to back: each beat must be taken exactly when the plan says (no idle cycle)."""
    beats, intervals, spans, results, cycles = [], [], [], [], []
    previous_cycles = previous_last_beat = 0  # of the GEMM before, once there is one
    for g in gemms:
        M, K, N = g.shape
        T = cfg.beat_cycles(g.w_bits)
        plan = cfg.plan(M, K, N)
        outs = cfg.outputs(M, K, N, g.w_bits)
        if intervals:  # the previous GEMM's last beat to this one's first
            intervals[-1] = previous_cycles - previous_last_beat
        first = len(beats)
        beats += beats_of(cfg, g, rng, stim)
        intervals += [(b.beat - a.beat) * T for a, b in zip(plan, plan[1:])] + [0]
        product = golden(cfg, g)
        for n_out, out in enumerate(outs):
            row = [int(product[out.row, out.col0 + c]) if out.col0 + c < N else 0 for c in range(cfg.cols)]
            spans.append(first)
            results.append((tuple(row), n_out == len(outs) - 1))
            cycles.append(out.cycle)
        previous_cycles, previous_last_beat = outs[-1].cycle, plan[-1].beat * T
    return Job(label, beats, intervals, spans, results, cycles)


def decoder(cfg: SystolicConfig):
    layout = cfg.out_layout()

    def decode(bits: int):
        view = layout.from_bits(bits)
        return tuple(int(view.acc[c]) for c in range(cfg.cols)), bool(view.last)
    return decode


async def run(bench, cfg: SystolicConfig, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    report = Report("systolic")
    decode = decoder(cfg)
    stim = Stimulus(cfg, rng)
    await bench.reset()
    for label, gemms in stim.corners():
        await run_job(bench, report, make_job(cfg, label, gemms, rng, stim), decode)
    shapes = [stim.random_shape() for _ in range(8)]
    await run_job(bench, report, make_job(cfg, "random shapes back to back", [stim.random(*s) for s in shapes],
                                          rng, stim), decode)

    # Reset in the middle of a GEMM: nothing of it may reach the next one.
    interrupted = beats_of(cfg, stim.random(*stim.random_shape()), rng, stim)
    await reset_during(bench, interrupted, cycles=min(3, len(interrupted)))
    await run_job(bench, report, make_job(cfg, "after reset", [stim.random(*stim.random_shape())], rng, stim), decode)
    return report


async def run_shapes(bench, cfg: SystolicConfig, seed: int, shapes) -> Report:
    """Random GEMMs of the given shapes, one job each, every output row checked (golden value,
    cycle of :meth:`SystolicConfig.outputs`); what the cocotb spec's ``shapes`` runs.

    ``shapes``: mappings with ``m``, ``k``, ``n``, optionally ``w_bits`` (run-time precision;
    absent: the PE's testbench picks) and ``totals`` (``{source: cycles}``: a GEMM total claimed
    by a formula, e.g. the cost model's, from the first accepted beat to the last output row).
    Each total must equal the schedule's last row, which the run measures, so a claimed total
    passes only if it equals the measured cycle.
    """
    rng = np.random.default_rng(seed)
    report = Report("systolic")
    decode = decoder(cfg)
    stim = Stimulus(cfg, rng)
    await bench.reset()
    for shape in shapes:
        M, K, N, w_bits = shape["m"], shape["k"], shape["n"], shape.get("w_bits")
        label = f"{M}x{K}x{N}" + ("" if w_bits is None else f" w{w_bits}")
        job = make_job(cfg, label, [stim.random(M, K, N, w_bits)], rng, stim)
        for source, total in shape.get("totals", {}).items():
            report.expect(f"{label}: total by {source}", total, job.cycles[-1])
        await run_job(bench, report, job, decode)
    return report


async def activity(bench, cfg: SystolicConfig, seed: int, n_ops: int) -> int:
    """One random GEMM of about ``n_ops`` activation rows through full folds; returns the MACs done."""
    rng = np.random.default_rng(seed)
    stim = Stimulus(cfg, rng)
    M = max(1, min(cfg.max_m, n_ops))
    K, N = min(cfg.max_k, cfg.rows * cfg.lanes), min(cfg.max_n, cfg.cols)
    g = stim.random(M, K, N, cfg.pe_config.max_w_bits)  # at full precision, as the standalone PE's record
    job = make_job(cfg, "activity", [g], rng, stim)
    await bench.reset()
    await drive_stream(bench, job.beats, len(job.results))
    return M * K * N
