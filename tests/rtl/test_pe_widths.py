"""Width sufficiency: each PE's accumulator holds exactly its accumulation bound.

With worst-case operands (the products of largest magnitude, all of one sign), a result of
``max_reduction`` products equals the *unwrapped* golden value in the RTL, and one reduction
step more (one product, dot product or group) equals the wrapped golden value, which differs
from the unwrapped one. Configs are small so the bound is a few dozen products.
"""

import numpy as np
import pytest

from peforge.hw.pe.bitserial import LO_ADD, BitSerialConfig, bitserial_result, bitserial_weights, scale_factor
from peforge.hw.pe.fpalign import align_beats
from peforge.hw.pe.fpbitserial import FpBitSerialConfig
from peforge.hw.pe.fpmixed import FpMixedConfig
from peforge.hw.pe.mac import MacConfig, mac_dot
from peforge.hw.pe.mixed import MixedConfig, mixed_group, mixed_result
from peforge.sim.layouts import unpack
from peforge.sim.runners import simulate_with
from peforge.sim.testbench import Report, run_job
from peforge.sim.testbench import bitserial as bitserial_tb
from peforge.sim.testbench import fpbitserial as fpbitserial_tb
from peforge.sim.testbench import fpmixed as fpmixed_tb
from peforge.sim.testbench import mac as mac_tb
from peforge.sim.testbench import mixed as mixed_tb


def run_at_bound(config, job, unwrapped, wrapped):
    """``job`` holds two results: at the bound and one step beyond."""
    assert unwrapped[0] == wrapped[0], "at the bound nothing may wrap"
    assert unwrapped[1] != wrapped[1], "one step beyond must wrap"
    job.results = [unwrapped[0], wrapped[1]]

    async def bench_run(bench):
        report = Report("widths")
        await bench.reset()
        await run_job(bench, report, job, lambda bits: unpack(config.out_layout(), bits, "acc"))
        return report

    report = simulate_with(config, bench_run)
    assert report.passed, report.failures


@pytest.mark.parametrize("config", [MacConfig(a_bits=4, w_bits=4, max_accumulations=3),
                                    MacConfig(a_bits=3, w_bits=5, max_accumulations=1, output_register=True)],
                         ids=repr)
def test_mac_accumulator_holds_its_bound(config):
    n = config.max_reduction
    a_min, w_min = -(1 << config.a_bits - 1), -(1 << config.w_bits - 1)
    dots = [(np.full(count, a_min), np.full(count, w_min)) for count in (n, n + 1)]
    job = mac_tb.make_job(config, "bound", dots)
    run_at_bound(config, job, [mac_dot(a, w, None) for a, w in dots], [mac_dot(a, w, config.acc_bits) for a, w in dots])


@pytest.mark.parametrize("config", [BitSerialConfig(lanes=3, k=1, a_bits=2, max_w_bits=2, max_accumulations=3),
                                    BitSerialConfig(lanes=2, k=2, a_bits=3, max_w_bits=4, max_accumulations=2),
                                    BitSerialConfig(lanes=1, k=2, a_bits=2, max_w_bits=2, max_accumulations=1,
                                                    rescale=True, max_shift=1)],
                         ids=repr)
def test_bitserial_accumulator_holds_its_bound(config):
    assert config.max_reduction % config.lanes == 0
    n = config.max_reduction // config.lanes  # dot products of `lanes` terms
    w = config.max_w_bits
    a_min = np.full(config.lanes, -(1 << config.a_bits - 1))
    codes = np.full(config.lanes, 1 << w - 1)  # -2**(w-1) as a w-bit code
    scale = (config.max_shift, config.max_shift, LO_ADD) if config.rescale else (0, 0, 0)
    op = bitserial_tb.DotOp(a_min, codes, w, group_last=True, scale=scale)
    results = [[op] * n, [op] * (n + 1)]
    job = bitserial_tb.make_job(config, "bound", results, None)
    factor = scale_factor(*scale) if config.rescale else 1
    dot = int(np.dot(a_min.astype(object), bitserial_weights(codes, w).astype(object)))

    def golden(ops, acc_bits):
        return bitserial_result([dot] * len(ops), [True] * len(ops), [factor] * len(ops), acc_bits)

    run_at_bound(config, job, [golden(r, None) for r in results], [golden(r, config.acc_bits) for r in results])


@pytest.mark.parametrize("config", [
    MixedConfig(lanes=1, group=1, w_bits=4, zero_point=False, scale_bits=2, scale_frac_bits=0, max_groups=3),
    MixedConfig(lanes=2, group=4, w_bits=2, zero_point=True, scale_bits=3, scale_frac_bits=1, max_groups=1),
], ids=repr)
def test_mixed_accumulator_holds_its_bound(config):
    assert config.max_reduction % config.group == 0
    n = config.max_reduction // config.group  # whole quantization groups
    shape = (config.ops_per_group, config.lanes)
    w_max, s_max = (1 << config.w_bits) - 1, (1 << config.scale_bits) - 1
    if config.zero_point:  # -128 x (0 - zp_max): the largest positive product
        worst = mixed_tb.Group(np.full(shape, -128), np.zeros(shape, int), w_max, s_max)
    else:  # -128 x -2**(w_bits-1)
        worst = mixed_tb.Group(np.full(shape, -128), np.full(shape, 1 << config.w_bits - 1), 0, s_max)
    results = [[worst] * n, [worst] * (n + 1)]
    job = mixed_tb.make_job(config, "bound", results)
    group = mixed_group(worst.a.ravel(), worst.codes.ravel(), w_bits=config.w_bits, zero_point=config.zero_point,
                        zp=worst.zp, scale=worst.scale)

    def golden(groups, acc_bits):
        return mixed_result([group] * len(groups), acc_bits, config.scale_frac_bits)

    run_at_bound(config, job, [golden(r, None) for r in results], [golden(r, config.acc_bits) for r in results])


@pytest.mark.parametrize("config", [FpBitSerialConfig(lanes=3, k=1, align_bits=4, max_w_bits=2, max_accumulations=3),
                                    FpBitSerialConfig(lanes=1, k=2, align_bits=5, max_w_bits=4, max_accumulations=2,
                                                      rescale=True, max_shift=1, fp32_out=False)],
                         ids=repr)
def test_fpbitserial_accumulator_holds_its_bound(config):
    """The largest finite activations (-65504, aligned at the largest beat shift) times -2**(w-1)."""
    n = config.max_reduction // config.lanes
    w = config.max_w_bits
    a = np.full(config.lanes, config.fmt.max_code(True))
    codes = np.full(config.lanes, 1 << w - 1)
    scale = (config.max_shift, config.max_shift, LO_ADD) if config.rescale else (0, 0, 0)
    op = bitserial_tb.DotOp(a, codes, w, group_last=True, scale=scale)
    results = [[op] * n, [op] * (n + 1)]
    job = fpbitserial_tb.make_job(config, "bound", results, None)
    aligned, shift, _ = align_beats(a, config.fmt, config.align_bits, config.lanes)
    dot = int(np.dot(aligned[0].astype(object), bitserial_weights(codes, w).astype(object))) << int(shift[0])
    factor = scale_factor(*scale) if config.rescale else 1

    def golden(ops, acc_bits):
        return bitserial_result([dot] * len(ops), [True] * len(ops), [factor] * len(ops), acc_bits)

    run_at_bound(config, job, [golden(r, None) for r in results], [golden(r, config.acc_bits) for r in results])


@pytest.mark.parametrize("config", [
    FpMixedConfig(lanes=1, group=1, w_bits=4, zero_point=False, scale_bits=2, scale_frac_bits=0, max_groups=3,
                  align_bits=5),
    FpMixedConfig(lanes=2, group=4, w_bits=2, zero_point=True, scale_bits=3, scale_frac_bits=1, max_groups=1,
                  fp32_out=False),
], ids=repr)
def test_fpmixed_accumulator_holds_its_bound(config):
    n = config.max_reduction // config.group
    shape = (config.ops_per_group, config.lanes)
    w_max, s_max = (1 << config.w_bits) - 1, (1 << config.scale_bits) - 1
    a = np.full(shape, config.fmt.max_code(True))
    if config.zero_point:  # -65504 x (0 - zp_max)
        worst = mixed_tb.Group(a, np.zeros(shape, int), w_max, s_max)
    else:  # -65504 x -2**(w_bits-1)
        worst = mixed_tb.Group(a, np.full(shape, 1 << config.w_bits - 1), 0, s_max)
    results = [[worst] * n, [worst] * (n + 1)]
    job = fpmixed_tb.make_job(config, "bound", results)
    aligned, shift, _ = align_beats(a, config.fmt, config.align_bits, config.lanes)
    group = sum(mixed_group(aligned[b, 0], worst.codes[b], w_bits=config.w_bits, zero_point=config.zero_point,
                            zp=worst.zp, scale=worst.scale) << int(shift[b, 0]) for b in range(len(a)))

    def golden(groups, acc_bits):
        return mixed_result([group] * len(groups), acc_bits, config.scale_frac_bits)

    run_at_bound(config, job, [golden(r, None) for r in results], [golden(r, config.acc_bits) for r in results])
