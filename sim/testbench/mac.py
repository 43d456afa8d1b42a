"""MacPE testbench: dot products of random and corner-case pairs, streamed back to back."""

from __future__ import annotations

import numpy as np

from ...hw.pe.mac import MacConfig, mac_dot
from ..bench import drive_stream, reset_during
from ..layouts import pack, unpack
from . import Job, Report, run_job


def dot_products(cfg: MacConfig, rng: np.random.Generator) -> list[tuple[str, list[tuple[np.ndarray, np.ndarray]]]]:
    """Labelled groups of dot products ``(a, w)``: corners first, then random."""
    a_min, a_max = -(1 << cfg.a_bits - 1), (1 << cfg.a_bits - 1) - 1
    w_min, w_max = -(1 << cfg.w_bits - 1), (1 << cfg.w_bits - 1) - 1
    n_max = cfg.max_accumulations
    n_edge = min(n_max, 64)

    def full(n, a, w):
        return np.full(n, a), np.full(n, w)

    groups = [
        ("zero", [full(4, 0, 0), full(1, 0, w_min)]),
        ("most negative squared", [full(n_edge, a_min, w_min)]),
        ("max times min", [full(n_edge, a_max, w_min), full(n_edge, a_min, w_max)]),
        ("all max", [full(n_edge, a_max, w_max)]),
        ("single pairs", [full(1, a_min, w_min), full(1, a_max, w_max), full(1, -1, 1), full(1, a_min, 1)]),
    ]
    if n_max <= 256:
        # The accumulator is sized for exactly n_max worst-case products; one more wraps.
        groups.append(("overflow edge", [full(n_max, a_min, w_min), full(n_max + 1, a_min, w_min)]))
    randoms = []
    for _ in range(24):
        n = int(rng.integers(1, 17))
        randoms.append((rng.integers(a_min, a_max + 1, n), rng.integers(w_min, w_max + 1, n)))
    groups.append(("random", randoms))
    return groups


def make_job(cfg: MacConfig, label: str, dots) -> Job:
    layout = cfg.in_layout()
    beats, intervals, spans, results, cycles = [], [], [], [], []
    for a, w in dots:
        spans.append(len(beats))
        n = len(a)
        for i in range(n):
            beats.append(pack(layout, {"a": int(a[i]), "w": int(w[i]), "first": i == 0, "last": i == n - 1}))
            intervals.append(1)
        results.append(mac_dot(a, w, cfg.acc_bits))
        cycles.append(cfg.cycles(n))
    return Job(label, beats, intervals, spans, results, cycles)


async def run(bench, cfg: MacConfig, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    report = Report("mac")
    out = cfg.out_layout()
    decode = lambda bits: unpack(out, bits, "acc")
    await bench.reset()
    for label, dots in dot_products(cfg, rng):
        await run_job(bench, report, make_job(cfg, label, dots), decode)

    # Reset in the middle of a dot product: the partial sum must not leak into the next one.
    a_min = -(1 << cfg.a_bits - 1)
    layout = cfg.in_layout()
    await reset_during(bench, [pack(layout, {"a": a_min, "w": 1, "first": 1, "last": 0})], cycles=1)
    await run_job(bench, report, make_job(cfg, "after reset", [(np.array([1, a_min]), np.array([1, -1]))]), decode)
    return report


async def activity(bench, cfg: MacConfig, seed: int, n_ops: int) -> int:
    """``n_ops`` random dot products of 16 pairs, back to back; returns the MACs done."""
    rng = np.random.default_rng(seed)
    a_min, w_min = -(1 << cfg.a_bits - 1), -(1 << cfg.w_bits - 1)
    dots = [(rng.integers(a_min, -a_min, 16), rng.integers(w_min, -w_min, 16)) for _ in range(n_ops)]
    job = make_job(cfg, "activity", dots)
    await bench.reset()
    await drive_stream(bench, job.beats, len(job.results))
    return 16 * n_ops


# --- hooks of the array testbench (peforge.sim.testbench.systolic) ---------------------------------


def array_code_range(pe: MacConfig) -> tuple[int, int]:
    return -(1 << pe.w_bits - 1), (1 << pe.w_bits - 1) - 1


def array_meta(pe: MacConfig, rng: np.random.Generator, K: int, N: int, w_bits):
    return {}, None


def array_constant(pe: MacConfig, K: int, N: int, corner: str):
    lo, hi = array_code_range(pe)
    return {"most negative": lo, "max": hi, "zero": 0, "blank": 0}[corner], {}, None


def array_jobs(pe: MacConfig, stim, M: int, K: int, N: int) -> list:
    return []


def array_fields(pe: MacConfig, gemm, index: int, beat, rng: np.random.Generator, cols: int) -> dict:
    return {}
