"""Memory access counting in the Amaranth simulator (:mod:`peforge.sim.macros`): reads and writes of
every memory of a short run against counts made by hand from what the testbench drove."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from peforge.hw.systolic import SystolicArray, SystolicConfig
from peforge.hw.tile.isa import End, Issue, Slot
from peforge.hw.tile.sequencer import Sequencer, SequencerConfig
from peforge.sim.bench import AmaranthBench, drive_stream
from peforge.sim.energy import count_toggles
from peforge.sim.macros import MemoryCounter, simulate_activity
from peforge.sim.testbench.systolic import Stimulus, beats_of


class Regs(wiring.Component):
    """4 words of 4 bits, written on ``we``, read combinationally (always)."""

    def __init__(self):
        super().__init__({"addr": In(2), "wdata": In(4), "we": In(1), "q": Out(4)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = regs = Memory(shape=4, depth=4, init=[])
        wr, rd = regs.write_port(), regs.read_port(domain="comb")
        m.d.comb += [wr.addr.eq(self.addr), wr.data.eq(self.wdata), wr.en.eq(self.we),
                     rd.addr.eq(self.addr), self.q.eq(rd.data)]
        return m


class TwoMemories(wiring.Component):
    """``bank``: 8 words of 8 bits, a synchronous read port enabled by ``ren`` and a write port of
    two 4-bit lanes (``wen``: a bit per lane); an unnamed submodule with a :class:`Regs`."""

    def __init__(self):
        super().__init__({"raddr": In(3), "ren": In(1), "waddr": In(3), "wdata": In(8), "wen": In(2),
                          "q": Out(8), "r_addr": In(2), "r_we": In(1), "r_q": Out(4)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = Memory(shape=8, depth=8, init=[])
        wr, rd = bank.write_port(granularity=4), bank.read_port()
        m.d.comb += [wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.wen),
                     rd.addr.eq(self.raddr), rd.en.eq(self.ren), self.q.eq(rd.data)]
        m.submodules += (regs := Regs())
        m.d.comb += [regs.addr.eq(self.r_addr), regs.wdata.eq(self.wdata), regs.we.eq(self.r_we),
                     self.r_q.eq(regs.q)]
        return m


# Per cycle: (ren, wen, r_we); hand counts below.
PATTERN = [(1, 0, 0), (0, 1, 1), (0, 2, 0), (1, 3, 1), (0, 0, 0), (1, 0, 1), (0, 1, 0)]


def drive_two_memories(dut: TwoMemories):
    async def bench(ctx):
        for cycle, (ren, wen, r_we) in enumerate(PATTERN):
            ctx.set(dut.ren, ren)
            ctx.set(dut.wen, wen)
            ctx.set(dut.r_we, r_we)
            ctx.set(dut.waddr, cycle)
            ctx.set(dut.r_addr, cycle % 4)  # so the comb read is no alias of one row
            ctx.set(dut.wdata, 0x11 * cycle)
            await ctx.tick()
        ctx.set(dut.wen, 0)
        ctx.set(dut.ren, 0)
        ctx.set(dut.r_we, 0)
    return bench


def test_counts_follow_enables_by_hand():
    dut = TwoMemories()
    activity = simulate_activity(dut, drive_two_memories(dut))
    assert activity.cycles == 7
    # bank: reads where ren = 1 (cycles 0, 3, 5), writes where any lane is enabled (1, 2, 3, 6);
    # the unnamed submodule (index 1 of the top: U$1) holds regs: a comb port reads every cycle
    assert activity.reads == {"bank": 3, "U$1.regs": 7}
    assert activity.writes == {"bank": 4, "U$1.regs": 3}


def test_logic_toggles_leave_memory_rows_out(tmp_path):
    """The same run's waves counted with memory rows have exactly their 8 x 8 + 4 x 4 bits more."""
    dut = TwoMemories()
    activity = simulate_activity(dut, drive_two_memories(dut))
    again = TwoMemories()
    sim = Simulator(again)
    sim.add_clock(1e-8)
    sim.add_testbench(drive_two_memories(again))
    with sim.write_vcd(str(tmp_path / "run.vcd")):
        sim.run()
    with_rows = count_toggles(tmp_path / "run.vcd")
    assert with_rows.bits - activity.bits == 8 * 8 + 4 * 4
    assert 0 < activity.toggles < with_rows.toggles


def test_counter_finds_memories_and_their_ports():
    counter = MemoryCounter(TwoMemories())
    assert set(counter.memories) == {"bank", "U$1.regs"}
    assert counter.memories["bank"].depth == 8 and counter.memories["U$1.regs"].depth == 4


def test_counter_rejects_a_port_of_another_domain():
    class Other(wiring.Component):
        def __init__(self):
            super().__init__({"q": Out(4)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = mem = Memory(shape=4, depth=2, init=[])
            rd = mem.read_port(domain="fast")
            m.d.comb += self.q.eq(rd.data)
            return m

    with pytest.raises(ValueError, match="memory 'mem' has a read port in domain 'fast'"):
        MemoryCounter(Other())


class TickCount:
    """An :class:`AmaranthBench` that counts its clock edges."""

    def __init__(self, bench: AmaranthBench):
        self.bench, self.ticks = bench, 0

    def set(self, port, value):
        self.bench.set(port, value)

    def get(self, port):
        return self.bench.get(port)

    async def tick(self):
        await self.bench.tick()
        self.ticks += 1


def test_systolic_accumulator_accesses_by_hand():
    """ws 2 x 2 MAC array (1 lane), GEMM 3 x 6 x 4: K folds of R = 2 k values -> 3 folds, 2 column
    blocks of C = 2; the accumulator buffer is written for every row of every K fold but the last:
    3 rows x 2 folds x 2 blocks = 12 writes; its read port is synchronous and enabled only for a
    row arriving at a fold an earlier fold wrote: 3 rows x 2 later folds x 2 blocks = 12 reads."""
    cfg = SystolicConfig(rows=2, cols=2, max_m=8, max_k=16, max_n=16)
    dut = SystolicArray(cfg)
    rng = np.random.default_rng(1)
    stim = Stimulus(cfg, rng)
    beats = beats_of(cfg, stim.random(3, 6, 4), rng, stim)
    box = {}

    async def bench(ctx):
        box["bench"] = counted = TickCount(AmaranthBench(ctx, dut, None))
        trace = await drive_stream(counted, beats, 3 * 2)  # 3 rows per column block
        box["outputs"] = len(trace.outputs)

    activity = simulate_activity(dut, bench)
    assert box["outputs"] == 6
    assert activity.writes == {"acc": 12}
    assert activity.cycles == box["bench"].ticks
    assert activity.reads == {"acc": 12}


def test_sequencer_instruction_memory_accesses_by_hand():
    """Loading a 3-word program is 3 writes; the sequencer reads a word only when it fetches: at
    start (word 0), and as each instruction leaves decode (words 1, 2, and the one after END):
    1 + 3 = 4 reads, however long the run."""
    slots = (Slot("dma", data.StructLayout({"cycles": 4})),)
    cfg = SequencerConfig(slots=slots, depth=8)
    dut = Sequencer(cfg)
    words = cfg.encode([Issue("dma", {"cycles": 1}), Issue("dma", {"cycles": 1}), End()])
    box = {"ticks": 0}

    async def bench(ctx):
        async def tick():
            await ctx.tick()
            box["ticks"] += 1

        for addr, word in enumerate(words):
            ctx.set(dut.imem.addr, addr)
            ctx.set(dut.imem.data, word)
            ctx.set(dut.imem.en, 1)
            await tick()
        ctx.set(dut.imem.en, 0)
        ctx.set(dut.start, 1)
        ctx.set(dut.units.dma.cmd.ready, 1)
        await tick()
        ctx.set(dut.start, 0)
        while not ctx.get(dut.done):
            await tick()
            assert box["ticks"] < 100

    activity = simulate_activity(dut, bench)
    assert activity.writes == {"imem": 3}
    assert activity.reads == {"imem": 4} and activity.cycles == box["ticks"]
