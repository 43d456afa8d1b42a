"""The cocotb test module of the whole accelerator tile (:class:`peforge.hw.tile.tile.AcceleratorTile`
exported with AXI port names): a compiled layer run from a timed ``AxiRam``, phase after phase.

The plusarg ``+peforge_tile`` names a JSON spec (written by :func:`peforge.sim.tile_layer.run_tile_phases`):

- ``dram_bytes``: the AxiRam's size; ``memory``: the :class:`~peforge.hw.tile.dma.MemoryModel`
  it is timed as (:class:`peforge.sim.axi_ram.TimedRam`);
- ``registers``: byte addresses of the tile's ``start``, ``status`` and ``cycles`` registers;
- ``phases``, each ``{"name", "image", "carry", "writes", "limit", "dump"}``: the DRAM image file
  to load, byte ranges ``[from, to, size]`` carried over from the previous phase's final DRAM
  (the KV cache a prefill wrote), the AXI4-Lite writes ``[address, value]`` storing the program,
  the most cycles the run may take, and where the final DRAM goes;
- ``probe``: watch the sequencer inside the tile (``sequencer.pc`` and ``.running``) and the
  DMA's command handshake, which restarts the AxiRam's beat pattern (:mod:`peforge.sim.axi_ram`);
- ``report``: where the JSON report goes.

Each phase: the image (with the carried ranges) into the AxiRam, the program through
``AxiLiteMaster``, a write to ``start``, ``status`` polled until ``done`` (bit 0), ``cycles``
read back and the whole DRAM dumped. The report holds per phase ``cycles`` (the register),
``done``, and with the probe ``issued``: ``[pc, cycle]`` of every instruction leaving decode,
cycles counted from the one ``start`` is high in (the timeline's cycle 0).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, Timer
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from ..files import write_atomic
from ..hw.tile.dma import MemoryModel
from .axi_ram import CLOCK_NS, TimedRam
from .cocotb_reset import reset

DONE = 1  # status bit 0
POLL_CYCLES = 256  # cycles between two reads of `status`


class _Probe:
    """The sequencer's decode, event by event: the sequencer's ``pc`` moves on exactly when the
    instruction at decode leaves it (at the rising edge ending that cycle), and ``running``
    rises at the edge ending the cycle ``start`` is high in (the timeline's cycle 0)."""

    def __init__(self, dut):
        seq = dut.sequencer
        self.pc, self.running = seq.pc, seq.running
        self.dma_valid, self.dma_ready = dut.dma.cmd__valid, dut.dma.cmd__ready
        self.started = 0
        self.issued: list[tuple[int, int]] = []
        self._pc, self._running = 0, 0
        cocotb.start_soon(self._run())

    def dma_accepted(self) -> bool:
        valid, ready = self.dma_valid.value, self.dma_ready.value
        # an unknown handshake (Icarus's X) is no accept here; the run's data will show it
        return valid.is_resolvable and ready.is_resolvable and bool(valid) and bool(ready)

    async def _run(self) -> None:
        while True:
            await First(self.pc.value_change, self.running.value_change)
            await ReadOnly()
            cycle = int(get_sim_time("ns") // CLOCK_NS) - 1  # the cycle this edge ends
            pc, running = self.pc.value, self.running.value
            if not (pc.is_resolvable and running.is_resolvable):  # Icarus, before the reset settles
                continue
            pc, running = int(pc), int(running)
            if running and not self._running:
                self.started = cycle
            elif self._running and pc != self._pc:
                self.issued.append((self._pc, cycle - self.started))
            self._pc, self._running = pc, running


@cocotb.test()
async def tile_layer(dut) -> None:
    spec = json.loads(Path(cocotb.plusargs["peforge_tile"]).read_text())
    regs = spec["registers"]
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    probe = _Probe(dut) if spec["probe"] else None
    ram = TimedRam(dut, bytes(spec["dram_bytes"]), MemoryModel(**spec["memory"]),
                   accepted=probe.dma_accepted if probe else None)
    lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    for bus in ("s_axil", "m_axi"):  # a log line per transaction would cost more than the transaction
        logging.getLogger(f"cocotb.{dut._name}.{bus}").setLevel(logging.WARNING)
    await reset(dut)

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
            probe.issued = []
        await lite.write_dword(regs["start"], 1)
        begun, done = ram.cycle, False
        while ram.cycle - begun <= phase["limit"]:
            await Timer(POLL_CYCLES * CLOCK_NS, unit="ns")
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
