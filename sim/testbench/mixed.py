"""MixedPE testbench: quantization groups of random and corner-case weights, zero points and
scales, results spanning several groups, an early ``last``, overflow edges and reset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...arith import ceil_div
from ...hw.pe.mixed import A_BITS, MixedConfig, mixed_group, mixed_result
from ..bench import drive_stream, reset_during
from ..layouts import pack, unpack
from . import Job, Report, run_job

A_MIN, A_MAX = -(1 << A_BITS - 1), (1 << A_BITS - 1) - 1


@dataclass
class Group:
    """One quantization group: ``a`` and ``codes`` of shape (beats, lanes), its zero point and scale."""

    a: np.ndarray
    codes: np.ndarray
    zp: int
    scale: int


class Stimulus:
    def __init__(self, cfg: MixedConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        self.shape = (cfg.ops_per_group, cfg.lanes)

    def random_group(self, beats: int | None = None) -> Group:
        cfg, rng = self.cfg, self.rng
        shape = (beats or cfg.ops_per_group, cfg.lanes)
        return Group(rng.integers(A_MIN, A_MAX + 1, shape), rng.integers(0, 1 << cfg.w_bits, shape),
                     int(rng.integers(0, 1 << cfg.w_bits)), int(rng.integers(0, 1 << cfg.scale_bits)))

    def constant_group(self, a: int, code: int, zp: int, scale: int) -> Group:
        return Group(np.full(self.shape, a), np.full(self.shape, code), zp, scale)

    def results(self) -> list[tuple[str, list[list[Group]]]]:
        cfg = self.cfg
        w_max = (1 << cfg.w_bits) - 1
        w_most_negative = 1 << cfg.w_bits - 1  # the code of -2**(w_bits-1) for signed weights
        s_max = (1 << cfg.scale_bits) - 1
        worst_code = w_most_negative if not cfg.zero_point else 0
        worst_zp = w_max if cfg.zero_point else 0
        jobs = [
            ("random", [[self.random_group() for _ in range(int(self.rng.integers(1, 4)))] for _ in range(4)]),
            ("zero", [[self.constant_group(0, 0, 0, s_max)], [self.constant_group(A_MIN, 0, 0, 0)]]),
            ("most negative a, extreme weights", [[self.constant_group(A_MIN, worst_code, worst_zp, s_max)],
                                                  [self.constant_group(A_MIN, w_max, 0, s_max)]]),
            ("all max", [[self.constant_group(A_MAX, w_max, w_max, s_max)] * 2]),
            ("scale 1.0 (one fraction lsb below and above)",
             [[self.constant_group(1, 1, 0, (1 << cfg.scale_frac_bits) + d)] for d in (-1, 0, 1)
              if 0 <= (1 << cfg.scale_frac_bits) + d <= s_max]),
            ("last closes a group early", [[self.random_group(), self.random_group(1)],
                                           [self.random_group(max(1, cfg.ops_per_group // 2))]]),
        ]
        edge = min(cfg.max_groups, 8)
        worst = self.constant_group(A_MIN, worst_code, worst_zp, s_max)
        jobs.append(("accumulation edge", [[worst] * edge]))
        return jobs


def make_job(cfg: MixedConfig, label: str, results: list[list[Group]]) -> Job:
    layout = cfg.in_layout()
    beats, intervals, spans, values, cycles = [], [], [], [], []
    for groups in results:
        spans.append(len(beats))
        n_beats = sum(len(g.a) for g in groups)
        dequantized = []
        for g_index, group in enumerate(groups):
            for b in range(len(group.a)):
                fields = {"a": [int(x) for x in group.a[b]], "w": [int(x) for x in group.codes[b]],
                          "scale": group.scale, "first": len(beats) == spans[-1],
                          "last": g_index == len(groups) - 1 and b == len(group.a) - 1}
                if cfg.zero_point:
                    fields["zp"] = group.zp
                beats.append(pack(layout, fields))
                intervals.append(cfg.interval())
            dequantized.append(mixed_group(group.a.ravel(), group.codes.ravel(), w_bits=cfg.w_bits,
                                           zero_point=cfg.zero_point, zp=group.zp, scale=group.scale))
        values.append(mixed_result(dequantized, cfg.acc_bits, cfg.scale_frac_bits))
        cycles.append(cfg.cycles(n_beats))
    return Job(label, beats, intervals, spans, values, cycles)


async def run(bench, cfg: MixedConfig, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    report = Report("mixed")
    decode = lambda bits: unpack(cfg.out_layout(), bits, "acc")
    await bench.reset()
    stimulus = Stimulus(cfg, rng)
    for label, results in stimulus.results():
        await run_job(bench, report, make_job(cfg, label, results), decode)

    # Reset in the middle of a group: nothing of it may reach the next result.
    await reset_during(bench, make_job(cfg, "", [[stimulus.random_group()]]).beats)
    await run_job(bench, report, make_job(cfg, "after reset", [[stimulus.random_group()]]), decode)
    return report


async def activity(bench, cfg: MixedConfig, seed: int, n_ops: int) -> int:
    """Random groups covering ``n_ops`` beats, back to back; returns the MACs done."""
    stimulus = Stimulus(cfg, np.random.default_rng(seed))
    groups = [stimulus.random_group() for _ in range(max(1, n_ops // cfg.ops_per_group))]
    job = make_job(cfg, "activity", [groups])
    await bench.reset()
    await drive_stream(bench, job.beats, len(job.results))
    return len(job.beats) * cfg.lanes


# --- hooks of the array testbench (peforge.sim.testbench.systolic) ---------------------------------


def array_code_range(pe: MixedConfig) -> tuple[int, int]:
    return 0, (1 << pe.w_bits) - 1  # unsigned codes on the port


def _groups(pe: MixedConfig, K: int) -> int:
    return ceil_div(K, pe.group)


def array_meta(pe: MixedConfig, rng: np.random.Generator, K: int, N: int, w_bits):
    """A zero point and a scale per quantization group (``group`` rows of B) and column."""
    zp = rng.integers(0, 1 << pe.w_bits, (_groups(pe, K), N))
    scale = rng.integers(0, 1 << pe.scale_bits, (_groups(pe, K), N))
    return {"zp": zp, "scale": scale}, None


def array_constant(pe: MixedConfig, K: int, N: int, corner: str):
    w_max, s_max = (1 << pe.w_bits) - 1, (1 << pe.scale_bits) - 1
    most_negative = 0 if pe.zero_point else 1 << pe.w_bits - 1
    code, zp, scale = {"most negative": (most_negative, w_max if pe.zero_point else 0, s_max),
                       "max": (w_max, 0, s_max), "zero": (0, 0, s_max), "blank": (0, 0, 0)}[corner]
    shape = (_groups(pe, K), N)
    return code, {"zp": np.full(shape, zp), "scale": np.full(shape, scale)}, None


def array_jobs(pe: MixedConfig, stim, M: int, K: int, N: int) -> list:
    return []


def array_fields(pe: MixedConfig, gemm, index: int, beat, rng: np.random.Generator, cols: int) -> dict:
    """Scale (and zero point) of the quantization group of the weights the beat carries, per
    column; garbage where it carries none or beyond N."""
    K, N = gemm.b.shape
    garbage_scale = rng.integers(0, 1 << pe.scale_bits, cols)
    garbage_zp = rng.integers(0, 1 << pe.w_bits, cols)
    if beat.w is not None and beat.w[0][0, 0] < K:
        group = int(beat.w[0][0, 0]) // pe.group
        columns = beat.w[1][:, 0]
        inside = columns < N
        safe = np.minimum(columns, N - 1)
        scale = np.where(inside, gemm.meta["scale"][group, safe], garbage_scale)
        zp = np.where(inside, gemm.meta["zp"][group, safe], garbage_zp)
    else:
        scale, zp = garbage_scale, garbage_zp
    fields = {"scale": [int(x) for x in scale]}
    if pe.zero_point:
        fields["zp"] = [int(x) for x in zp]
    return fields
