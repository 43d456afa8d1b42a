"""VectorUnit in the Amaranth simulator behind plain element memories: every op on random and
corner inputs (zeros, extremes, lengths not multiples of V, one-element rows) equals
:func:`peforge.hw.tile.vector.execute` (the ``hw/intops`` operators) bit for bit and takes
exactly ``VectorConfig.cycles(cmd)`` from acceptance to ``ready``."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In
from amaranth.sim import Simulator

from peforge.hw import intops
from peforge.hw.tile.vector import (ELEMENTWISE, REDUCTIONS, BMode, Post, VecOp, VectorCommand, VectorConfig,
                                    VectorUnit, execute, rmsnorm_program, rope_program, softmax_program,
                                    vector_cycles)

MEMORY = 256  # elements
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


class ElementMemory(wiring.Component):
    """``lanes`` memories of one 32-bit element each (element ``e`` in memory ``e % lanes`` at
    ``e // lanes``), so any run of ``lanes`` consecutive elements is one word of each: the
    unit's two read ports (1-cycle latency) and its write port."""

    def __init__(self, config: VectorConfig, depth: int):
        self.config = config
        self.mems = [Memory(shape=signed(32), depth=depth // config.lanes, init=[]) for _ in range(config.lanes)]
        super().__init__({"rd_a": In(config.read_signature()), "rd_b": In(config.read_signature()),
                          "wr": In(config.write_signature())})

    def elaborate(self, platform):
        m = Module()
        lanes = self.config.lanes
        shift = (lanes - 1).bit_length()
        for j, mem in enumerate(self.mems):
            m.submodules[f"mem{j}"] = mem
        for name in ("rd_a", "rd_b"):
            port = getattr(self, name)
            lo, hi = port.addr[:shift] if shift else 0, port.addr[shift:]
            lo_q = Signal(max(shift, 1), name=f"{name}_lo")
            m.d.sync += lo_q.eq(lo)
            reads = [mem.read_port() for mem in self.mems]
            for j, rp in enumerate(reads):
                m.d.comb += [rp.en.eq(port.en), rp.addr.eq(hi + (j < lo))]
            with m.Switch(lo_q):
                for r in range(lanes):
                    with m.Case(r):
                        m.d.comb += [port.data[k].eq(reads[(r + k) % lanes].data) for k in range(lanes)]
        wr = self.wr
        lo, hi = wr.addr[:shift] if shift else 0, wr.addr[shift:]
        writes = [mem.write_port() for mem in self.mems]
        with m.Switch(lo):
            for r in range(lanes):
                with m.Case(r):
                    for j, wp in enumerate(writes):
                        k = (j - r) % lanes
                        m.d.comb += [wp.addr.eq(hi + (j < r)), wp.data.eq(wr.data[k]),
                                     wp.en.eq(wr.en & wr.mask[k])]
        return m


def run_commands(config: VectorConfig, cases: list[tuple[list[VectorCommand], np.ndarray]]):
    """Simulate each case (a command list on a fresh memory image); returns, per case, the
    final memory and every command's measured cycles."""
    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = dut = VectorUnit(config)
    top.submodules.mem = mem = ElementMemory(config, MEMORY)
    wiring.connect(top, dut.rd_a, mem.rd_a)
    wiring.connect(top, dut.rd_b, mem.rd_b)
    wiring.connect(top, dut.wr, mem.wr)
    lanes = config.lanes
    outcome = []

    async def testbench(ctx):
        for commands, image in cases:
            for e, v in enumerate(image):
                ctx.set(mem.mems[e % lanes].data[e // lanes], int(v))
            measured = []
            for cmd in commands:
                assert ctx.get(dut.cmd.ready) and not ctx.get(dut.busy)
                ctx.set(dut.cmd.payload.as_value(), cmd.pack(config))
                ctx.set(dut.cmd.valid, 1)
                await ctx.tick()
                ctx.set(dut.cmd.valid, 0)
                cycles = 1
                while not ctx.get(dut.cmd.ready):
                    assert ctx.get(dut.busy)
                    await ctx.tick()
                    cycles += 1
                    assert cycles < 20000, f"{cmd} never finishes"
                measured.append(cycles)
            final = np.array([ctx.get(mem.mems[e % lanes].data[e // lanes]) for e in range(MEMORY)], dtype=np.int64)
            outcome.append((final, measured))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return outcome


def check(config, cases):
    for (commands, image), (final, measured) in zip(cases, run_commands(config, cases)):
        expected = image
        for cmd in commands:
            expected = execute(cmd, expected)
        wrong = np.flatnonzero(final != expected)
        assert not len(wrong), (f"{commands}: elements {wrong[:8].tolist()} are {final[wrong[:8]].tolist()}, "
                                f"golden {expected[wrong[:8]].tolist()}")
        assert measured == [config.cycles(cmd) for cmd in commands], commands


def image(rng, kind: str) -> np.ndarray:
    """A memory image: 32-bit random, extremes and zeros, or small values."""
    if kind == "wide":
        values = rng.integers(I32_MIN, I32_MAX, MEMORY, endpoint=True)
        corners = rng.integers(0, 4, MEMORY)
        return np.select([corners == 0, corners == 1], [rng.choice([I32_MIN, I32_MAX, 0, -1, 1], MEMORY), 0], values)
    return rng.integers(-kind, kind, MEMORY, endpoint=True)


EXP = intops.ExpConstants.of(2.0 ** -8)


def elementwise_cases(lanes: int, rng) -> list:
    """Every elementwise op: A at 0, B at 80, D at 160; rows of odd and one-element lengths."""
    shapes = [dict(length=2 * lanes + 1, rows=2, pitch_a=2 * lanes + 3, pitch_b=2 * lanes + 1, pitch_d=2 * lanes + 5),
              dict(length=1, rows=3, pitch_a=5, pitch_b=1, pitch_d=2),
              dict(length=lanes, rows=1)]
    ops = [
        dict(op=VecOp.ADD, b_mode=BMode.STREAM, out_bits=32),
        dict(op=VecOp.SUB, b_mode=BMode.ROW, out_bits=16),
        dict(op=VecOp.MUL, b_mode=BMode.STREAM, out_bits=32),
        dict(op=VecOp.MAX, b_mode=BMode.CONST, mult=-5, out_bits=32),
        dict(op=VecOp.MULSHIFT, b_mode=BMode.CONST, mult=intops.fixed_point(0.37)[0], shift=33, out_bits=8),
        dict(op=VecOp.MULSHIFT, b_mode=BMode.STREAM, shift=7, out_bits=32),
        dict(op=VecOp.EXP, b_mode=BMode.ROW, exp=EXP, out_bits=32),
        dict(op=VecOp.EXP, b_mode=BMode.CONST, mult=0, exp=intops.ExpConstants.of(2.0 ** -14), out_bits=24),
        dict(op=VecOp.SILU, exp=EXP, mult=EXP.one, shift=12, out_bits=32),
        dict(op=VecOp.SILU, exp=intops.ExpConstants.of(2.0 ** -5), mult=intops.ExpConstants.of(2.0 ** -5).one,
             shift=4, out_bits=16),
    ]
    cases = []
    for i, fields in enumerate(ops):
        shape = shapes[i % len(shapes)]
        cmd = VectorCommand(src_a=0, src_b=80, dst=160, **shape, **fields)
        cases.append(([cmd], image(rng, "wide")))
        # moderate values: products that do not saturate, inputs near 0 where exp is not 0
        cases.append(([cmd], image(rng, 2000 if fields["op"] in (VecOp.EXP, VecOp.SILU) else 40000)))
    return cases


def reduction_cases(lanes: int, rng) -> list:
    odd = dict(length=3 * lanes - 1, rows=3, pitch_a=3 * lanes + 1, pitch_d=2)
    one = dict(length=1, rows=2, pitch_a=7, pitch_d=1)
    cmds = [
        (VectorCommand(op=VecOp.RMAX, src_a=3, dst=200, **odd), "wide"),
        (VectorCommand(op=VecOp.RSUM, src_a=3, dst=200, shift=3, out_bits=30, **odd), "wide"),
        (VectorCommand(op=VecOp.RSUMSQ, src_a=3, dst=200, shift=40, **one), "wide"),
        (VectorCommand(op=VecOp.RSUMSQ, src_a=1, dst=200, shift=29, out_bits=20, **odd), "wide"),
        (VectorCommand(op=VecOp.RSUM, src_a=0, dst=200, post=Post.RECIP, shift=45, **odd), 1 << 20),
        (VectorCommand(op=VecOp.RMAX, src_a=0, dst=200, post=Post.RECIP, shift=5, out_bits=4, **one), 7),
        (VectorCommand(op=VecOp.RSUMSQ, src_a=2, dst=200, post=Post.RSQRT, guard=8, shift=40, **odd), 3000),
        (VectorCommand(op=VecOp.RSUMSQ, src_a=0, dst=200, post=Post.RSQRT, guard=0, shift=12, **one), 0),
    ]
    return [([cmd], image(rng, kind)) for cmd, kind in cmds]


def program_cases(lanes: int, rng) -> list:
    """Softmax and RMSNorm as the compiler issues them, against ``intops`` directly below."""
    length, rows = 2 * lanes + 1, 2
    softmax = softmax_program(src=0, dst=64, scratch=240, length=length, rows=rows, pitch=length + 2, scale=2.0 ** -6)
    rms = rmsnorm_program(src=0, dst=128, scratch=248, length=length, rows=rows, pitch=length + 2)
    rope = rope_program(x=0, cos=64, sin=96, dst=128, scratch=192, dim=2 * lanes + 2, rows=2,
                        pitch=2 * lanes + 3, shift=14)
    return [(softmax, image(rng, 400)), (rms, image(rng, 1500)), (rope, image(rng, 1 << 15))]


CONFIGS = [VectorConfig(lanes=2, sigmoid_bits=12), VectorConfig(lanes=4, sigmoid_bits=15),
           VectorConfig(lanes=8, addr_bits=8, length_bits=6, rows_bits=4, sigmoid_bits=12)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"V{c.lanes}")
def test_every_op_matches_golden_and_cycles(config):
    rng = np.random.default_rng(config.lanes)
    cases = elementwise_cases(config.lanes, rng) + reduction_cases(config.lanes, rng) + program_cases(config.lanes, rng)
    check(config, cases)


def test_programs_are_the_intops_operators():
    # the command sequences on a memory compute exactly intops.i_softmax / i_rmsnorm
    rng = np.random.default_rng(3)
    length, rows, pitch = 9, 3, 11
    mem = np.zeros(MEMORY, dtype=np.int64)
    x = rng.integers(-400, 400, (rows, length))
    for r in range(rows):
        mem[r * pitch:r * pitch + length] = x[r]
    out = mem
    for cmd in softmax_program(src=0, dst=64, scratch=240, length=length, rows=rows, pitch=pitch, scale=2.0 ** -6):
        out = execute(cmd, out)
    got = np.array([out[64 + r * pitch:][:length] for r in range(rows)])
    assert got.tolist() == intops.i_softmax(x, 2.0 ** -6)[0].tolist()
    out = mem
    for cmd in rmsnorm_program(src=0, dst=128, scratch=248, length=length, rows=rows, pitch=pitch):
        out = execute(cmd, out)
    got = np.array([out[128 + r * pitch:][:length] for r in range(rows)])
    assert got.tolist() == intops.i_rmsnorm(x)[0].tolist()


def test_rope_program_is_the_rotation():
    # against the rotation written out by hand: out = round((x cos - x_hi sin, x_hi cos + x_lo sin) / 2**s)
    rng = np.random.default_rng(5)
    dim, rows, pitch, s = 8, 3, 10, 14
    x = rng.integers(-128, 128, (rows, dim))
    angle = rng.uniform(-np.pi, np.pi, (rows, dim // 2))
    cos = np.round(np.cos(np.concatenate([angle, angle], axis=1)) * 2 ** s).astype(np.int64)
    sin = np.round(np.sin(angle) * 2 ** s).astype(np.int64)
    mem = np.zeros(MEMORY, dtype=np.int64)
    for r in range(rows):
        mem[r * pitch:][:dim] = x[r]
        mem[64 + r * pitch:][:dim] = cos[r]
        mem[96 + r * pitch:][:dim] = np.concatenate([-sin[r], sin[r]])
    for cmd in rope_program(x=0, cos=64, sin=96, dst=128, scratch=192, dim=dim, rows=rows, pitch=pitch, shift=s):
        mem = execute(cmd, mem)
    lo, hi = x[:, :dim // 2], x[:, dim // 2:]
    exact = np.concatenate([lo * cos[:, :dim // 2] - hi * sin, hi * cos[:, dim // 2:] + lo * sin], axis=1)
    expected = (exact + (1 << (s - 1))) >> s
    assert np.array([mem[128 + r * pitch:][:dim] for r in range(rows)]).tolist() == expected.tolist()


def test_cycles_by_hand():
    # V = 4, 10 elements: 3 beats a row; 2 rows
    kw = dict(lanes=4, length=10, rows=2, shift=20, sigmoid_bits=15)
    assert vector_cycles(op=VecOp.ADD, post=Post.NONE, **kw) == 6 + 3 + 1
    assert vector_cycles(op=VecOp.EXP, post=Post.NONE, **kw) == 6 + 7 + 1
    assert vector_cycles(op=VecOp.SILU, post=Post.NONE, **kw) == 6 + (6 + 16 + 2) + 1
    assert vector_cycles(op=VecOp.RSUM, post=Post.NONE, **kw) == 6 + 4 + 1
    assert vector_cycles(op=VecOp.RSUM, post=Post.RECIP, **kw) == 1 + 2 * (3 + 4 + 21 + 1)
    assert vector_cycles(op=VecOp.RSUMSQ, post=Post.RSQRT, **kw) == 1 + 2 * (3 + 4 + (64 + 1 + 32 + 1 + 21) + 1)
    # the cost model's use: arrays of lengths and rows broadcast
    lengths, rows = np.array([1, 4, 5, 64]), np.array([[1], [3]])
    assert vector_cycles(lanes=4, op=VecOp.MUL, post=Post.NONE, length=lengths, rows=rows, shift=0,
                         sigmoid_bits=15).tolist() == [[5, 5, 6, 20], [7, 7, 10, 52]]


def test_command_validation():
    with pytest.raises(ValueError, match="out_bits=0"):
        VectorCommand(op=VecOp.ADD, out_bits=0)
    with pytest.raises(ValueError, match="needs exp constants"):
        VectorCommand(op=VecOp.EXP)
    with pytest.raises(ValueError, match="length and rows"):
        VectorCommand(op=VecOp.ADD, length=0)
    with pytest.raises(ValueError, match="RSQRT is RSUMSQ's"):
        VectorCommand(op=VecOp.RSUM, post=Post.RSQRT)
    with pytest.raises(ValueError, match="dst=256 does not fit"):
        VectorCommand(op=VecOp.ADD, dst=256).pack(CONFIGS[2])  # 8 address bits
    with pytest.raises(ValueError, match="exceeds sigmoid_bits"):
        CONFIGS[0].cycles(VectorCommand(op=VecOp.SILU, exp=EXP, mult=EXP.one, shift=13))
    with pytest.raises(ValueError, match="exp\\(0\\)'s code"):
        VectorCommand(op=VecOp.SILU, exp=EXP, mult=1)
    with pytest.raises(ValueError, match="row 1 of D runs past"):
        execute(VectorCommand(op=VecOp.ADD, length=4, rows=2, dst=250, pitch_d=4), np.zeros(MEMORY))
    with pytest.raises(ValueError, match="lanes=3"):
        VectorConfig(lanes=3)


def random_command(rng, config: VectorConfig) -> tuple[VectorCommand, object]:
    """A random command whose A, B and D regions ([0, 80), [80, 160), [160, 256)) do not overlap."""
    op = VecOp(int(rng.choice([o.value for o in VecOp])))
    length, rows = int(rng.integers(1, min(3 * config.lanes + 3, 25))), int(rng.integers(1, 4))

    def pitch(n):  # rows of n elements within 76 elements (at most 3 rows of 24), not overlapping
        return int(rng.integers(n, (76 - n) // max(rows - 1, 1) + 1)) if rows > 1 else int(rng.integers(0, 9))

    fields = dict(op=op, length=length, rows=rows, src_a=int(rng.integers(0, 4)), src_b=80 + int(rng.integers(0, 4)),
                  dst=160 + int(rng.integers(0, 4)), pitch_a=pitch(length), pitch_b=pitch(length),
                  pitch_d=pitch(1 if op in REDUCTIONS else length), out_bits=int(rng.integers(1, 33)))
    kind: object = "wide" if rng.random() < 0.5 else int(rng.choice([3, 300, 40000]))
    if op in ELEMENTWISE:
        fields["b_mode"] = BMode(int(rng.integers(0, 3))) if op != VecOp.SILU else BMode.CONST
        fields["mult"] = int(rng.integers(I32_MIN, I32_MAX))
        fields["shift"] = int(rng.integers(0, 48)) if op == VecOp.MULSHIFT else 0
        if op in (VecOp.EXP, VecOp.SILU):
            k = intops.ExpConstants.of(2.0 ** -float(rng.uniform(1, 15)))
            fields["exp"] = k
            if op == VecOp.SILU:
                fields.update(mult=k.one, shift=int(rng.integers(1, config.sigmoid_bits + 1)))
    else:
        fields["post"] = Post(int(rng.integers(0, 3 if op == VecOp.RSUMSQ else 2)))
        fields["shift"] = int(rng.integers(0, 63))
        if fields["post"] == Post.RSQRT:
            fields["guard"] = int(rng.integers(0, 9))
            kind = int(rng.choice([0, 3, 3000]))  # sum of squares << 2 guard below 2**63
    return VectorCommand(**fields), kind


@pytest.mark.parametrize("lanes", [2, *(pytest.param(v, marks=pytest.mark.slow) for v in (1, 4, 8))])
def test_random_commands(lanes):
    config = VectorConfig(lanes=lanes, sigmoid_bits=10)
    rng = np.random.default_rng(100 + lanes)
    cases = []
    for _ in range(80):
        cmd, kind = random_command(rng, config)
        cases.append(([cmd], image(rng, kind)))
    check(config, cases)
