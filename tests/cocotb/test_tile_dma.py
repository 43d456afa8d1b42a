"""The DMA's exported Verilog under cocotb on Verilator and Icarus, against cocotbext-axi's AxiRam.

One build per simulator runs every transfer: random 2-D loads and stores (unaligned rows, row
lengths no bus divides, one-byte rows, rows across 4 KiB) over three memory models (full speed;
throttled to a beat every 3 cycles with a read latency of 12; a read latency of 40 that the
outstanding limit cannot hide). The AxiRam is timed as
:class:`peforge.hw.tile.dma.MemoryModel` states: its pause pattern sets the beat period, and a
latency model of the testbench (:class:`peforge.sim.cocotb_dma.TimedRam`: holding the AxiRam's
first read of a burst, and its write response) the latencies. Checked: the data (scratchpad
dumped after each load, the whole AxiRam after each store, against the golden byte loop), the
bursts (INCR, full width, at most ``max_burst`` beats, never across 4 KiB, each row's words once),
every measured cycle count equal to ``DmaConfig.cycles``, and the AXI4-Lite registers read through
AxiLiteMaster.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from tools import need

from peforge.hw.tile.dma import DmaCommand, DmaConfig, MemoryModel
from peforge.sim.tile_dma import burst_problems, random_commands, run_dma_cocotb
from peforge.sim.tools import missing_simulator

CONFIG = DmaConfig(bus_bytes=8, max_burst=4, outstanding=3, addr_bits=32, spad_addr_bits=10, count_bits=12)
# Beyond the CI budget (--slow): 32-bit elements on a 4-byte bus, one burst in flight, long bursts.
WIDE_ELEMS = DmaConfig(bus_bytes=4, max_burst=16, outstanding=1, addr_bits=32, elem_bits=32, spad_addr_bits=10,
                       count_bits=12)
SPAD_ELEMS = 1024
DRAM_BYTES = 3 * 4096
MEMORIES = [MemoryModel(read_latency=2, write_latency=2, period=1),
            MemoryModel(read_latency=12, write_latency=5, period=3),
            MemoryModel(read_latency=40, write_latency=9, period=1)]


def _phases(config: DmaConfig, seed: int, per_phase: int) -> list[dict]:
    rng = random.Random(seed)
    long_row = DmaCommand(dir="load", dram_addr=4096 - 100, spad_addr=5, rows=2, row_bytes=300, dram_stride=4000,
                          spad_stride=300 // config.elem_bytes)
    phases = []
    for memory in MEMORIES:
        commands = random_commands(rng, per_phase, spad_elems=SPAD_ELEMS, dram_bytes=DRAM_BYTES,
                                   elem_bytes=config.elem_bytes)
        commands += [long_row, dataclasses.replace(long_row, dir="store", dram_addr=4096 - 8, dram_stride=4096 + 4)]
        phases.append({"memory": dataclasses.asdict(memory), "commands": [dataclasses.asdict(c) for c in commands]})
    return phases


RUNS = [pytest.param(CONFIG, "verilator", 12, id="bus8-verilator"),
        pytest.param(CONFIG, "icarus", 12, id="bus8-icarus"),
        pytest.param(WIDE_ELEMS, "icarus", 40, id="bus4-elem32-icarus", marks=pytest.mark.slow)]


@pytest.mark.parametrize("config, simulator, per_phase", RUNS)
def test_dma_against_axi_ram(config, simulator, per_phase, tmp_path):
    need(missing_simulator(simulator))
    phases = _phases(config, seed=11, per_phase=per_phase)
    init = [random.Random(5).randrange(2**config.elem_bits) for _ in range(SPAD_ELEMS)]
    report = run_dma_cocotb(config, simulator, tmp_path, {"phases": phases, "dram_seed": 3, "dram_bytes": DRAM_BYTES},
                            depth=SPAD_ELEMS // config.run_elems, init=init)
    assert report["failures"] == []
    all_cycles = []
    for phase, result in zip(phases, report["phases"]):
        memory = MemoryModel(**phase["memory"])
        commands = [DmaCommand(**c) for c in phase["commands"]]
        assert len(result["cycles"]) == len(commands)
        for cmd, bursts in zip(commands, result["bursts"]):
            assert burst_problems(config, cmd, [tuple(b) for b in bursts]) == [], cmd
        assert result["cycles"] == [config.cycles(cmd, memory) for cmd in commands], memory
        all_cycles += result["cycles"]
    regs = report["registers"]
    assert regs["length"] == 0x1277ABCD  # 0x1234ABCD, then byte 2 alone written 0x77
    assert regs["starts"] == 2 and regs["start"] == 0 and regs["status"] == 0 and regs["unmapped"] == 0
    assert regs["commands"] == len(all_cycles)
    assert regs["busy_cycles"] == sum(c - 1 for c in all_cycles)  # busy from the cycle after the accept
