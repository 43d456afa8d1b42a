"""The FP-activation PEs' shared RTL stages in the Amaranth simulator: the per-beat aligner
against its golden model on every class of code, and the FP32 output stage against
round-to-nearest-even (hw.fp.encode) on ties, sticky bits, subnormal results and overflow."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from peforge.hw.fp import float_format
from peforge.hw.pe.fpalign import FpAligner, align_beats, fp32_from_fixed, to_fp32
from peforge.sim.testbench.fpcodes import corner_codes, random_codes


def run(dut, testbench) -> None:
    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("fmt_name, align_bits, lanes", [("fp16", 12, 4), ("fp16", 4, 3), ("fp16", 16, 2),
                                                         ("bf16", 9, 4), ("bf16", 5, 1)])
def test_aligner_matches_golden(fmt_name, align_bits, lanes):
    fmt = float_format(fmt_name)
    rng = np.random.default_rng(align_bits)
    corners = list(corner_codes(fmt).values())
    beats = [random_codes(fmt, rng, lanes) for _ in range(200)]
    beats += [rng.choice(corners, lanes) for _ in range(100)]
    dut = FpAligner(fmt, align_bits, lanes)
    failures = []

    async def testbench(ctx):
        for codes in beats:
            ctx.set(dut.a, [int(c) for c in codes])
            aligned, shift, nan = align_beats(codes, fmt, align_bits, lanes)
            got = ([ctx.get(dut.aligned[lane]) for lane in range(lanes)], ctx.get(dut.shift), ctx.get(dut.nan))
            expected = ([int(x) for x in aligned[0]], int(shift[0]), int(nan[0]))
            if got != expected:
                failures.append((list(codes), got, expected))
    run(dut, testbench)
    assert not failures, failures[:3]


def _values(width: int, rng) -> list[int]:
    """Ties (odd and even), just above and below them, sticky bits far down, extremes, random."""
    top = (1 << width - 1) - 1
    values = [0, 1, -1, top, -top - 1]
    for shift in range(0, width - 26):
        base = (1 << 24) + 1 << shift  # 2**24 + 1: a tie between 2**24 and 2**24 + 2
        values += [base << 1, (base << 1) + 1, base, base + 1, base - 1, -(base + (1 << shift)),
                   ((1 << 24) + 3 << shift + 1), -(((1 << 24) + 3) << shift + 1) + 1]
    values += [int.from_bytes(rng.bytes(width // 8 + 1), "little") % (1 << width) - (1 << width - 1) >> int(s)
               for s in rng.integers(0, width, 300)]
    return [v for v in values if -top - 1 <= v <= top]


@pytest.mark.parametrize("width, scale_exp", [(64, -24), (48, -36), (40, -150), (300, -140), (30, 110), (24, 0)])
def test_fp32_stage_rounds_to_nearest_even(width, scale_exp):
    m = Module()
    x, nan = Signal(signed(width)), Signal()
    out = fp32_from_fixed(m, x, scale_exp, nan)
    values = _values(width, np.random.default_rng(width))
    failures = []

    async def testbench(ctx):
        for v in values:
            ctx.set(x, v)
            if ctx.get(out) != to_fp32(v, scale_exp):
                failures.append((v, hex(ctx.get(out)), hex(to_fp32(v, scale_exp))))
        ctx.set(nan, 1)
        if ctx.get(out) != 0x7FC00000:
            failures.append(("nan", hex(ctx.get(out))))
    run(m, testbench)
    assert not failures, failures[:3]
