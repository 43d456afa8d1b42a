"""cocotbext-axi's ``AxiRam`` timed as a :class:`~peforge.hw.tile.dma.MemoryModel`: the DRAM of every
cocotb testbench of the tile (the DMA bench's, the whole tile's).

:class:`TimedRam` sits on an AXI4 master port named ``<prefix>_awaddr`` ... (what
:func:`peforge.hw.tile.axi.verilog_ports` exports). Cycle ``c`` counts from the cycle the DMA
accepts its command (:attr:`TimedRam.origin`, set by the testbench that offers the command, or
by the ``accepted`` probe of a DMA inside the design: a function returning whether the DMA takes
a command in this cycle). Everything here acts at falling clock edges, so nothing races the
AxiRam's own rising-edge coroutines:

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
  ``a + read_latency`` at the earliest (needs ``read_latency >= 2``: :data:`MIN_LATENCY`).
- ``write_latency``: likewise, the AxiRam's write response is queued at the falling edge of
  cycle ``w + write_latency - 1`` (``w``: the burst's last W beat), on B in cycle
  ``w + write_latency`` (needs ``write_latency >= 2``); ``bready`` is high throughout.

The pattern restarts at each DMA command because :meth:`DmaConfig.cycles
<peforge.hw.tile.dma.DmaConfig.cycles>` counts its data slots from the command's accept: a
testbench artifact that keeps every command's cycles exact, not a property of real DRAM.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from ..hw.tile.dma import MemoryModel

__all__ = ["DEEP", "MIN_LATENCY", "TimedRam", "check_memory"]

DEEP = 1 << 16  # queue limit: "always ready"
MIN_LATENCY = 2  # cycles: the AxiRam answers 2 cycles after a handshake at the earliest


def check_memory(memory: MemoryModel) -> None:
    """Raise ``ValueError`` for a memory model the timed AxiRam cannot give."""
    if min(memory.read_latency, memory.write_latency) < MIN_LATENCY:
        raise ValueError(f"{memory}: the AxiRam answers {MIN_LATENCY} cycles after a handshake at the earliest")


class TimedRam:
    """An ``AxiRam`` on ``dut``'s ``<prefix>_*`` AXI4 port behaving as a :class:`MemoryModel`
    (see the module docstring), with a cycle counter and a record of the AR/AW bursts.

    Parameters
    ----------
    dut : the cocotb handle of the top level (``clk``, ``rst`` and the AXI port)
    dram : the memory's initial bytes (its size is the AxiRam's)
    memory : the timing to give (changeable between commands through :attr:`memory`)
    prefix : the AXI port's name prefix
    accepted : called at each falling edge in the read-only phase: True when the DMA takes a
        command in this cycle (then :attr:`origin` becomes this cycle); None: the testbench sets
        :attr:`origin` itself
    on_cycle : called at each falling edge in the read-only phase with the cycle number (a
        monitor of the testbench; one coroutine per cycle is what a cocotb run pays for)
    """

    def __init__(self, dut, dram: bytes, memory: MemoryModel | None = None, *, prefix: str = "m_axi",
                 accepted: Callable[[], bool] | None = None, on_cycle: Callable[[int], None] | None = None):
        self.dut, self.clk, self.prefix = dut, dut.clk, prefix
        self.ram = AxiRam(AxiBus.from_prefix(dut, prefix), dut.clk, dut.rst, size=len(dram))
        self.ram.write(0, dram)
        self.cycle = 0
        self.origin = 0  # the cycle the running DMA command was accepted in
        self.memory = memory or MemoryModel()
        check_memory(self.memory)
        self.bursts: list[tuple[int, int, int, int]] = []
        self._accepted, self._on_cycle = accepted, on_cycle
        self._signals = {name: getattr(dut, f"{prefix}_{name}") for name in (
            "arvalid", "arready", "awvalid", "awready", "wvalid", "wready", "wlast",
            *(f"{ch}{f}" for ch in ("ar", "aw") for f in ("addr", "len", "size", "burst")))}
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

    def read(self, address: int, length: int) -> bytes:
        """``length`` bytes of the memory from ``address`` (no bus cycles)."""
        return self.ram.read(address, length)

    def write(self, address: int, data: bytes) -> None:
        """Store ``data`` at ``address`` (no bus cycles; between runs)."""
        self.ram.write(address, data)

    async def _count(self) -> None:
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1

    def _open(self, cycle: int) -> bool:
        return (cycle - self.origin) % self.memory.period == 0

    async def _watch(self) -> None:
        """Each cycle, at its falling edge: record handshakes, queue due responses, set the next
        cycle's pause pattern."""
        s = self._signals
        while True:
            await FallingEdge(self.clk)
            # The W sink re-drives wready (high: never paused, deep queue) after each rising edge;
            # this value, written after it, is what the edge ending this cycle sees.
            s["wready"].value = int(self._open(self.cycle))
            await ReadOnly()
            if self._accepted is not None and self._accepted():
                self.origin = self.cycle  # no data beat passes in an accept cycle: the DMA was idle
            for ch in ("ar", "aw"):
                if s[f"{ch}valid"].value and s[f"{ch}ready"].value:
                    burst = tuple(int(s[f"{ch}{f}"].value) for f in ("addr", "len", "size", "burst"))
                    self.bursts.append(burst)
                    if ch == "ar":
                        self._reads.append((self.cycle, burst[1] + 1))
            if s["wvalid"].value and s["wready"].value and s["wlast"].value:
                self._last_w.append(self.cycle)
            while self._responses and self._responses[0][0] <= self.cycle:
                self._b_send(self._responses.popleft()[1])
            self.ram.read_if.r_channel.pause = not self._open(self.cycle + 1)
            if self._on_cycle is not None:
                self._on_cycle(self.cycle)

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
