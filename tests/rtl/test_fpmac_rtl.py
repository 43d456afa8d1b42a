"""The fpmac datapath (one beat: ``round(acc + Σ a·w)``) against its golden model in the Amaranth
simulator, beat by beat over random and special codes, for every input format, lanes 1 and 4,
each accumulator format, flushed subnormals and approximate normalization; and the weight-
stationary array's summation order, which the golden model must follow."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from peforge.hw.pe.fpmac import INPUT_FORMATS, FpAdd, FpMacCell, FpMacConfig, acc_term, fp_beat, fp_sum
from peforge.sim.runners import simulate
from peforge.sim.testbench.fpmac import random_beats, random_values

CONFIGS = ([FpMacConfig(fmt=fmt, lanes=lanes) for fmt in INPUT_FORMATS for lanes in (1, 4)]
           + [FpMacConfig(fmt="bf16", acc="bf16", lanes=2), FpMacConfig(fmt="e5m2", acc="fp16", subnormals=False),
              FpMacConfig(fmt="fp16", acc="fp16", lanes=3),
              FpMacConfig(fmt="bf16", subnormals=False, approx_norm=True, lanes=2),
              FpMacConfig(fmt="e4m3", acc="bf16", subnormals=False, approx_norm=True)])


def run_cell(cfg: FpMacConfig, beats) -> list[int]:
    cell = FpMacCell(cfg)
    got = []

    async def bench(ctx):
        for acc, a, w in beats:
            ctx.set(cell.acc, acc)
            ctx.set(cell.a, a)
            ctx.set(cell.w, w)
            got.append(ctx.get(cell.dot))

    sim = Simulator(cell)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("cfg", CONFIGS, ids=repr)
def test_cell_matches_golden_beat_by_beat(cfg):
    beats = random_beats(cfg, np.random.default_rng(cfg.lanes * 31 + len(cfg.fmt)), 300)
    got = run_cell(cfg, beats)
    bad = [(hex(acc), [hex(x) for x in a], [hex(x) for x in w], hex(g), hex(fp_beat(cfg, acc, a, w)))
           for (acc, a, w), g in zip(beats, got) if g != fp_beat(cfg, acc, a, w)]
    assert not bad, f"{len(bad)} of {len(beats)} differ, e.g. {bad[:3]}"


@pytest.mark.parametrize("cfg", [FpMacConfig(), FpMacConfig(acc="fp16", subnormals=False, approx_norm=True)], ids=repr)
def test_fold_adder_matches_golden(cfg):
    rng = np.random.default_rng(2)
    beats = random_beats(cfg, rng, 300)
    pairs = [(acc, fp_beat(cfg, 0, a, w)) for acc, a, w in beats]
    adder = FpAdd(cfg)
    spec = cfg.fold_spec()
    got = []

    async def bench(ctx):
        for x, y in pairs:
            ctx.set(adder.x, x)
            ctx.set(adder.y, y)
            got.append(ctx.get(adder.sum))

    sim = Simulator(adder)
    sim.add_testbench(bench)
    sim.run()
    assert got == [fp_sum(spec, [acc_term(spec, x), acc_term(spec, y)]) for x, y in pairs]


def test_ws_order_is_not_the_standalone_order():
    """With a bf16 accumulator the order of roundings shows: the array golden must follow it."""
    cfg = FpMacConfig(acc="bf16", lanes=2)
    rng = np.random.default_rng(0)
    a, b = random_values(cfg.in_format, rng, (8, 24)), random_values(cfg.in_format, rng, (24, 8))
    ws = cfg.golden_gemm(a, b, acc_bits=None, rows=3, dataflow="ws")
    os_ = cfg.golden_gemm(a, b, acc_bits=None, rows=3, dataflow="os")
    assert (ws != os_).any() and (os_ == cfg.golden_gemm(a, b, acc_bits=None)).all()


@pytest.mark.parametrize("cfg", [FpMacConfig(fmt=fmt, lanes=lanes) for fmt in INPUT_FORMATS for lanes in (1, 4)]
                         + [FpMacConfig(fmt="fp16", acc="bf16", subnormals=False, approx_norm=True,
                                        output_register=True)],
                         ids=repr)
def test_pe_streams_dot_products(cfg):
    """The PE's testbench (corners, random values, back to back, reset mid-dot): results and cycles."""
    report = simulate(cfg, seed=1)
    assert report.passed, report.failures[:5]
    assert report.cycles_checked == report.ops > 30
