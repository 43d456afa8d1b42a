"""The AXI4 memory of the Amaranth-simulator testbenches of the tile (the DMA's, the whole tile's):
a bytearray behind an AXI4 master port, timed as a :class:`~peforge.hw.tile.dma.MemoryModel` to
the cycle (the cocotb testbenches' twin is :class:`peforge.sim.axi_ram.TimedRam`).

- Address channels always ready; full-width INCR bursts only (what the DMA issues).
- A read burst's first beat no earlier than ``read_latency`` cycles after its address, its beats
  one per cycle at most, in order.
- ``period``: data beats (R and W) pass only in cycles ``c`` with ``(c - origin) % period == 0``;
  ``origin`` is the cycle the DMA accepted its command (:meth:`AxiMemory.restart`), as
  :meth:`DmaConfig.cycles <peforge.hw.tile.dma.DmaConfig.cycles>` counts its data slots.
- The write response ``write_latency`` cycles after a burst's last beat.

Per cycle the testbench calls :meth:`AxiMemory.drive` (the memory's side of the bus for this
cycle), then, with the master's outputs settled, :meth:`AxiMemory.observe` (the handshakes).
"""

from __future__ import annotations

from collections import deque

from ..hw.tile.dma import MemoryModel

__all__ = ["AxiMemory"]


class AxiMemory:
    """The memory (module docstring) over ``dram`` (updated in place), ``bus_bytes`` per beat.

    Attributes
    ----------
    bursts : ``(channel, address, len, size, burst)`` of every AR (``"ar"``) and AW (``"aw"``)
        handshake, in order (a testbench may clear it)
    origin : the cycle the beat pattern counts from
    """

    def __init__(self, dram: bytearray, bus_bytes: int, memory: MemoryModel):
        self.dram, self.bus_bytes, self.memory = dram, bus_bytes, memory
        self.origin = 0
        self.bursts: list[tuple[str, int, int, int, int]] = []
        self._reads: deque = deque()  # per burst: [first cycle a beat may pass, address, beats left]
        self._writes: deque = deque()  # per burst: [address, beats left]
        self._responses: deque = deque()  # cycles of pending write responses
        self._beat = self._slot = False

    def restart(self, cycle: int) -> None:
        """The DMA accepted a command in ``cycle``: data slots count from it."""
        self.origin = cycle

    def drive(self, ctx, bus, cycle: int) -> None:
        """Set the memory's inputs of ``bus`` (an AXI4 master port seen from outside) for ``cycle``."""
        self._slot = (cycle - self.origin) % self.memory.period == 0
        self._beat = bool(self._reads) and self._slot and cycle >= self._reads[0][0]
        for ready in (bus.arready, bus.awready):
            ctx.set(ready, 1)
        ctx.set(bus.wready, self._slot)
        ctx.set(bus.rvalid, self._beat)
        if self._beat:
            addr = self._reads[0][1]
            ctx.set(bus.rdata, int.from_bytes(self.dram[addr:addr + self.bus_bytes], "little"))
            ctx.set(bus.rlast, self._reads[0][2] == 1)
        ctx.set(bus.bvalid, bool(self._responses) and self._responses[0] == cycle)

    def observe(self, ctx, bus, cycle: int) -> None:
        """Act on ``cycle``'s handshakes (after :meth:`drive`, the master's outputs settled)."""
        size = self.bus_bytes.bit_length() - 1
        for channel, valid, addr, length, size_, burst in (
                ("ar", bus.arvalid, bus.araddr, bus.arlen, bus.arsize, bus.arburst),
                ("aw", bus.awvalid, bus.awaddr, bus.awlen, bus.awsize, bus.awburst)):
            if ctx.get(valid):
                got = (channel, ctx.get(addr), ctx.get(length), ctx.get(size_), ctx.get(burst))
                self.bursts.append(got)
                assert got[3:] == (size, 1), f"{channel} burst {got}: the memory serves full-width INCR bursts only"
                if channel == "ar":
                    self._reads.append([cycle + self.memory.read_latency, got[1], got[2] + 1])
                else:
                    self._writes.append([got[1], got[2] + 1])
        if self._beat:
            assert ctx.get(bus.rready), "the DMA must take read beats as they come"
            burst = self._reads[0]
            burst[1] += self.bus_bytes
            burst[2] -= 1
            if not burst[2]:
                self._reads.popleft()
        if ctx.get(bus.wvalid) and self._slot:
            addr, left = self._writes[0]
            assert ctx.get(bus.wlast) == (left == 1), f"wlast wrong at {addr:#x}"
            data, strobe = ctx.get(bus.wdata), ctx.get(bus.wstrb)
            for i in range(self.bus_bytes):
                if strobe >> i & 1:
                    self.dram[addr + i] = data >> (8 * i) & 0xFF
            self._writes[0] = [addr + self.bus_bytes, left - 1]
            if left == 1:
                self._writes.popleft()
                self._responses.append(cycle + self.memory.write_latency)
        if self._responses and self._responses[0] == cycle:
            assert ctx.get(bus.bready)
            self._responses.popleft()
