"""Synthesis with RTL memories as SRAM macros (real Yosys): the macros found are the memories the
RTL declares, the logic left excludes their storage, and tile figures price them by hand."""

from __future__ import annotations

import json
import math

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from peforge.hw.systolic import SystolicArray, SystolicConfig
from peforge.hw.tile.isa import End, Issue, Slot
from peforge.hw.tile.sequencer import Sequencer, SequencerConfig
from peforge.sim import macros, synth
from peforge.sim.macros import (MacroMemory, MemoryCounter, TileActivity, simulate_activity, synthesize_with_macros,
                                tile_figures)

SYSTOLIC = SystolicConfig(rows=2, cols=2, max_m=8, max_k=16, max_n=16)  # MAC PE: 8-bit a and w
# 2 slots: widest command 4 + 6 = 10 bits
SEQUENCER = SequencerConfig(slots=(Slot("dma", data.StructLayout({"cycles": 4, "tag": 6})),
                                   Slot("vec", data.StructLayout({"cycles": 5}))), depth=8)

# By hand from the configs:
# systolic ws accumulator: one word per row of M, C accumulators of 8 + 8 + log2(4096) = 28 bits
ACC = MacroMemory(name="acc", width=2 * (8 + 8 + 12), depth=8, read_ports=1, write_ports=1)
# sequencer instruction: arg max(10, 5, 2 slots) = 10 bits, slot 1 bit, op 2 bits
IMEM = MacroMemory(name="imem", width=10 + 1 + 2, depth=8, read_ports=1, write_ports=1)


@pytest.fixture(scope="module")
def designs():
    """Per design: (macro synthesis, plain synthesis, the memory by hand, the read register bits
    the macro takes with it).

    Both memories are read synchronously with an enable, and in both the read data register
    stays flops in the macro flow, as in the plain one (0 bits differ): Yosys does not fold it
    into the read port (the instruction memory's enable is a function of the word its register
    holds; the accumulator's read is transparent to the same cycle's write). The tile's logic
    thus over-counts one word's flops per memory."""
    out = {}
    for name, component, memory, register in (("systolic", SystolicArray(SYSTOLIC), ACC, 0),
                                              ("sequencer", Sequencer(SEQUENCER), IMEM, 0)):
        text = verilog.convert(component, name=name, emit_src=False)
        out[name] = (synthesize_with_macros(text, name), synth.synthesize(text, name), memory, register)
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One synthesis cache for the tile figure tests (the same sequencer: one synthesis)."""
    return tmp_path_factory.mktemp("macro-cache")


@pytest.mark.parametrize("name", ["systolic", "sequencer"])
def test_macros_are_the_declared_memories(designs, name):
    macros, plain, memory, _ = designs[name]
    assert macros.memories == (memory,)
    assert plain.memory_bits == memory.width * memory.depth  # the plain flow saw the same memory


@pytest.mark.parametrize("name", ["systolic", "sequencer"])
def test_logic_excludes_the_storage(designs, name):
    macros, plain, memory, register = designs[name]
    logic = macros.logic
    storage_flops = memory.width * memory.depth
    assert logic.memory_bits == 0 and not any(t.startswith("$mem") for t in logic.coarse_cells)
    # every other flop stays: also those fed by the read data (a cut leaving it undriven loses some)
    assert plain.flops - logic.flops == storage_flops + register
    assert plain.nand2_eq - logic.nand2_eq >= storage_flops * synth.NAND2_WEIGHTS["$_DFF_P_"]
    assert logic.flops > 0 and logic.depth > 0  # the logic itself is still there


def test_systolic_logic_keeps_its_multipliers(designs):
    macros, plain, _, _ = designs["systolic"]
    assert macros.logic.multipliers == plain.multipliers == 2 * 2  # one MAC per cell


def test_cut_keeps_the_logic_on_both_sides_of_a_memory():
    """Write data ``a + b`` and read data ``+ c`` to the output: both 8-bit adders must stay
    (a cut that dropped the memory's pins would let Yosys remove one or both)."""
    text = """
module top(input clk, input [2:0] wa, input [2:0] ra, input [7:0] a, input [7:0] b, input [7:0] c,
           input we, output [7:0] y);
  reg [7:0] mem [0:7];
  reg [7:0] q;
  always @(posedge clk) begin
    if (we) mem[wa] <= a + b;
    q <= mem[ra];
  end
  assign y = q + c;
endmodule
"""
    result = synthesize_with_macros(text, "top")
    assert result.memories == (MacroMemory(name="mem", width=8, depth=8, read_ports=1, write_ports=1),)
    assert result.logic.coarse_cells.get("$add") == 2
    assert result.logic.flops == 0  # the read register belongs to the macro (Yosys merges it in)


def test_a_case_table_stays_logic():
    """Yosys turns a case table into a ROM ($mem_v2); it is no RTL memory, so it is mapped."""
    text = """
module top(input [2:0] a, output reg [7:0] y);
  always @* case (a)
    0: y = 8'd3; 1: y = 8'd17; 2: y = 8'd99; 3: y = 8'd1; 4: y = 8'd200; 5: y = 8'd77; 6: y = 8'd5; 7: y = 8'd13;
  endcase
endmodule
"""
    result = synthesize_with_macros(text, "top")
    assert result.memories == () and result.logic.memory_bits == 8 * 8
    assert result.logic.gates > 0 and result.logic.flops == 0


class Nested(wiring.Component):
    """A named submodule with a memory and an unnamed one with another (names as Amaranth gives them)."""

    def __init__(self):
        super().__init__({"addr": In(3), "wdata": In(6), "we": In(1), "q": Out(6)})

    def elaborate(self, platform):
        m = Module()
        outs = []
        for name in ("spad", None):
            inner = Module()
            mem = Memory(shape=6, depth=8, init=[])
            inner.submodules.bank = mem
            wr, rd = mem.write_port(), mem.read_port()
            inner.d.comb += [wr.addr.eq(self.addr), wr.data.eq(self.wdata ^ len(outs)), wr.en.eq(self.we),
                             rd.addr.eq(self.addr)]
            outs.append(rd.data)
            if name:
                m.submodules[name] = inner
            else:
                m.submodules += inner
        m.d.comb += self.q.eq(outs[0] + outs[1])
        return m


def test_counter_and_synthesis_name_memories_alike():
    component = Nested()
    names = {m.name for m in synthesize_with_macros(verilog.convert(Nested(), name="top", emit_src=False),
                                                    "top").memories}
    assert names == set(MemoryCounter(component).memories) == {"spad.bank", "U$1.bank"}


def run_sequencer(dut: Sequencer, words: list[int], box: dict):
    async def bench(ctx):
        for addr, word in enumerate(words):
            ctx.set(dut.imem.addr, addr)
            ctx.set(dut.imem.data, word)
            ctx.set(dut.imem.en, 1)
            await ctx.tick()
        ctx.set(dut.imem.en, 0)
        ctx.set(dut.start, 1)
        ctx.set(dut.units.dma.cmd.ready, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        while not ctx.get(dut.done):
            await ctx.tick()
        box["done"] = True
    return bench


def test_tile_figures_by_hand(cache, monkeypatch):
    dut = Sequencer(SEQUENCER)
    words = SEQUENCER.encode([Issue("dma", {"cycles": 1, "tag": 5}), End()])
    box = {}
    activity = simulate_activity(dut, run_sequencer(dut, words, box))
    assert box["done"] and activity.writes == {"imem": 2}
    figures = tile_figures(Sequencer(SEQUENCER), "45nm", activity, top="sequencer", cache_dir=cache)
    logic = figures.synth.logic
    assert [c.memory for c in figures.macros] == [IMEM]
    bits = 13 * 8
    # 45 nm: 0.58 µm² per bit, 0.798 µm² per NAND2 equivalent
    assert figures.macro_mm2 == {"imem": pytest.approx(bits * 0.58 / 1e6)}
    assert figures.logic_mm2 == pytest.approx(logic.nand2_eq * 0.798 / 1e6)
    assert figures.total_mm2 == pytest.approx((bits * 0.58 + logic.nand2_eq * 0.798) / 1e6)
    # 13 bytes lies below 8 KB: extrapolated on the 8 KB - 32 KB segment (10 -> 20 pJ per 64 bits),
    # slope ln 2 / ln 4 = 1/2 in log-log
    pj_per_bit = 10 / 64 * math.sqrt(13 / 8192)
    accesses = activity.reads["imem"] + activity.writes["imem"]
    assert figures.macro_pj == {"imem": pytest.approx(accesses * 13 * pj_per_bit)}
    # logic: toggles per bit per cycle x NAND2 eq. x 1.15 fJ, plus 2.3 fJ per flop per cycle
    logic_pj = (activity.toggles / activity.bits * logic.nand2_eq * 1.15e-3 + logic.flops * 2.3e-3 * activity.cycles)
    assert figures.logic_pj == pytest.approx(logic_pj)
    assert figures.total_pj == pytest.approx(logic_pj + accesses * 13 * pj_per_bit)
    assert figures.cycles == activity.cycles
    assert set(figures.constants) == {"um2_per_nand2", "pj_per_gate_toggle", "pj_per_flop_clock"}
    assert all(c["source"] for c in figures.constants.values())
    report = json.loads(json.dumps(figures.to_dict()))
    assert report["total_pj"] == pytest.approx(figures.total_pj) and report["macros"][0]["memory"]["width"] == 13
    # the second call is a cache hit: no synthesis, the result read back equals the first
    assert len(list(cache.iterdir())) == 1

    def no_synthesis(*args):
        raise AssertionError("synthesized again instead of reading the cache")

    monkeypatch.setattr(macros, "synthesize_with_macros", no_synthesis)
    again = tile_figures(Sequencer(SEQUENCER), "7nm", None, top="sequencer", cache_dir=cache)
    assert again.synth == figures.synth and again.logic_pj is None and again.total_pj is None
    assert again.macro_mm2 == {"imem": pytest.approx(bits * 0.045 / 1e6)}


def test_tile_figures_checks_activity_names(cache):
    text = verilog.convert(Sequencer(SEQUENCER), name="sequencer", emit_src=False)
    stray = TileActivity(cycles=4, reads={"imem": 4, "spad.bank": 1}, writes={"imem": 0}, toggles=3, bits=10)
    with pytest.raises(ValueError, match="memories synthesis did not find: spad.bank; found: imem"):
        tile_figures(text, "45nm", stray, top="sequencer", cache_dir=cache)
    missing = TileActivity(cycles=4, reads={}, writes={}, toggles=3, bits=10)
    with pytest.raises(ValueError, match="no counts for memories imem"):
        tile_figures(text, "45nm", missing, top="sequencer", cache_dir=cache)
