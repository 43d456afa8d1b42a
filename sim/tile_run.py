"""The accelerator tile in the Amaranth simulator: a host and an AXI4 memory around it.

The memory is a bytearray behind the tile's ``m_axi`` port, timed as the DMA's
:class:`~peforge.hw.tile.dma.MemoryModel` (:class:`peforge.sim.axi_memory.AxiMemory`). The host writes a program through
``s_axil``, starts it and polls ``status`` until done. :func:`run_tile` runs a program this way;
``activity=True`` also counts memory accesses and logic toggles (:mod:`peforge.sim.macros`) for
the tile's energy.
"""

from __future__ import annotations

from typing import Any

from amaranth.sim import Simulator

from ..hw.tile.config import TileConfig
from ..hw.tile.dma import MemoryModel
from ..hw.tile.rules import check_program
from ..hw.tile.tile import AcceleratorTile
from . import macros
from .axi_memory import AxiMemory


async def axi_memory(ctx, bus, dram: bytearray, bus_bytes: int, memory: MemoryModel, trace: dict,
                     tile: AcceleratorTile) -> None:
    """The memory (:class:`~peforge.sim.axi_memory.AxiMemory`, its beat pattern restarted at each
    DMA command), and a monitor of the cycles ``start`` and ``done`` are high (``trace``)."""
    model = AxiMemory(dram, bus_bytes, memory)
    dma = tile.dma.cmd
    cycle = 0
    while True:
        model.drive(ctx, bus, cycle)
        if ctx.get(tile.sequencer.start):
            trace.setdefault("start", cycle)
        if ctx.get(tile.sequencer.done) and "start" in trace:
            trace.setdefault("done", cycle)
        model.observe(ctx, bus, cycle)
        if ctx.get(dma.valid) and ctx.get(dma.ready):
            model.restart(cycle)
        await ctx.tick()
        cycle += 1


async def axil_write(ctx, bus, addr: int, value: int) -> None:
    """One AXI4-Lite write (all byte strobes), returning after its response."""
    ctx.set(bus.awaddr, addr)
    ctx.set(bus.wdata, value)
    ctx.set(bus.wstrb, 0xF)
    ctx.set(bus.awvalid, 1)
    ctx.set(bus.wvalid, 1)
    ctx.set(bus.bready, 1)
    while not (await ctx.tick().sample(bus.awready))[2]:
        pass
    ctx.set(bus.awvalid, 0)
    ctx.set(bus.wvalid, 0)
    while not (await ctx.tick().sample(bus.bvalid))[2]:
        pass


async def axil_read(ctx, bus, addr: int) -> int:
    """One AXI4-Lite read: the register's value."""
    ctx.set(bus.araddr, addr)
    ctx.set(bus.arvalid, 1)
    ctx.set(bus.rready, 1)
    while not (await ctx.tick().sample(bus.arready))[2]:
        pass
    ctx.set(bus.arvalid, 0)
    while True:
        _, _, valid, data = await ctx.tick().sample(bus.rvalid, bus.rdata)
        if valid:
            return data


def run_tile(config: TileConfig, program: list, dram: bytearray, memory: MemoryModel, *,
             timeout: int = 20_000, activity: bool = False) -> dict[str, Any]:
    """Write ``program`` through ``s_axil``, start it, poll ``status`` until done; ``dram`` is
    updated in place. Returns the cycles measured from ``start`` to ``done`` (``measured``), the
    ``cycles`` register, the status words, every scratchpad's linear element space afterwards and,
    with ``activity``, the run's :class:`~peforge.sim.macros.TileActivity` (program loading
    included)."""
    check_program(config, program, memory)  # the program keeps its commands apart
    tile = AcceleratorTile(config)
    trace: dict = {}
    out: dict = {}

    async def dram_side(ctx):
        await axi_memory(ctx, tile.m_axi, dram, config.bus_bytes, memory, trace, tile)

    async def host(ctx):
        lite = tile.s_axil
        for addr, value in config.program_writes(config.encode(program)):
            await axil_write(ctx, lite, addr, value)
        out["idle"] = await axil_read(ctx, lite, config.register_address("status"))
        await axil_write(ctx, lite, config.register_address("start"), 1)
        seen = []
        for _ in range(timeout):
            seen.append(await axil_read(ctx, lite, config.register_address("status")))
            if seen[-1] & 1:
                break
        else:
            raise TimeoutError(f"the tile did not finish in {timeout} polls")
        out["status"], out["running"] = seen[-1], set(seen[:-1])
        out["cycles_register"] = await axil_read(ctx, lite, config.register_address("cycles"))
        out["spads"] = {(i, name): spad.contents(ctx.get)
                        for i, gemm in enumerate(tile.slices) for name, spad in gemm.spads.items()}

    if activity:
        out["activity"] = macros.simulate_activity(tile, host, background=(dram_side,))
    else:
        sim = Simulator(tile)
        sim.add_clock(1e-8)
        sim.add_testbench(dram_side, background=True)
        sim.add_testbench(host)
        sim.run()
    return {**out, "measured": trace["done"] - trace["start"]}
