"""The cocotb test module of the DMA bench (:class:`peforge.sim.tile_dma.DmaBench`): transfers
between cocotbext-axi's ``AxiRam`` and the bench's scratchpad, then its AXI4-Lite registers
through ``AxiLiteMaster``.

The plusarg ``+peforge_dma`` names a JSON spec: ``config`` (a :class:`DmaConfig`), ``depth`` and
``init`` (the scratchpad), ``dram_bytes`` and ``dram_seed`` (the AxiRam's size and random
contents), ``phases`` (each ``{"memory": MemoryModel fields, "commands": [DmaCommand fields]}``),
``report`` (where the JSON report goes: per phase the measured ``cycles`` and the ``bursts``
``(address, len, size, burst)`` of each command, the ``registers`` read back, and ``failures``).

How the AxiRam is made into the :class:`MemoryModel` (cycle ``c`` counts from the cycle the
DMA accepts the command; everything here acts at falling clock edges, so nothing races the
AxiRam's own rising-edge coroutines):

- Address channels: the AR, AW (and W) queues of the AxiRam are made deep, so ``arready`` and
  ``awready`` stay high.
- ``period``: data beats pass only in cycles with ``c % period == 0``. On R, a pause pattern: the
  R source's ``pause`` (what its pause generator drives) set at each falling edge for the next
  cycle. On W, the sink's own pause takes effect one or two cycles later depending on whether
  its coroutine was asleep, so the testbench writes ``wready`` itself at each falling edge
  (after the sink, never paused, has driven it high at the rising edge): the sink then sees
  exactly the handshakes the DMA sees.
- ``read_latency``: a latency model written here, not an AxiRam feature: the AxiRam's read of a
  burst's first beat is held until the falling edge of cycle ``a + read_latency - 1`` (``a``: the
  burst's AR handshake, seen by a monitor on the bus), so the beat is on R from cycle
  ``a + read_latency`` at the earliest (needs ``read_latency >= 2``).
- ``write_latency``: likewise, the AxiRam's write response is queued at the falling edge of
  cycle ``w + write_latency - 1`` (``w``: the burst's last W beat), on B in cycle
  ``w + write_latency`` (needs ``write_latency >= 2``); ``bready`` is high throughout.
"""

from __future__ import annotations

import json
import random
from collections import deque
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from ..files import write_atomic
from ..hw.tile.dma import DmaCommand, DmaConfig, MemoryModel, transfer_golden
from .tile_dma import REGISTERS

DEEP = 1 << 16  # queue limit: "always ready"


class TimedRam:
    """An ``AxiRam`` on the bench's ``m_axi`` port behaving as a :class:`MemoryModel` (see the
    module docstring), with a cycle counter and a record of the AR/AW bursts."""

    def __init__(self, dut, dram: bytes):
        self.dut, self.clk = dut, dut.clk
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=len(dram))
        self.ram.write(0, dram)
        self.cycle = 0
        self.origin = 0  # the cycle the running command was accepted in
        self.memory = MemoryModel()
        self.bursts: list[tuple[int, int, int, int]] = []
        self._reads: deque[tuple[int, int]] = deque()  # (AR cycle, beats) of bursts not yet read
        self._beats_left = 0
        self._last_w: deque[int] = deque()  # cycles of last W beats whose response is not queued
        self._responses: deque[tuple[int, object]] = deque()  # (queue at cycle, B transaction)
        for channel in (self.ram.read_if.ar_channel, self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                        self.ram.write_if.b_channel, self.ram.read_if.r_channel):
            channel.queue_occupancy_limit = DEEP
        self._read = self.ram.read_if._read
        self.ram.read_if._read = self._timed_read
        self._b_send = self.ram.write_if.b_channel.send_nowait
        self.ram.write_if.b_channel.send = self._timed_response
        cocotb.start_soon(self._count())
        cocotb.start_soon(self._watch())

    async def _count(self) -> None:
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1

    def _open(self, cycle: int) -> bool:
        return (cycle - self.origin) % self.memory.period == 0

    async def _watch(self) -> None:
        """Each cycle, at its falling edge: record handshakes, queue due responses, set the next
        cycle's pause pattern."""
        bus = self.dut
        while True:
            await FallingEdge(self.clk)
            # The W sink re-drives wready (high: never paused, deep queue) after each rising edge;
            # this value, written after it, is what the edge ending this cycle sees.
            bus.m_axi_wready.value = int(self._open(self.cycle))
            await ReadOnly()
            for ch in ("ar", "aw"):
                if getattr(bus, f"m_axi_{ch}valid").value and getattr(bus, f"m_axi_{ch}ready").value:
                    burst = tuple(int(getattr(bus, f"m_axi_{ch}{f}").value) for f in ("addr", "len", "size", "burst"))
                    self.bursts.append(burst)
                    if ch == "ar":
                        self._reads.append((self.cycle, burst[1] + 1))
            if bus.m_axi_wvalid.value and bus.m_axi_wready.value and bus.m_axi_wlast.value:
                self._last_w.append(self.cycle)
            while self._responses and self._responses[0][0] <= self.cycle:
                self._b_send(self._responses.popleft()[1])
            self.ram.read_if.r_channel.pause = not self._open(self.cycle + 1)

    async def _timed_read(self, address: int, length: int) -> bytes:
        if self._beats_left == 0:  # the first beat of the next burst: hold it to its latency
            issued, self._beats_left = self._reads.popleft()
            while True:
                await FallingEdge(self.clk)
                if self.cycle >= issued + self.memory.read_latency - 1:
                    break
        self._beats_left -= 1
        return await self._read(address, length)

    async def _timed_response(self, b) -> None:
        self._responses.append((self._last_w.popleft() + self.memory.write_latency - 1, b))


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
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)

    failures: list[str] = []
    phases = []
    for phase in spec["phases"]:
        ram.memory = MemoryModel(**phase["memory"])
        if min(ram.memory.read_latency, ram.memory.write_latency) < 2:
            raise ValueError(f"{ram.memory}: the AxiRam answers 2 cycles after a handshake at the earliest")
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
                got = ram.ram.read(0, len(dram))
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
