"""The tile's sequencer in the Amaranth simulator, driving test units that keep busy for the
cycles their command says: random programs, each run's start-to-done cycles and every command's
accept cycle and bits against the exact timeline of ``isa.program_timeline``."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.sim import Simulator

from peforge.hw.tile.isa import (End, Issue, Nop, Op, Slot, Wait, encode, instruction_layout, pack_command,
                                 program_timeline)
from peforge.hw.tile.sequencer import Sequencer, SequencerConfig
from peforge.hw.tile.unit import unit_ports
from peforge.sim.macros import MemoryCounter

# Slot layouts of different widths, `cycles` not always at bit 0 (so padding and offsets show).
LAYOUTS = {
    "dma": data.StructLayout({"cycles": 4, "tag": 6}),
    "gemm0": data.StructLayout({"tag": 11, "cycles": 5}),
    "vec": data.StructLayout({"cycles": 3}),
    "gemm1": data.StructLayout({"tag": 2, "cycles": 4, "pad": 1}),
    "x": data.StructLayout({"cycles": 4, "tag": 20}),
}
SLOT_SETS = [["vec"], ["dma", "gemm0", "vec"], list(LAYOUTS)]


class DelayUnit(wiring.Component):
    """A unit obeying the contract of ``hw/tile/unit.py``: a command accepted in cycle t keeps it
    busy (``ready`` low) until cycle t + ``payload.cycles`` (at least 1); it counts its commands."""

    def __init__(self, layout: data.StructLayout):
        super().__init__({**unit_ports(layout), "accepted": wiring.Out(16)})

    def elaborate(self, platform):
        m = Module()
        remaining = Signal(len(self.cmd.payload.cycles))
        take = self.cmd.valid & self.cmd.ready
        m.d.comb += [self.cmd.ready.eq(remaining == 0), self.busy.eq(remaining != 0)]
        with m.If(take):
            m.d.sync += [remaining.eq(self.cmd.payload.cycles - 1), self.accepted.eq(self.accepted + 1)]
        with m.Elif(remaining != 0):
            m.d.sync += remaining.eq(remaining - 1)
        return m


def _slots(names):
    return [Slot(name, LAYOUTS[name]) for name in names]


def _cycles_field(slot_name: str, command) -> int:
    return command["cycles"]


def random_program(rng: random.Random, names: list[str], length: int) -> list:
    """Issues to random slots (1 to 7 cycles, occasionally the longest the field holds), WAITs on
    random masks, NOPs, an END, and junk after it that must never run."""
    program = []
    for _ in range(length):
        kind = rng.random()
        if kind < 0.6:
            name = rng.choice(names)
            layout = LAYOUTS[name]
            top = (1 << dict(iter(layout))["cycles"].width) - 1
            cycles = top if rng.random() < 0.1 else rng.randint(1, min(7, top))
            fields = {key: rng.randrange(1 << f.width) for key, f in layout}
            program.append(Issue(name, {**fields, "cycles": cycles}))
        elif kind < 0.85:
            program.append(Wait(tuple(n for n in names if rng.random() < 0.5)))
        else:
            program.append(Nop())
    return program + [End(), Issue(names[0], {"cycles": 1}), Wait(tuple(names))]


def run_programs(names: list[str], programs: list[list[int]], *, depth: int = 64, junk: int = 0,
                 hold_start: bool = False, reads: dict | None = None):
    """Load and run each program (a list of words) in turn on one sequencer; per run: the cycle
    ``done`` rose (start is cycle 0), the ``cycles`` output then, and the accepted commands as
    ``(cycle, slot, bits)``; ``junk`` words are written after each program's own. ``hold_start``:
    keep ``start`` high until ``done`` (it must be ignored while running), else one cycle.
    ``reads``: filled with the reads of each memory over the whole simulation (loading included)."""
    slots = _slots(names)
    top = Module()
    top.submodules.seq = seq = Sequencer(SequencerConfig(slots=slots, depth=depth))
    units = {}
    for name in names:
        top.submodules[name] = units[name] = DelayUnit(LAYOUTS[name])
        seq.connect_unit(top, name, units[name])
    results = []

    async def bench(ctx):
        for words in programs:
            for addr, word in enumerate(words + [(1 << len(seq.imem.data)) - 1] * junk):
                ctx.set(seq.imem.addr, addr)
                ctx.set(seq.imem.data, word)
                ctx.set(seq.imem.en, 1)
                await ctx.tick()
            ctx.set(seq.imem.en, 0)
            await ctx.tick()
            assert not ctx.get(seq.busy)
            ctx.set(seq.start, 1)
            await ctx.tick()  # the edge ending cycle 0
            ctx.set(seq.start, hold_start)
            cycle, accepts = 1, []
            while not ctx.get(seq.done):
                assert ctx.get(seq.busy), f"busy low in cycle {cycle} before done"
                for name in names:
                    cmd = getattr(seq.units, name).cmd
                    if ctx.get(cmd.valid) and ctx.get(cmd.ready):
                        accepts.append((cycle, name, ctx.get(cmd.payload.as_value())))
                await ctx.tick()
                cycle += 1
                assert cycle < 10_000, "no done"
            ctx.set(seq.start, 0)
            counted = ctx.get(seq.cycles)
            before = {name: ctx.get(unit.accepted) for name, unit in units.items()}
            for _ in range(4):  # after done: nothing more is issued, done holds
                await ctx.tick()
                assert ctx.get(seq.done) and not ctx.get(seq.busy)
            assert {name: ctx.get(unit.accepted) for name, unit in units.items()} == before
            results.append((cycle, counted, accepts))

    counter = MemoryCounter(top)
    sim = Simulator(counter.fragment)
    sim.add_clock(1e-6)
    counter.attach(sim)
    sim.add_testbench(bench)
    sim.run()
    if reads is not None:
        reads.update(counter.reads)
    return results


def expected(program):
    """The timeline's done cycle and its issues as ``(cycle, slot, bits)``."""
    timeline = program_timeline(program, _cycles_field)
    issues = [(s.issued, s.instruction.slot, pack_command(LAYOUTS[s.instruction.slot], s.instruction.command))
              for s in timeline.steps if isinstance(s.instruction, Issue)]
    return timeline.cycles, issues


def _check_random(names, seed: int, count: int, hold_start: bool) -> None:
    rng = random.Random(seed)
    programs = [random_program(rng, names, rng.randint(1, 40)) for _ in range(count)]
    slots = _slots(names)
    results = run_programs(names, [encode(p, slots) for p in programs], hold_start=hold_start)
    for program, (done, counted, accepts) in zip(programs, results):
        cycles, issues = expected(program)
        assert (done, counted) == (cycles, cycles), program
        assert accepts == issues, program


@pytest.mark.parametrize("hold_start", [False, True], ids=["start-pulse", "start-held"])
@pytest.mark.parametrize("names", SLOT_SETS, ids=lambda names: f"{len(names)}slots")
def test_random_programs_match_timeline(names, hold_start):
    _check_random(names, seed=len(names) + 10 * hold_start, count=8, hold_start=hold_start)


@pytest.mark.slow
@pytest.mark.parametrize("names", SLOT_SETS, ids=lambda names: f"{len(names)}slots")
def test_many_random_programs_match_timeline(names):
    _check_random(names, seed=100 + len(names), count=300, hold_start=False)


def test_hand_timeline_back_to_back_stalls_and_waits():
    """A program whose cycles are worked out by hand (start in cycle 0, first decode in cycle 1):
    dma c=3 issued at 1 (busy until 4); gemm0 c=5 at 2 (until 7); dma again stalls until 4 (c=1,
    until 5); WAIT gemm0 leaves at 7; vec c=2 at 8 (until 10); NOP at 9; END waits for vec: 10;
    done at 11."""
    names = ["dma", "gemm0", "vec"]
    program = [Issue("dma", {"cycles": 3, "tag": 9}), Issue("gemm0", {"cycles": 5}), Issue("dma", {"cycles": 1}),
               Wait("gemm0"), Issue("vec", {"cycles": 2}), Nop(), End()]
    [(done, counted, accepts)] = run_programs(names, [encode(program, _slots(names))])
    assert (done, counted) == (11, 11)
    assert [(c, n) for c, n, _ in accepts] == [(1, "dma"), (2, "gemm0"), (4, "dma"), (8, "vec")]
    assert accepts[0][2] == 3 | 9 << 4  # the dma layout: cycles in bits 0-3, tag from bit 4


def test_empty_memory_is_end_and_restarts():
    """Zero words are END: done two cycles after start; a second run after the first restarts cleanly."""
    names = ["dma", "gemm0", "vec"]
    program = [Issue("vec", {"cycles": 7}), End()]
    results = run_programs(names, [[0], encode(program, _slots(names)), [0]], junk=3)
    assert [(done, counted) for done, counted, _ in results] == [(2, 2), (1 + 7 + 1, 9), (2, 2)]


def test_unknown_slot_index_is_skipped_like_nop():
    """A hand-made UNIT word naming slot 3 of three (the encoder refuses it) takes one cycle, issues nothing."""
    names = ["dma", "gemm0", "vec"]
    layout = instruction_layout(_slots(names))
    bad = layout.const({"op": Op.UNIT, "slot": 3, "arg": 1}).as_bits()
    words = encode([Issue("dma", {"cycles": 2})], _slots(names)) + [bad] + encode([End()], _slots(names))
    [(done, _, accepts)] = run_programs(names, [words])
    assert done == program_timeline([Issue("dma", {"cycles": 2}), Nop(), End()], _cycles_field).cycles
    assert [(c, n) for c, n, _ in accepts] == [(1, "dma")]


def test_program_filling_the_memory():
    """Depth 5 (not a power of two), a program of exactly 5 words ending in its last one, run twice:
    the second run starts again at address 0."""
    names = ["vec"]
    depth = 5
    program = [Issue("vec", {"cycles": 1})] * (depth - 1) + [End()]
    results = run_programs(names, [encode(program, _slots(names))] * 2, depth=depth)
    cycles = program_timeline(program, _cycles_field).cycles
    assert cycles == 1 + 4 + 1  # four 1-cycle issues from cycle 1, END at 5, done at 6
    assert [(done, counted) for done, counted, _ in results] == [(cycles, cycles)] * 2
    assert [c for c, _, _ in results[1][2]] == [1, 2, 3, 4]


def test_instruction_memory_is_read_only_when_fetching():
    """The sequencer reads its instruction memory once at start and once per instruction leaving
    decode: never while loading, stalled or idle. Here 5 reads (start; the two issues, the second
    after a 6-cycle stall; WAIT; END) over a 15-cycle run, 4 words loaded and 4 idle cycles after."""
    names = ["vec"]
    program = [Issue("vec", {"cycles": 6}), Issue("vec", {"cycles": 6}), Wait(("vec",)), End()]
    reads: dict = {}
    [(done, _, _)] = run_programs(names, [encode(program, _slots(names))], reads=reads)
    assert done == 1 + 6 + 6 + 2  # the second issue at 7, WAIT leaves at 13, END at 14
    assert reads == {"seq.imem": 5}
