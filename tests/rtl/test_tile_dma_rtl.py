"""The DMA in the Amaranth simulator, against the testbenches' memory that follows the stated
:class:`MemoryModel` to the cycle (:class:`peforge.sim.axi_memory.AxiMemory`: address channels
always ready, a burst's first read beat ``read_latency`` cycles after its address, data beats
only in slots ``c % period == 0`` from the command's accept, the write response
``write_latency`` cycles after the last beat) and a byte-array scratchpad:
data exact, bursts legal, measured cycles equal to ``DmaConfig.cycles``. The cocotb test
(``tests/cocotb/test_tile_dma.py``) runs the exported Verilog against cocotbext-axi's AxiRam.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from peforge.hw.tile.dma import Dma, DmaCommand, DmaConfig, MemoryModel, transfer_golden
from peforge.sim.axi_memory import AxiMemory
from peforge.sim.tile_dma import burst_problems, random_commands

CONFIG = DmaConfig(bus_bytes=4, max_burst=4, outstanding=2, addr_bits=16, spad_addr_bits=10, count_bits=9)
CONFIGS = {"bus4": CONFIG,
           "bus8-elem32-one-in-flight": DmaConfig(bus_bytes=8, max_burst=2, outstanding=1, addr_bits=16, elem_bits=32,
                                                  spad_addr_bits=10, count_bits=9),
           "bus16-elem16": DmaConfig(bus_bytes=16, max_burst=3, outstanding=5, addr_bits=16, elem_bits=16,
                                     spad_addr_bits=10, count_bits=10),
           "bus1": DmaConfig(bus_bytes=1, max_burst=8, outstanding=3, addr_bits=16, spad_addr_bits=10, count_bits=9)}
DRAM_BYTES = 2**14
SPAD_ELEMS = 2**10


def _run(config: DmaConfig, memory: MemoryModel, commands: list[DmaCommand], seed: int):
    """Run ``commands`` one after another; return (cycles per command, bursts per command,
    final DRAM, final scratchpad, expected DRAM, expected scratchpad)."""
    rng = random.Random(seed)
    dram = bytearray(rng.randrange(256) for _ in range(DRAM_BYTES))
    spad = bytearray(rng.randrange(256) for _ in range(SPAD_ELEMS * config.elem_bytes))
    want_dram, want_spad = bytearray(dram), bytearray(spad)
    eb, bus = config.elem_bytes, config.bus_bytes
    for cmd in commands:
        transfer_golden(cmd, want_dram, want_spad, eb)

    dut = Dma(config)
    top = Module()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    measured, bursts = [], []
    axi = dut.m_axi

    memory_side = AxiMemory(dram, bus, memory)

    async def bench(ctx):
        for cmd in commands:
            ctx.set(dut.cmd.payload.as_value(), cmd.pack(config))
            ctx.set(dut.cmd.valid, 1)
            assert ctx.get(dut.cmd.ready)
            await ctx.tick()
            ctx.set(dut.cmd.valid, 0)
            memory_side.restart(0)  # cycles from the accept
            memory_side.bursts = []
            cycle = 1
            read_data = None  # scratchpad read data for the next cycle
            while not ctx.get(dut.cmd.ready):
                memory_side.drive(ctx, axi, cycle)
                ctx.set(dut.spad_r.data, read_data or 0)
                # the DMA's outputs, settled for this cycle: the handshakes, the scratchpad side
                memory_side.observe(ctx, axi, cycle)
                read_data = None
                if ctx.get(dut.spad_w.en):
                    base, data, mask = ctx.get(dut.spad_w.addr), ctx.get(dut.spad_w.data), ctx.get(dut.spad_w.mask)
                    for i in range(config.run_elems):
                        if mask >> i & 1:
                            e = (base + i) * eb
                            spad[e:e + eb] = (data >> (8 * eb * i) & (2**(8 * eb) - 1)).to_bytes(eb, "little")
                if ctx.get(dut.spad_r.en):
                    e = ctx.get(dut.spad_r.addr) * eb
                    read_data = int.from_bytes((spad + bytes(bus))[e:e + bus], "little")
                await ctx.tick()
                cycle += 1
                assert cycle < 10_000, "DMA hung"
            measured.append(cycle)
            bursts.append(memory_side.bursts)

    sim.add_testbench(bench)
    sim.run()
    return measured, bursts, dram, spad, want_dram, want_spad


MEMORIES = [MemoryModel(read_latency=1, write_latency=1, period=1),
            MemoryModel(read_latency=9, write_latency=4, period=3)]


@pytest.mark.parametrize("memory", MEMORIES, ids=["full-speed", "throttled"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_dma_data_bursts_and_cycles(name, memory):
    config = CONFIGS[name]
    commands = random_commands(random.Random(7), 14, spad_elems=SPAD_ELEMS, dram_bytes=DRAM_BYTES,
                               elem_bytes=config.elem_bytes)
    measured, bursts, dram, spad, want_dram, want_spad = _run(config, memory, commands, seed=1)
    assert dram == want_dram
    assert spad == want_spad
    for cmd, seen in zip(commands, bursts):
        assert {kind for kind, *_ in seen} == {"ar" if cmd.dir == "load" else "aw"}
        assert burst_problems(config, cmd, [tuple(b) for _, *b in seen]) == []
    assert measured == [config.cycles(cmd, memory) for cmd in commands]


def test_long_stream_pays_latency_once():
    """A 64-beat row in 16 bursts of 4 with 2 in flight over a latency-9 memory that gives one
    beat every 3 cycles: the stream is throughput-bound (~3 cycles a beat), not 16 x 9."""
    memory = MemoryModel(read_latency=9, write_latency=4, period=3)
    cmd = DmaCommand(dir="load", dram_addr=0, spad_addr=0, rows=1, row_bytes=256)
    measured, *_ = _run(CONFIG, memory, [cmd], seed=2)
    assert measured == [CONFIG.cycles(cmd, memory)]
    assert measured[0] == 12 + 63 * 3 + 1  # AR at 1, first beat in slot 12 (>= 1 + 9), then every 3
