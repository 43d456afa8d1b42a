"""The cocotb test module of the whole accelerator tile (:class:`peforge.hw.tile.tile.AcceleratorTile`
exported with AXI port names): a compiled layer run from a timed ``AxiRam``, phase after phase.

The plusarg ``+peforge_tile`` names a JSON spec (written by :func:`peforge.sim.tile_layer.run_layer_bench`):

- ``dram_bytes``: the AxiRam's size; ``memory``: the :class:`~peforge.hw.tile.dma.MemoryModel`
  it is timed as (:class:`peforge.sim.axi_ram.TimedRam`);
- ``registers``: byte addresses of the tile's ``start``, ``status`` and ``cycles`` registers;
- ``phases``, each ``{"name", "image", "carry", "writes", "limit", "dump"}``: the DRAM image file
  to load, byte ranges ``[from, to, size]`` carried over from the previous phase's final DRAM
  (the KV cache a prefill wrote), the AXI4-Lite writes ``[address, value]`` storing the program,
  the most cycles the run may take, and where the final DRAM goes;
- ``probe``: watch the sequencer inside the tile (``sequencer.pc``, ``.running``, ``.go``, and
  the DMA's command handshake, which restarts the AxiRam's beat pattern: see
  :mod:`peforge.sim.axi_ram`);
- ``report``: where the JSON report goes.

Each phase: the image (with the carried ranges) into the AxiRam, the program through
``AxiLiteMaster``, a write to ``start``, ``status`` polled until ``done`` (bit 0), ``cycles``
read back and the whole DRAM dumped. The report holds per phase ``cycles`` (the register),
``done``, and with the probe ``issued``: ``[pc, cycle]`` of every instruction leaving decode,
cycles counted from the one ``start`` is high in (the timeline's cycle 0).
"""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from ..files import write_atomic
from ..hw.tile.dma import MemoryModel
from .axi_ram import TimedRam

DONE = 1  # status bit 0
POLL_CYCLES = 64  # cycles between two reads of `status`


class _Probe:
    """The sequencer's decode, sampled every cycle: which instruction leaves decode when."""

    def __init__(self, dut):
        seq = dut.sequencer
        self.pc, self.running, self.go, self.start = seq.pc, seq.running, seq.go, seq.start
        self.dma_valid, self.dma_ready = dut.dma.cmd__valid, dut.dma.cmd__ready
        self.started: int | None = None
        self.issued: list[tuple[int, int]] = []

    def dma_accepted(self) -> bool:
        return bool(self.dma_valid.value) and bool(self.dma_ready.value)

    def sample(self, cycle: int) -> None:
        if self.running.value:
            if self.go.value:
                self.issued.append((int(self.pc.value), cycle - self.started))
        elif self.start.value:
            self.started = cycle


@cocotb.test()
async def tile_layer(dut) -> None:
    spec = json.loads(Path(cocotb.plusargs["peforge_tile"]).read_text())
    regs = spec["registers"]
    Clock(dut.clk, 10, unit="ns").start()
    probe = _Probe(dut) if spec["probe"] else None
    ram = TimedRam(dut, bytes(spec["dram_bytes"]), MemoryModel(**spec["memory"]),
                   accepted=probe.dma_accepted if probe else None, on_cycle=probe.sample if probe else None)
    lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)

    results = []
    previous = b""
    for phase in spec["phases"]:
        image = bytearray(Path(phase["image"]).read_bytes())
        for src, dst, size in phase["carry"]:
            image[dst:dst + size] = previous[src:src + size]
        ram.write(0, bytes(image))
        # queued in order, answered in order: the last response means every write is done
        events = [lite.init_write(address, value.to_bytes(4, "little")) for address, value in phase["writes"]]
        await events[-1].wait()
        if probe:
            probe.issued, probe.started = [], None
        await lite.write_dword(regs["start"], 1)
        begun, done = ram.cycle, False
        while ram.cycle - begun <= phase["limit"]:
            await ClockCycles(dut.clk, POLL_CYCLES)
            if await lite.read_dword(regs["status"]) & DONE:
                done = True
                break
        cycles = await lite.read_dword(regs["cycles"])
        previous = ram.read(0, spec["dram_bytes"])
        write_atomic(Path(phase["dump"]), previous)
        results.append({"name": phase["name"], "done": done, "cycles": cycles,
                        "issued": probe.issued if probe else None})
        write_atomic(Path(spec["report"]), json.dumps({"phases": results}))
        if not done:
            break
    assert all(r["done"] for r in results), f"phase {results[-1]['name']} did not finish"
