"""BitSerialPE testbench: every run-time precision, precision changes between back-to-back dot
products, corner operands, group rescale, the code->value table, overflow edges and reset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...hw.pe.bitserial import (LO_ADD, LO_NONE, LO_SUB, BitSerialConfig, bitserial_result, bitserial_weights,
                                 scale_factor)
from ..bench import drive_stream, reset_during
from ..layouts import pack, unpack
from . import Job, Report, run_job


@dataclass
class DotOp:
    """One dot product as issued to the PE."""

    a: np.ndarray
    codes: np.ndarray
    w_bits: int
    group_last: bool = False
    scale: tuple[int, int, int] = (0, 0, LO_NONE)  # e_hi, e_lo, lo_mode


class Stimulus:
    """Random and corner-case dot products for one config."""

    def __init__(self, cfg: BitSerialConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        self.a_min, self.a_max = -(1 << cfg.a_bits - 1), (1 << cfg.a_bits - 1) - 1

    def random_a(self) -> np.ndarray:
        return self.rng.integers(self.a_min, self.a_max + 1, self.cfg.lanes)

    def random_codes(self) -> np.ndarray:
        # Bits above w_bits are random too: the PE must ignore them.
        return self.rng.integers(0, 1 << self.cfg.code_bits, self.cfg.lanes)

    def code_for(self, value: int) -> int:
        return value & ((1 << self.cfg.code_bits) - 1)

    def random_scale(self) -> tuple[int, int, int]:
        top = self.cfg.max_shift
        return int(self.rng.integers(0, top + 1)), int(self.rng.integers(0, top + 1)), int(self.rng.integers(0, 3))

    def random_op(self, w_bits: int) -> DotOp:
        return DotOp(self.random_a(), self.random_codes(), w_bits)

    def results(self) -> list[tuple[str, list[list[DotOp]]]]:
        """Labelled jobs; each job is a list of results, each result a list of dot products."""
        cfg, lanes = self.cfg, self.cfg.lanes
        precisions = range(2, cfg.max_w_bits + 1)
        jobs = []
        for w_bits in precisions:
            jobs.append((f"w_bits={w_bits}", [[self.random_op(w_bits) for _ in range(int(self.rng.integers(1, 4)))]
                                              for _ in range(3)]))
        mixed = [self.random_op(int(self.rng.choice(list(precisions)))) for _ in range(8)]
        jobs.append(("precision changes back to back", [mixed[:3], mixed[3:4], mixed[4:]]))
        if not cfg.lut_entries:  # corners of the plain two's-complement weight codes
            w = cfg.max_w_bits
            most_neg = np.full(lanes, self.a_min)
            jobs.append(("most negative a and w", [[DotOp(most_neg, np.full(lanes, self.code_for(-(1 << wb - 1))), wb)]
                                                   for wb in (2, w)]))
            jobs.append(("all max", [[DotOp(np.full(lanes, self.a_max), np.full(lanes, (1 << w - 1) - 1), w)]]))
            jobs.append(("zero", [[DotOp(np.zeros(lanes, int), np.zeros(lanes, int), w)],
                                  [DotOp(most_neg, np.zeros(lanes, int), 2)]]))
            edge = min(cfg.max_accumulations, 16)
            worst = DotOp(most_neg, np.full(lanes, self.code_for(-(1 << w - 1))), w)
            jobs.append(("accumulation edge", [[worst] * edge]))
            if cfg.max_accumulations <= 16 and not cfg.rescale:
                jobs.append(("one past the accumulation bound (golden wraps alike)", [[worst] * (cfg.max_accumulations + 1)]))
        if cfg.rescale:
            top = cfg.max_shift
            corners = [(top, top, LO_ADD), (top, top, LO_SUB), (0, 0, LO_SUB), (top, 0, LO_NONE)]
            grouped = []
            for _ in range(3):
                ops = [self.random_op(int(self.rng.choice(list(precisions)))) for _ in range(6)]
                for i, op in enumerate(ops):
                    op.group_last = i in (1, 2, 5)
                    op.scale = corners.pop() if corners else self.random_scale()
                grouped.append(ops)
            jobs.append(("grouped rescale", grouped))
        return jobs


def make_job(cfg: BitSerialConfig, label: str, results: list[list[DotOp]], lut) -> Job:
    layout = cfg.in_layout()
    beats, intervals, spans, values, cycles = [], [], [], [], []
    for ops in results:
        spans.append(len(beats))
        dots, ends, scales = [], [], []
        for i, op in enumerate(ops):
            last = i == len(ops) - 1
            fields = {"a": [int(x) for x in op.a], "w": [int(x) for x in op.codes], "w_bits": op.w_bits,
                      "first": i == 0, "last": last}
            if cfg.rescale:
                fields.update(group_last=op.group_last, e_hi=op.scale[0], e_lo=op.scale[1], lo_mode=op.scale[2])
            beats.append(pack(layout, fields))
            intervals.append(cfg.interval(op.w_bits))
            weights = bitserial_weights(op.codes, cfg.effective_w_bits(op.w_bits), lut)
            dots.append(int(np.dot(op.a.astype(object), weights.astype(object))))
            ends.append(op.group_last or last)
            scales.append(scale_factor(*op.scale) if cfg.rescale else 1)
        values.append(bitserial_result(dots, ends, scales, cfg.acc_bits))
        cycles.append(cfg.cycles([op.w_bits for op in ops]))
    return Job(label, beats, intervals, spans, values, cycles)


async def load_table(bench, cfg: BitSerialConfig, table) -> None:
    bench.set("lut__en", 1)
    for addr, value in enumerate(table):
        bench.set("lut__addr", addr)
        bench.set("lut__data", int(value) & ((1 << cfg.max_w_bits) - 1))
        await bench.tick()
    bench.set("lut__en", 0)


def random_table(cfg: BitSerialConfig, rng: np.random.Generator):
    if not cfg.lut_entries:
        return None
    half = 1 << cfg.max_w_bits - 1
    table = rng.integers(-half, half, cfg.lut_entries)
    table[0], table[-1] = -half, half - 1  # the extremes are always in the table
    return table


async def run(bench, cfg: BitSerialConfig, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    report = Report("bitserial")
    decode = lambda bits: unpack(cfg.out_layout(), bits, "acc")
    await bench.reset()
    table = random_table(cfg, rng)
    if table is not None:
        await load_table(bench, cfg, table)
    stimulus = Stimulus(cfg, rng)
    for label, results in stimulus.results():
        await run_job(bench, report, make_job(cfg, label, results, table), decode)

    # Reset in the middle of a dot product: nothing of it may reach the next result.
    half_op = stimulus.random_op(cfg.max_w_bits)
    await reset_during(bench, make_job(cfg, "", [[half_op]], table).beats)
    await run_job(bench, report, make_job(cfg, "after reset", [[stimulus.random_op(3)]], table), decode)
    return report


async def activity(bench, cfg: BitSerialConfig, seed: int, n_ops: int) -> int:
    """``n_ops`` random dot products at full precision, back to back; returns the MACs done."""
    rng = np.random.default_rng(seed)
    await bench.reset()
    table = random_table(cfg, rng)
    if table is not None:
        await load_table(bench, cfg, table)
    stimulus = Stimulus(cfg, rng)
    job = make_job(cfg, "activity", [[stimulus.random_op(cfg.max_w_bits) for _ in range(n_ops)]], table)
    await drive_stream(bench, job.beats, len(job.results))
    return n_ops * cfg.lanes


# --- hooks of the array testbench (peforge.sim.testbench.systolic) ---------------------------------


def array_code_range(pe: BitSerialConfig) -> tuple[int, int]:
    return 0, (1 << pe.code_bits) - 1  # unsigned codes on the port


def array_meta(pe: BitSerialConfig, rng: np.random.Generator, K: int, N: int, w_bits):
    """No column metadata; the precision as asked, else a random one in range."""
    return {}, (w_bits if w_bits is not None else int(rng.integers(2, pe.max_w_bits + 1)))


def array_constant(pe: BitSerialConfig, K: int, N: int, corner: str):
    codes = {"most negative": 1 << pe.max_w_bits - 1, "max": (1 << pe.max_w_bits - 1) - 1, "zero": 0, "blank": 0}
    return codes[corner], {}, pe.max_w_bits


def array_jobs(pe: BitSerialConfig, stim, M: int, K: int, N: int) -> list:
    return [("every precision, then out of range (acts as max_w_bits)",
             [stim.random(M, K, N, w) for w in [*range(2, pe.max_w_bits + 1), 0, 15]])]


def array_fields(pe: BitSerialConfig, gemm, index: int, beat, rng: np.random.Generator, cols: int) -> dict:
    """The GEMM's precision on its first beat; later beats' is garbage the array must ignore."""
    return {"w_bits": gemm.w_bits if index == 0 else int(rng.integers(0, 16))}
