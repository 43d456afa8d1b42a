"""FpMixedPE testbench: MixedPE's jobs (random groups, zero points and scales, results spanning
several groups, an early ``last``, accumulation edges, reset) with floating-point activations,
plus float corners: ±0, subnormals, the largest finite values, exponents far apart within a beat
(truncation), Inf and NaN. Results checked: ``acc``, ``nan`` and ``fp32``."""

from __future__ import annotations

import numpy as np

from ...hw.golden import wrap
from ...hw.pe.fpalign import align_beats, to_fp32
from ...hw.pe.fpmixed import FpMixedConfig
from ...hw.pe.mixed import mixed_group
from ..bench import drive_stream, reset_during
from ..layouts import pack
from . import Job, Report, run_job
from . import mixed as integer
from .fpcodes import as_signed, corner_codes, decoder, random_codes
from .mixed import Group


class Stimulus(integer.Stimulus):
    """MixedPE's random groups with activation codes, and float corner groups."""

    def __init__(self, cfg: FpMixedConfig, rng: np.random.Generator):
        super().__init__(cfg, rng)
        self.corner = corner_codes(cfg.fmt)

    def random_group(self, beats: int | None = None, *, specials: bool = True) -> Group:
        group = super().random_group(beats)
        group.a = random_codes(self.cfg.fmt, self.rng, group.a.shape, specials=specials)
        return group

    def float_group(self, names: list[str], code: int | None = None, zp: int = 0, scale: int | None = None) -> Group:
        """A group whose lanes cycle through the named codes (random weights unless ``code``)."""
        cfg, rng = self.cfg, self.rng
        a = np.array([self.corner[names[i % len(names)]] for i in range(self.shape[0] * self.shape[1])])
        codes = rng.integers(0, 1 << cfg.w_bits, self.shape) if code is None else np.full(self.shape, code)
        return Group(a.reshape(self.shape), codes, zp, (1 << cfg.scale_bits) - 1 if scale is None else scale)

    def results(self):
        cfg = self.cfg
        w_max, s_max = (1 << cfg.w_bits) - 1, (1 << cfg.scale_bits) - 1
        worst_code = 0 if cfg.zero_point else 1 << cfg.w_bits - 1
        worst_zp = w_max if cfg.zero_point else 0
        worst = self.float_group(["-max"], worst_code, worst_zp, s_max)
        jobs = [
            ("random", [[self.random_group() for _ in range(int(self.rng.integers(1, 4)))] for _ in range(4)]),
            ("zero", [[self.float_group(["+0", "-0"], 0, 0, s_max)], [self.float_group(["-max"], 0, 0, 0)]]),
            ("largest finite, extreme weights", [[worst], [self.float_group(["max"], w_max, 0, s_max)]]),
            ("zeros and subnormals", [[self.float_group(["+0", "-0", "min subnormal", "max subnormal"])],
                                      [self.float_group(["min subnormal"])]]),
            ("largest and smallest in one beat (truncation)",
             [[self.float_group(["max", "min subnormal"])],
              [self.float_group(["max", "max subnormal", "one", "-max"])]]),
            ("min normal and one", [[self.float_group(["min normal", "one"])]]),
            ("Inf and NaN flag their result only",
             [[self.random_group(specials=False), self.float_group(["inf", "one"])], [self.random_group(specials=False)],
              [self.float_group(["nan", "-inf"])], [self.random_group(specials=False)]]),
            ("last closes a group early", [[self.random_group(), self.random_group(1)],
                                           [self.random_group(max(1, cfg.ops_per_group // 2))]]),
            ("accumulation edge", [[worst] * min(cfg.max_groups, 8)]),
        ]
        return jobs


def make_job(cfg: FpMixedConfig, label: str, results: list[list[Group]]) -> Job:
    layout = cfg.in_layout()
    beats, intervals, spans, values, cycles = [], [], [], [], []
    for groups in results:
        spans.append(len(beats))
        n_beats = sum(len(g.a) for g in groups)
        dequantized, nan = [], False
        for g_index, group in enumerate(groups):
            for b in range(len(group.a)):
                fields = {"a": [int(x) for x in group.a[b]], "w": [int(x) for x in group.codes[b]],
                          "scale": group.scale, "first": len(beats) == spans[-1],
                          "last": g_index == len(groups) - 1 and b == len(group.a) - 1}
                if cfg.zero_point:
                    fields["zp"] = group.zp
                beats.append(pack(layout, fields))
                intervals.append(cfg.interval())
            aligned, shift, flagged = align_beats(group.a, cfg.fmt, cfg.align_bits, cfg.lanes)
            nan |= bool(flagged.any())
            # One dequantization per group: the beats' corrected sums, each shifted by its exponent.
            dequantized.append(sum(mixed_group(aligned[b, 0], group.codes[b], w_bits=cfg.w_bits,
                                               zero_point=cfg.zero_point, zp=group.zp, scale=group.scale)
                                   << int(shift[b, 0]) for b in range(len(group.a))))
        total = int(wrap(sum(dequantized), cfg.acc_bits))
        fp32 = to_fp32(total, cfg.lsb_exp - cfg.scale_frac_bits, nan) if cfg.fp32_out else None
        values.append((total >> cfg.scale_frac_bits, int(nan), fp32))
        cycles.append(cfg.cycles(n_beats))
    return Job(label, beats, intervals, spans, values, cycles)


async def run(bench, cfg: FpMixedConfig, seed: int) -> Report:
    rng = np.random.default_rng(seed)
    report = Report("fpmixed")
    decode = decoder(cfg)
    await bench.reset()
    stimulus = Stimulus(cfg, rng)
    for label, results in stimulus.results():
        await run_job(bench, report, make_job(cfg, label, results), decode)

    # Reset in the middle of a (NaN) group: nothing of it may reach the next result.
    await reset_during(bench, make_job(cfg, "", [[stimulus.float_group(["nan"])]]).beats)
    await run_job(bench, report, make_job(cfg, "after reset", [[stimulus.random_group(specials=False)]]), decode)
    return report


async def activity(bench, cfg: FpMixedConfig, seed: int, n_ops: int) -> int:
    """Random groups (finite activations) covering ``n_ops`` beats, back to back; returns the MACs."""
    stimulus = Stimulus(cfg, np.random.default_rng(seed))
    groups = [stimulus.random_group(specials=False) for _ in range(max(1, n_ops // cfg.ops_per_group))]
    job = make_job(cfg, "activity", [groups])
    await bench.reset()
    await drive_stream(bench, job.beats, len(job.results))
    return len(job.beats) * cfg.lanes


# --- hooks of the array testbench (peforge.sim.testbench.systolic): MixedPE's, plus float jobs ----

array_code_range = integer.array_code_range
array_meta = integer.array_meta
array_constant = integer.array_constant
array_fields = integer.array_fields


def array_jobs(pe: FpMixedConfig, stim, M: int, K: int, N: int) -> list:
    """Activations of every float class; the largest finite activations with the largest
    products (the array's own corner jobs send integer codes)."""
    rng = stim.rng
    floats = stim.random(M, K, N)
    floats.a = as_signed(random_codes(pe.fmt, rng, (M, K)))
    code, meta, _ = array_constant(pe, K, N, "most negative")
    largest = stim.random(M, K, N)
    largest.a = as_signed(np.full((M, K), pe.fmt.max_code(True)))
    largest.b, largest.meta = np.full((K, N), code), meta
    return [("float activations of every class", [floats]), ("largest finite activations", [largest])]
