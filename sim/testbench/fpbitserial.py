"""FpBitSerialPE testbench: BitSerialPE's jobs (every run-time precision, precision changes,
group rescale, the code->value table, accumulation edges, reset) with floating-point
activations, plus float corners: ±0, subnormals, the largest finite values, exponents far apart
within a beat (truncation), Inf and NaN. Results checked: ``acc``, ``nan`` and ``fp32``."""

from __future__ import annotations

import numpy as np

from ...hw.pe.bitserial import bitserial_result, bitserial_weights, scale_factor
from ...hw.pe.fpalign import align_beats, to_fp32
from ...hw.pe.fpbitserial import FpBitSerialConfig
from ..bench import drive_stream, reset_during
from ..layouts import pack
from . import Job, Report, run_job
from . import bitserial as integer
from .bitserial import DotOp, load_table, random_table
from .fpcodes import as_signed, corner_codes, decoder, random_codes


class Stimulus(integer.Stimulus):
    """BitSerialPE's stimulus with activation codes: its corners run at the largest finite
    activations of either sign (the largest products)."""

    def __init__(self, cfg: FpBitSerialConfig, rng: np.random.Generator):
        super().__init__(cfg, rng)
        self.corner = corner_codes(cfg.fmt)
        self.a_min, self.a_max = self.corner["-max"], self.corner["max"]

    def random_a(self) -> np.ndarray:
        return random_codes(self.cfg.fmt, self.rng, self.cfg.lanes)

    def float_op(self, names: list[str]) -> DotOp:
        a = np.array([self.corner[names[i % len(names)]] for i in range(self.cfg.lanes)])
        return DotOp(a, self.random_codes(), self.cfg.max_w_bits)

    def results(self):
        jobs = super().results()
        cfg, w = self.cfg, self.cfg.max_w_bits
        spread = DotOp(np.array([self.corner["max"], self.corner["min subnormal"]] * cfg.lanes)[:cfg.lanes],
                       self.random_codes(), w)
        jobs += [
            ("zeros and subnormals", [[self.float_op(["+0", "-0", "min subnormal", "max subnormal"])],
                                      [self.float_op(["min subnormal"]), self.float_op(["-0"])]]),
            ("largest and smallest in one beat (truncation)", [[spread], [self.float_op(["max", "max subnormal",
                                                                                            "one", "-max"])]]),
            ("min normal and one", [[self.float_op(["min normal", "one"]) for _ in range(3)]]),
            ("Inf and NaN flag their result only", [[self.random_op(w), self.float_op(["inf", "one"])],
                                                    [self.random_op(w)], [self.float_op(["nan", "-inf"])],
                                                    [self.random_op(w)]]),
        ]
        return jobs


def make_job(cfg: FpBitSerialConfig, label: str, results: list[list[DotOp]], lut) -> Job:
    layout = cfg.in_layout()
    beats, intervals, spans, values, cycles = [], [], [], [], []
    for ops in results:
        spans.append(len(beats))
        dots, ends, scales, nan = [], [], [], False
        for i, op in enumerate(ops):
            last = i == len(ops) - 1
            fields = {"a": [int(x) for x in op.a], "w": [int(x) for x in op.codes], "w_bits": op.w_bits,
                      "first": i == 0, "last": last}
            if cfg.rescale:
                fields.update(group_last=op.group_last, e_hi=op.scale[0], e_lo=op.scale[1], lo_mode=op.scale[2])
            beats.append(pack(layout, fields))
            intervals.append(cfg.interval(op.w_bits))
            aligned, shift, flagged = align_beats(op.a, cfg.fmt, cfg.align_bits, cfg.lanes)
            weights = bitserial_weights(op.codes, cfg.effective_w_bits(op.w_bits), lut)
            dots.append(int(np.dot(aligned[0].astype(object), weights.astype(object))) << int(shift[0]))
            nan |= bool(flagged[0])
            ends.append(op.group_last or last)
            scales.append(scale_factor(*op.scale) if cfg.rescale else 1)
        acc = bitserial_result(dots, ends, scales, cfg.acc_bits)
        values.append((acc, int(nan), to_fp32(acc, cfg.lsb_exp, nan) if cfg.fp32_out else None))
        cycles.append(cfg.cycles([op.w_bits for op in ops]))
    return Job(label, beats, intervals, spans, values, cycles)


async def run(bench, cfg: FpBitSerialConfig, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    report = Report("fpbitserial")
    decode = decoder(cfg)
    await bench.reset()
    table = random_table(cfg, rng)
    if table is not None:
        await load_table(bench, cfg, table)
    stimulus = Stimulus(cfg, rng)
    for label, results in stimulus.results():
        await run_job(bench, report, make_job(cfg, label, results, table), decode)

    # Reset in the middle of a dot product (a NaN one): nothing of it may reach the next result.
    await reset_during(bench, make_job(cfg, "", [[stimulus.float_op(["nan"])]], table).beats)
    await run_job(bench, report, make_job(cfg, "after reset", [[stimulus.random_op(3)]], table), decode)
    return report


async def activity(bench, cfg: FpBitSerialConfig, seed: int, n_ops: int) -> int:
    """``n_ops`` random dot products at full precision (finite activations), back to back; returns the MACs."""
    rng = np.random.default_rng(seed)
    await bench.reset()
    table = random_table(cfg, rng)
    if table is not None:
        await load_table(bench, cfg, table)
    stimulus = Stimulus(cfg, rng)
    ops = [DotOp(random_codes(cfg.fmt, rng, cfg.lanes, specials=False), stimulus.random_codes(), cfg.max_w_bits)
           for _ in range(n_ops)]
    job = make_job(cfg, "activity", [ops], table)
    await drive_stream(bench, job.beats, len(job.results))
    return n_ops * cfg.lanes


# --- hooks of the array testbench (peforge.sim.testbench.systolic): BitSerialPE's, plus float jobs --

array_code_range = integer.array_code_range
array_meta = integer.array_meta
array_constant = integer.array_constant
array_fields = integer.array_fields


def array_jobs(pe: FpBitSerialConfig, stim, M: int, K: int, N: int) -> list:
    """BitSerialPE's (every precision), then activations of every float class, then the
    largest finite activations with the largest products (the corner jobs' codes are integers)."""
    rng = stim.rng
    floats = stim.random(M, K, N, pe.max_w_bits)
    floats.a = as_signed(random_codes(pe.fmt, rng, (M, K)))
    largest = stim.random(M, K, N, pe.max_w_bits)
    largest.a = as_signed(np.where(rng.integers(0, 2, (M, K)), pe.fmt.max_code(True), pe.fmt.max_code(False)))
    largest.b = np.full((K, N), 1 << pe.max_w_bits - 1)
    return integer.array_jobs(pe, stim, M, K, N) + [("float activations of every class", [floats]),
                                                    ("largest finite activations", [largest])]
