"""Macro pricing, the netlist cut and the activity record (:mod:`peforge.sim.macros`) without tools:
figures by hand from the technology presets' published constants."""

from __future__ import annotations

import math

import pytest

from peforge.sim.energy import count_toggles
from peforge.sim.macros import MacroMemory, MacroSynthResult, TileActivity, cut_memories, price_macros
from peforge.sim.synth import SynthResult


def test_a_macro_of_8_kib_is_priced_at_the_source_point():
    """64 bits x 1024 words = 8 KiB: Horowitz's 8 KB point, 10 pJ per 64-bit read (45 nm)."""
    memory = MacroMemory(name="buf", width=64, depth=1024, read_ports=1, write_ports=1)
    (cost,) = price_macros([memory], "45nm")
    assert cost.memory == memory
    assert cost.area_um2 == pytest.approx(64 * 1024 * 0.58)
    assert cost.read_pj_per_bit == pytest.approx(10 / 64)
    assert cost.write_pj_per_bit == pytest.approx(10 / 64)  # assumed equal to a read
    assert cost.access_pj(reads=3, writes=2) == pytest.approx(5 * 64 * 10 / 64)
    (small,) = price_macros([memory], "7nm")
    assert small.area_um2 == pytest.approx(64 * 1024 * 0.045)
    assert small.read_pj_per_bit == pytest.approx(10 / 64 * 0.1)


def test_each_macro_at_its_own_size():
    """Between 8 KB and 32 KB (10 and 20 pJ per 64 bits) the energy is log-log linear: 16 KiB
    lies half way, at 10 x sqrt(2) pJ; 13 bytes lies on the same segment extended down."""
    mid = MacroMemory(name="mid", width=32, depth=4096, read_ports=1, write_ports=1)
    tiny = MacroMemory(name="tiny", width=13, depth=8, read_ports=1, write_ports=0)
    costs = price_macros((mid, tiny), "45nm")
    assert [c.memory.name for c in costs] == ["mid", "tiny"]
    assert costs[0].read_pj_per_bit == pytest.approx(10 * math.sqrt(2) / 64)
    assert costs[1].read_pj_per_bit == pytest.approx(10 / 64 * math.sqrt(13 / 8192))
    assert costs[1].area_um2 == pytest.approx(104 * 0.58)
    assert "approx" in costs[0].sources["area_um2"] and "approx" in costs[0].sources["write_pj_per_bit"]


def test_memory_and_activity_are_validated():
    with pytest.raises(ValueError, match="memory 'm': width must be at least 1, not 0"):
        MacroMemory(name="m", width=0, depth=4, read_ports=1, write_ports=1)
    with pytest.raises(ValueError, match="memory 'm': read_ports must be >= 0, not -1"):
        MacroMemory(name="m", width=1, depth=4, read_ports=-1, write_ports=1)
    with pytest.raises(ValueError, match="cycles must be at least 1, not 0"):
        TileActivity(cycles=0, reads={}, writes={}, toggles=0, bits=1)
    assert TileActivity(cycles=4, reads={}, writes={}, toggles=6, bits=3).alpha == 0.5


def _netlist():
    """A flattened module with one memory: 2 address bits (3, 4; bit 4 shared by both ports),
    2 data bits written (5, 6), an enable (7), read data 8, 9 feeding an output, a clock (2)."""
    bits32 = lambda n: format(n, "032b")  # noqa: E731
    memory = {
        "type": "$mem_v2",
        "parameters": {"WIDTH": bits32(2), "SIZE": bits32(4), "RD_PORTS": bits32(1), "WR_PORTS": bits32(1)},
        "port_directions": {},
        "connections": {"RD_CLK": [2], "RD_EN": ["1"], "RD_ADDR": [3, 4], "RD_DATA": [8, 9], "RD_ARST": ["0"],
                        "WR_CLK": [2], "WR_EN": [7, 7], "WR_ADDR": [4, 3], "WR_DATA": [5, 6]},
    }
    gate = {"type": "$and", "parameters": {}, "port_directions": {"Y": "output"}, "connections": {"Y": [10]}}
    rom = {**memory, "connections": {"RD_ADDR": [3, 4], "RD_DATA": [11, 12]}}  # from a case table
    return {"modules": {"top": {"ports": {"clk": {"direction": "input", "bits": [2]}},
                                "cells": {"spad.bank": memory, "$and$1": gate, "$auto$proc_rom.cc:1$2": rom},
                                "netnames": {}}}}


def test_cut_turns_memory_pins_into_ports():
    netlist, memories = cut_memories(_netlist(), "top")
    module = netlist["modules"]["top"]
    assert memories == (MacroMemory(name="spad.bank", width=2, depth=4, read_ports=1, write_ports=1),)
    assert set(module["cells"]) == {"$and$1", "$auto$proc_rom.cc:1$2"}  # Yosys' ROM is logic
    assert module["ports"]["spad.bank__macro_rd"] == {"direction": "input", "bits": [8, 9]}
    # each pin bit once, constants and the clock left out
    ports_in = module["ports"]["spad.bank__macro_in"]
    assert ports_in["direction"] == "output" and sorted(ports_in["bits"]) == [3, 4, 5, 6, 7]


def test_result_round_trips_through_a_dict():
    logic = SynthResult(top="t", cells={"$_NAND_": 3}, flops=0, nand2_eq=3.0, transistors=12, depth=2,
                        coarse_cells={"$and": 1}, multipliers=0)
    result = MacroSynthResult(logic=logic, memories=(MacroMemory(name="a", width=2, depth=3, read_ports=1,
                                                                 write_ports=1),))
    assert MacroSynthResult.from_dict(result.to_dict()) == result


VCD = """$timescale 1 ns $end
$scope module top $end
$var wire 1 ! clk $end
$var wire 4 " x $end
$var wire 4 # mem[0] $end
$var wire 4 $ mem[1] $end
$upscope $end
$enddefinitions $end
#0
0!
b0 "
b0 #
b0 $
#5
1!
#10
0!
b1111 "
b11 #
#15
1!
"""


def test_memory_rows_can_be_left_out_of_toggles(tmp_path):
    path = tmp_path / "rows.vcd"
    path.write_text(VCD)
    every = count_toggles(path)
    logic = count_toggles(path, memory_rows=False)
    assert (every.toggles, every.bits) == (4 + 2, 4 + 4 + 4)
    assert (logic.toggles, logic.bits) == (4, 4) and logic.per_signal == {"x": 4}
