"""cocotbext-axi's ``AxiRam`` timed as a :class:`~peforge.hw.tile.dma.MemoryModel`: the DRAM of every
cocotb testbench of the tile (the DMA bench's, the whole tile's).

:class:`TimedRam` sits on an AXI4 master port named ``<prefix>_awaddr`` ... (what
:func:`peforge.hw.tile.axi.verilog_ports` exports). Cycle ``c`` is the clock period starting at
the ``c``-th rising edge (from simulation time); a handshake in cycle ``c`` is seen at the rising
edge ending it. The model's cycles count from the cycle the DMA accepts its command
(:attr:`TimedRam.origin`, set by the testbench that offers the command, or by the ``accepted``
probe of a DMA inside the design: a function returning whether the DMA takes a command in this
cycle, read at its falling edge).

- Address channels: the AR, AW (and W) queues of the AxiRam are made deep, so ``arready`` and
  ``awready`` stay high.
- ``period``: data beats pass only in cycles with ``(c - origin) % period == 0``. On R, a pause
  pattern: the R source's ``pause`` set at each falling edge for the next cycle. On W, the
  sink's own pause takes effect one or two cycles later depending on whether its coroutine was
  asleep, so the testbench writes ``wready`` itself at each falling edge (after the sink, never
  paused, has driven it high at the rising edge): the sink then sees exactly the handshakes the
  DMA sees. With ``period == 1`` nothing runs per cycle (the channels' handshakes are taken from
  the AxiRam's own queues), which is what lets a long program run at the simulator's pace.
- ``read_latency``: a latency model written here, not an AxiRam feature: the AxiRam's read of a
  burst's first beat is held until the falling edge of cycle ``a + read_latency - 1`` (``a``: the
  burst's AR handshake), so the beat is on R from cycle ``a + read_latency`` at the earliest
  (needs ``read_latency >= 2``: :data:`MIN_LATENCY`).
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
from cocotb.triggers import FallingEdge, Timer
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBus, AxiRam

from ..hw.tile.dma import MemoryModel

__all__ = ["CLOCK_NS", "DEEP", "MIN_LATENCY", "TimedRam", "check_memory"]

CLOCK_NS = 10  # the testbenches' clock period (ns)
DEEP = 1 << 16  # queue limit: "always ready"
MIN_LATENCY = 2  # cycles: the AxiRam answers 2 cycles after a handshake at the earliest


def check_memory(memory: MemoryModel) -> None:
    """Raise ``ValueError`` for a memory model the timed AxiRam cannot give."""
    if min(memory.read_latency, memory.write_latency) < MIN_LATENCY:
        raise ValueError(f"{memory}: the AxiRam answers {MIN_LATENCY} cycles after a handshake at the earliest")


def _hook_queue(channel, record: Callable[[object], None]) -> None:
    """Call ``record(transaction)`` for each handshake a sink of the AxiRam takes (its queue's put)."""
    queue = channel.queue
    put = queue.put_nowait

    def put_recorded(item):
        record(item)
        put(item)

    queue.put_nowait = put_recorded


class TimedRam:
    """An ``AxiRam`` on ``dut``'s ``<prefix>_*`` AXI4 port behaving as a :class:`MemoryModel`
    (see the module docstring), with a cycle counter and a record of the AR/AW bursts.

    Parameters
    ----------
    dut : the cocotb handle of the top level (``clk``, ``rst`` and the AXI port), clocked at
        :data:`CLOCK_NS`
    dram : the memory's initial bytes (its size is the AxiRam's)
    memory : the timing to give (changeable between commands through :attr:`memory`)
    prefix : the AXI port's name prefix
    accepted : read at each falling edge while ``period > 1``: True when the DMA takes a command
        in this cycle (then :attr:`origin` becomes this cycle); None: the testbench sets
        :attr:`origin` itself
    """

    def __init__(self, dut, dram: bytes, memory: MemoryModel | None = None, *, prefix: str = "m_axi",
                 accepted: Callable[[], bool] | None = None):
        self.dut, self.clk, self.prefix = dut, dut.clk, prefix
        self.ram = AxiRam(AxiBus.from_prefix(dut, prefix), dut.clk, dut.rst, size=len(dram))
        self.ram.write(0, dram)
        self.origin = 0  # the cycle the running DMA command was accepted in
        self.bursts: list[tuple[int, int, int, int]] = []
        self._accepted = accepted
        self._wready = getattr(dut, f"{prefix}_wready")
        self._reads: deque[tuple[int, int]] = deque()  # (AR cycle, beats) of bursts not yet read
        self._beats_left = 0
        self._last_w: deque[int] = deque()  # cycles of last W beats whose response is not queued
        self._watching = False
        for channel in (self.ram.read_if.ar_channel, self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                        self.ram.write_if.b_channel, self.ram.read_if.r_channel):
            channel.queue_occupancy_limit = DEEP
        _hook_queue(self.ram.read_if.ar_channel, self._on_ar)
        _hook_queue(self.ram.write_if.aw_channel, self._on_aw)
        _hook_queue(self.ram.write_if.w_channel, self._on_w)
        self._read = self.ram.read_if._read
        self.ram.read_if._read = self._timed_read
        self._b_send = self.ram.write_if.b_channel.send_nowait
        self.ram.write_if.b_channel.send = self._timed_response
        self.memory = memory or MemoryModel()

    @property
    def memory(self) -> MemoryModel:
        return self._memory

    @memory.setter
    def memory(self, memory: MemoryModel) -> None:
        check_memory(memory)
        self._memory = memory
        if memory.period > 1 and not self._watching:
            self._watching = True
            cocotb.start_soon(self._watch())

    @property
    def cycle(self) -> int:
        """The current cycle (see the module docstring)."""
        return int(get_sim_time("ns") // CLOCK_NS)

    def read(self, address: int, length: int) -> bytes:
        """``length`` bytes of the memory from ``address`` (no bus cycles)."""
        return self.ram.read(address, length)

    def write(self, address: int, data: bytes) -> None:
        """Store ``data`` at ``address`` (no bus cycles; between runs)."""
        self.ram.write(address, data)

    # --- handshakes, as the AxiRam's sinks take them at the rising edge ending their cycle ------

    def _on_ar(self, ar) -> None:
        self.bursts.append((int(ar.araddr), int(ar.arlen), int(ar.arsize), int(ar.arburst)))
        self._reads.append((self.cycle - 1, int(ar.arlen) + 1))

    def _on_aw(self, aw) -> None:
        self.bursts.append((int(aw.awaddr), int(aw.awlen), int(aw.awsize), int(aw.awburst)))

    def _on_w(self, w) -> None:
        if int(w.wlast):
            self._last_w.append(self.cycle - 1)

    # --- the beat pattern -----------------------------------------------------------------------

    def _open(self, cycle: int) -> bool:
        return (cycle - self.origin) % self._memory.period == 0

    async def _watch(self) -> None:
        """While ``period > 1``, at each falling edge: restart the pattern on a DMA accept, pass
        a W beat only in an open cycle, pause R in the next cycle unless it is open."""
        r = self.ram.read_if.r_channel
        while self._memory.period > 1:
            await FallingEdge(self.clk)
            cycle = self.cycle
            if self._accepted is not None and self._accepted():
                self.origin = cycle  # no data beat passes in an accept cycle: the DMA was idle
            # The W sink re-drives wready (high: never paused, deep queue) after each rising edge;
            # this value, written after it, is what the edge ending this cycle sees.
            self._wready.value = int(self._open(cycle))
            r.pause = not self._open(cycle + 1)
        self._wready.value = 1
        r.pause = False
        self._watching = False

    # --- latencies ------------------------------------------------------------------------------

    async def _until_falling_edge(self, cycle: int) -> None:
        """Wait for the first falling edge after now in a cycle at or after ``cycle`` (acting at
        falling edges keeps the AxiRam's rising-edge coroutines free of races)."""
        now = get_sim_time("ns")
        next_edge = (now - CLOCK_NS / 2) // CLOCK_NS + 1  # the cycle of the next falling edge after now
        await Timer((max(cycle, next_edge) + 0.5) * CLOCK_NS - now, unit="ns")

    async def _timed_read(self, address: int, length: int) -> bytes:
        if self._beats_left == 0:  # the first beat of the next burst: hold it to its latency
            issued, self._beats_left = self._reads.popleft()
            await self._until_falling_edge(issued + self._memory.read_latency - 1)
        self._beats_left -= 1
        return await self._read(address, length)

    async def _timed_response(self, b) -> None:
        due = self._last_w.popleft() + self._memory.write_latency - 1
        cocotb.start_soon(self._respond(due, b))

    async def _respond(self, due: int, b) -> None:
        await self._until_falling_edge(due)
        self._b_send(b)
