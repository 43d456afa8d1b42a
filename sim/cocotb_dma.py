"""The cocotb test module of the DMA bench (:class:`peforge.sim.tile_dma.DmaBench`): transfers
between cocotbext-axi's ``AxiRam`` and the bench's scratchpad, then its AXI4-Lite registers
through ``AxiLiteMaster``.

The plusarg ``+peforge_dma`` names a JSON spec: ``config`` (a :class:`DmaConfig`), ``depth`` and
``init`` (the scratchpad), ``dram_bytes`` and ``dram_seed`` (the AxiRam's size and random
contents), ``phases`` (each ``{"memory": MemoryModel fields, "commands": [DmaCommand fields]}``),
``report`` (where the JSON report goes: per phase the measured ``cycles`` and the ``bursts``
``(address, len, size, burst)`` of each command, the ``registers`` read back, and ``failures``).

The AxiRam is timed as the :class:`MemoryModel` of each phase by
:class:`peforge.sim.axi_ram.TimedRam` (its docstring says how); here the testbench sets its
``origin`` to the cycle it offers each command in.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from ..files import write_atomic
from ..hw.tile.dma import DmaCommand, DmaConfig, MemoryModel, transfer_golden
from .axi_ram import TimedRam, check_memory
from .cocotb_reset import reset
from .tile_dma import REGISTERS


async def _tick(dut) -> None:
    await FallingEdge(dut.clk)


async def _run_command(dut, ram: TimedRam, config: DmaConfig, cmd: DmaCommand) -> int:
    """Offer ``cmd`` when the DMA is ready; return the cycles until it is ready again."""
    await _tick(dut)
    await ReadOnly()
    assert dut.cmd__ready.value, "DMA not ready before a command"
    ram.origin = ram.cycle + 1
    ram.bursts = []
    await _tick(dut)
    dut.cmd__payload.value = cmd.pack(config)
    dut.cmd__valid.value = 1
    accepted = ram.cycle
    await _tick(dut)
    dut.cmd__valid.value = 0
    while True:
        await ReadOnly()
        if dut.cmd__ready.value:
            return ram.cycle - accepted
        if ram.cycle - accepted > 100_000:
            raise TimeoutError(f"DMA hung on {cmd}")
        await _tick(dut)


async def _dump_spad(dut, depth: int, config: DmaConfig) -> bytearray:
    """The scratchpad's bytes, one bank row per cycle through the debug port."""
    out = bytearray()
    row_bytes = config.bus_bytes
    for row in range(depth + 1):
        await _tick(dut)
        if row < depth:
            dut.dbg_addr.value = row
        await ReadOnly()
        if row:
            out += int(dut.dbg_data.value).to_bytes(row_bytes, "little")
    return out


@cocotb.test()
async def dma_transfers(dut) -> None:
    spec = json.loads(Path(cocotb.plusargs["peforge_dma"]).read_text())
    config = DmaConfig(**spec["config"])
    eb = config.elem_bytes
    rng = random.Random(spec["dram_seed"])
    dram = bytearray(rng.randrange(256) for _ in range(spec["dram_bytes"]))
    spad = bytearray(b"".join(v.to_bytes(eb, "little") for v in spec["init"]))
    Clock(dut.clk, 10, unit="ns").start()
    dut.cmd__valid.value = 0
    dut.dbg_addr.value = 0
    ram = TimedRam(dut, bytes(dram))
    lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    await reset(dut)

    failures: list[str] = []
    phases = []
    for phase in spec["phases"]:
        ram.memory = MemoryModel(**phase["memory"])
        check_memory(ram.memory)
        measured, bursts = [], []
        for fields in phase["commands"]:
            cmd = DmaCommand(**fields)
            cycles = await _run_command(dut, ram, config, cmd)
            measured.append(cycles)
            bursts.append(ram.bursts)
            transfer_golden(cmd, dram, spad, eb)
            if cmd.dir == "load":
                got = await _dump_spad(dut, spec["depth"], config)
                if got != spad:
                    first = next(i for i in range(len(spad)) if got[i] != spad[i])
                    failures.append(f"{cmd}: scratchpad byte {first} is {got[first]}, want {spad[first]}")
            else:
                got = ram.read(0, len(dram))
                if got != dram:
                    first = next(i for i in range(len(dram)) if got[i] != dram[i])
                    failures.append(f"{cmd}: DRAM byte {first:#x} is {got[first]}, want {dram[first]}")
        phases.append({"cycles": measured, "bursts": bursts})

    address = {r.name: 4 * i for i, r in enumerate(REGISTERS)}
    await lite.write_dword(address["length"], 0x1234ABCD)
    await lite.write(address["length"] + 2, bytes([0x77]))  # one byte lane: wstrb 0b0100
    await lite.write_dword(0x40, 0xFFFFFFFF)  # unmapped: ignored
    for _ in range(2):
        await lite.write_dword(address["start"], 1)
    registers = {name: await lite.read_dword(addr) for name, addr in address.items()}
    registers["unmapped"] = await lite.read_dword(0x40)
    write_atomic(Path(spec["report"]), json.dumps({"phases": phases, "registers": registers, "failures": failures}))
    assert not failures, "; ".join(failures[:5])
