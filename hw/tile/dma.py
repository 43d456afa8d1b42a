"""The tile's DMA engine: 2-D transfers between DRAM (an AXI4 master) and a scratchpad.

A command moves ``rows`` rows of ``row_bytes`` bytes; row ``r`` is at DRAM byte address
``dram_addr + r * dram_stride`` and at scratchpad element address ``spad_addr + r * spad_stride``
(a linear element address, tile spec section 2). ``load`` reads DRAM and writes the scratchpad;
``store`` reads the scratchpad and writes DRAM.

How the engine works (what :meth:`DmaConfig.cycles` follows):

- Each row is cut into INCR bursts of bus-aligned beats, at most ``max_burst`` beats long and never
  crossing 4 KiB. One burst address goes out per cycle from the cycle after the command, while
  fewer than ``outstanding`` bursts are in flight (a read until its last beat, a write until its
  response), so the memory latency is paid once per stream, not once per burst.
- A load writes each read beat into the scratchpad in the cycle it arrives (``rready`` stays
  high): one bus-wide run per beat, the row's first beat shifted down by the row's byte offset
  in the bus word, so every run starts at ``spad row + byte offset / element bytes``.
- A store reads one bus-wide run per beat from the scratchpad (1 cycle read latency) into a
  2-entry buffer ahead of the W channel, and sends a burst's beats only after its address.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .axi import BOUNDARY_BYTES, BURST_INCR, Axi4Signature
from .unit import unit_ports

DIRECTIONS = ("load", "store")
STORE_FIRST_BEAT = 3  # a store's first W beat: scratchpad read in cycle 1, buffered in 2, on W in 3


def _log2(value: int) -> int:
    return value.bit_length() - 1


@dataclass(frozen=True, kw_only=True)
class MemoryModel:
    """The DRAM behind the AXI port, as :meth:`DmaConfig.cycles` assumes it.

    Cycles count from the cycle the DMA accepts its command (cycle 0). Address channels always
    accept. Data beats (R and W) pass only in cycles ``c`` with ``c % period == 0``; a burst's
    first read beat no earlier than ``read_latency`` cycles after its address handshake; a
    write burst's response exactly ``write_latency`` cycles after its last W beat.

    Parameters
    ----------
    read_latency : cycles from an AR handshake to the earliest R beat of that burst (>= 1)
    write_latency : cycles from a burst's last W beat to its B response (>= 1)
    period : cycles per data beat at most (1: full speed)
    """

    read_latency: int = 2
    write_latency: int = 2
    period: int = 1

    def __post_init__(self):
        for name in ("read_latency", "write_latency", "period"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} {getattr(self, name)!r}: an integer >= 1 (cycles)")

    def slot(self, cycle: int) -> int:
        """The first cycle at or after ``cycle`` in which a data beat may pass."""
        return -(-cycle // self.period) * self.period


@dataclass(frozen=True, kw_only=True)
class DmaCommand:
    """One 2-D transfer (see the module docstring); ``slice_mask``: the array slices whose
    scratchpads a load writes (a store reads one slice's: exactly one bit set)."""

    dir: str
    dram_addr: int
    spad_addr: int
    rows: int
    row_bytes: int
    dram_stride: int = 0
    spad_stride: int = 0
    slice_mask: int = 1

    def __post_init__(self):
        if self.dir not in DIRECTIONS:
            raise ValueError(f"dir {self.dir!r}: choose load or store")
        for name in ("dram_addr", "spad_addr", "dram_stride", "spad_stride"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} {getattr(self, name)!r}: must be >= 0")
        for name in ("rows", "row_bytes", "slice_mask"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} {getattr(self, name)!r}: must be >= 1")
        if self.dir == "store" and self.slice_mask & (self.slice_mask - 1):
            raise ValueError(f"slice_mask {self.slice_mask!r}: a store reads exactly one slice")

    def row_dram(self, row: int) -> int:
        return self.dram_addr + row * self.dram_stride

    def pack(self, config: DmaConfig) -> int:
        """The command as the integer of ``config.command_layout`` (checked against ``config``)."""
        config.check(self)
        fields = {"dir": DIRECTIONS.index(self.dir), "dram_addr": self.dram_addr, "spad_addr": self.spad_addr,
                  "rows": self.rows, "row_bytes": self.row_bytes, "dram_stride": self.dram_stride,
                  "spad_stride": self.spad_stride, "slice_mask": self.slice_mask}
        value = 0
        for name, field in config.command_layout:
            value |= fields[name] << field.offset
        return value


@dataclass(frozen=True, kw_only=True)
class DmaConfig:
    """Parameters of :class:`Dma`.

    Parameters
    ----------
    bus_bytes : AXI data width (bytes per beat); also the scratchpad run width
    max_burst : beats per burst at most (1 to 256)
    outstanding : bursts in flight at most (reads until their last beat, writes until their response)
    addr_bits : DRAM byte address width (bits)
    elem_bits : scratchpad element width (8, 16 or 32 bits); a run is ``bus_bytes * 8 / elem_bits``
        elements
    spad_addr_bits : scratchpad element address width (bits)
    count_bits : width of the ``rows`` and ``row_bytes`` fields (bits)
    slices : array slices a load may broadcast to (width of ``slice_mask``)
    """

    bus_bytes: int = 8
    max_burst: int = 16
    outstanding: int = 4
    addr_bits: int = 32
    elem_bits: int = 8
    spad_addr_bits: int = 16
    count_bits: int = 16
    slices: int = 1

    def __post_init__(self):
        if self.bus_bytes not in (1, 2, 4, 8, 16, 32, 64, 128):
            raise ValueError(f"bus_bytes {self.bus_bytes!r}: a power of two from 1 to 128")
        if not 1 <= self.max_burst <= 256:
            raise ValueError(f"max_burst {self.max_burst!r}: choose 1 to 256 beats")
        if self.max_burst * self.bus_bytes > BOUNDARY_BYTES:
            raise ValueError(f"max_burst {self.max_burst!r}: a burst of that many beats exceeds 4 KiB")
        if not 1 <= self.outstanding <= 64:
            raise ValueError(f"outstanding {self.outstanding!r}: choose 1 to 64 bursts")
        if not 13 <= self.addr_bits <= 64:
            raise ValueError(f"addr_bits {self.addr_bits!r}: choose 13 to 64")
        if self.elem_bits not in (8, 16, 32) or self.elem_bits > 8 * self.bus_bytes:
            raise ValueError(f"elem_bits {self.elem_bits!r}: 8, 16 or 32, at most the bus width")
        for name in ("spad_addr_bits", "count_bits"):
            if not 1 <= getattr(self, name) <= 32:
                raise ValueError(f"{name} {getattr(self, name)!r}: choose 1 to 32")
        if not 1 <= self.slices <= 32:
            raise ValueError(f"slices {self.slices!r}: choose 1 to 32")

    @property
    def elem_bytes(self) -> int:
        return self.elem_bits // 8

    @property
    def run_elems(self) -> int:
        """Elements in one scratchpad run (one bus beat)."""
        return self.bus_bytes // self.elem_bytes

    @property
    def command_layout(self) -> data.StructLayout:
        return data.StructLayout({
            "dir": 1, "dram_addr": self.addr_bits, "spad_addr": self.spad_addr_bits, "rows": self.count_bits,
            "row_bytes": self.count_bits, "dram_stride": self.addr_bits, "spad_stride": self.spad_addr_bits,
            "slice_mask": self.slices})

    def check(self, cmd: DmaCommand) -> None:
        """Raise ``ValueError`` if ``cmd`` does not fit this engine's fields and alignment."""
        if cmd.rows >= 2**self.count_bits or cmd.row_bytes >= 2**self.count_bits:
            raise ValueError(f"rows {cmd.rows!r} / row_bytes {cmd.row_bytes!r}: at most {2**self.count_bits - 1}")
        if cmd.slice_mask >= 2**self.slices:
            raise ValueError(f"slice_mask {cmd.slice_mask!r}: this engine has {self.slices} slice(s)")
        last_dram = cmd.row_dram(cmd.rows - 1) + cmd.row_bytes
        if last_dram > 2**self.addr_bits:
            raise ValueError(f"dram_addr {cmd.dram_addr!r}: the transfer ends past the {self.addr_bits}-bit space")
        last_spad = cmd.spad_addr + (cmd.rows - 1) * cmd.spad_stride + cmd.row_bytes // self.elem_bytes
        if last_spad > 2**self.spad_addr_bits:
            raise ValueError(f"spad_addr {cmd.spad_addr!r}: the transfer ends past the scratchpad address space")
        for name in ("dram_addr", "row_bytes", "dram_stride"):
            if getattr(cmd, name) % self.elem_bytes:
                raise ValueError(f"{name} {getattr(cmd, name)!r}: a multiple of the {self.elem_bytes}-byte element")

    def row_beats(self, cmd: DmaCommand, row: int) -> int:
        """Bus beats covering row ``row``."""
        offset = cmd.row_dram(row) % self.bus_bytes
        return -(-(offset + cmd.row_bytes) // self.bus_bytes)

    def bursts(self, cmd: DmaCommand) -> list[tuple[int, int]]:
        """``(byte address, beats)`` of every burst of ``cmd``, in issue order."""
        self.check(cmd)
        out = []
        for row in range(cmd.rows):
            addr = cmd.row_dram(row) - cmd.row_dram(row) % self.bus_bytes
            left = self.row_beats(cmd, row)
            while left:
                to_boundary = (BOUNDARY_BYTES - addr % BOUNDARY_BYTES) // self.bus_bytes
                beats = min(self.max_burst, left, to_boundary)
                out.append((addr, beats))
                addr += beats * self.bus_bytes
                left -= beats
        return out

    def cycles(self, cmd: DmaCommand, memory: MemoryModel) -> int:
        """Cycles from accepting ``cmd`` until the DMA is ready again (:meth:`burst_cycles`; in
        closed form, :func:`stream_cycles`, where its bursts are all of one length)."""
        bursts = self.bursts(cmd)
        if len({beats for _, beats in bursts}) == 1:
            return int(stream_cycles(cmd.dir == "load", len(bursts), bursts[0][1], self.outstanding,
                                     memory.read_latency, memory.write_latency, memory.period))
        return self.burst_cycles(cmd, memory)

    def burst_cycles(self, cmd: DmaCommand, memory: MemoryModel) -> int:
        """Cycles from accepting ``cmd`` until the DMA is ready again, all its writes done, over
        ``memory`` (exact: the engine's issue rules of the module docstring, burst by burst).

        Burst ``j`` (``n_j`` beats) has its address handshake in ``a_j = max(a_{j-1} + 1,
        d_{j-N} + 1)`` (``a_0 = 1``, ``N = outstanding``, ``d_j``: the cycle burst ``j`` is done,
        its last beat for a load, its response for a store). Its first beat passes in the first
        data slot from ``max(e_j, x_{j-1} + 1)`` (``x_j``: burst ``j``'s last beat, one slot per
        beat: ``x_j = first + (n_j - 1) * period``), where ``e_j`` is ``a_j + read_latency`` for a
        load and ``a_j + 1`` for a store (a burst's W beats follow its address), and at least 3
        for a store's first beat (the scratchpad read in cycle 1, its data in the buffer in 3).
        A store's buffer never holds the W channel up after that: the read of beat ``k`` goes
        out once beat ``k - 2`` has left, two cycles before beat ``k - 1`` can follow it. Loads:
        ``d_j = x_j``; stores: ``d_j = x_j + write_latency``. Ready in ``d_last + 1``.
        """
        load = cmd.dir == "load"
        latency = memory.read_latency if load else 1
        addr_cycle = last_beat = 0
        done: list[int] = []
        for j, (_, beats) in enumerate(self.bursts(cmd)):
            addr_cycle = max(addr_cycle + 1, done[j - self.outstanding] + 1 if j >= self.outstanding else 0)
            earliest = max(addr_cycle + latency, last_beat + 1, 0 if load else STORE_FIRST_BEAT)
            last_beat = memory.slot(earliest) + (beats - 1) * memory.period
            done.append(last_beat if load else last_beat + memory.write_latency)
        return done[-1] + 1


def stream_cycles(load, bursts, beats, outstanding, read_latency, write_latency, period):
    """:meth:`DmaConfig.burst_cycles` of ``bursts`` bursts of ``beats`` beats each, in closed
    form (numpy: any argument an array).

    The first ``outstanding`` (``N``) bursts' beats follow each other from the first data slot
    ``f`` (``slot(1 + read_latency)`` for a load, ``slot(3)`` for a store); burst ``j >= N``
    waits for burst ``j - N`` to be done (its address handshake the cycle after), so it ends
    ``W = slot(lag) + (beats - 1) * period`` after it (``lag``: ``1 + read_latency`` for a load,
    ``2 + write_latency`` for a store), or ``N * beats * period`` later where the data slots are
    the bound. Burst ``k N + i`` ends at ``f + ((i + 1) beats - 1) period + k max(W, N beats
    period)``; ready the cycle after (a store: after its response)."""
    load = np.asarray(load, dtype=bool)
    slot = lambda cycle: -(-np.asarray(cycle) // period) * period  # noqa: E731
    first = np.where(load, slot(1 + read_latency), slot(STORE_FIRST_BEAT))
    lag = np.where(load, slot(1 + read_latency), slot(2 + write_latency))
    wave = np.maximum(lag + (beats - 1) * period, outstanding * beats * period)
    k, i = np.divmod(np.asarray(bursts) - 1, outstanding)
    last = first + ((i + 1) * beats - 1) * period + k * wave
    return last + np.where(load, 0, write_latency) + 1


def spad_write_signature(config: DmaConfig) -> wiring.Signature:
    """The DMA's scratchpad write port (outputs): in a cycle with ``en``, elements ``addr + i``
    take ``data`` lane ``i`` (``elem_bits`` each) where ``mask[i]`` is set, in the scratchpads of
    the slices of ``slices``."""
    return wiring.Signature({"en": Out(1), "addr": Out(config.spad_addr_bits), "data": Out(8 * config.bus_bytes),
                             "mask": Out(config.run_elems), "slices": Out(config.slices)})


def spad_read_signature(config: DmaConfig) -> wiring.Signature:
    """The DMA's scratchpad read port: ``en`` and ``addr`` (a run of ``run_elems`` elements) in one
    cycle, ``data`` (lane ``i`` = element ``addr + i``) driven by the scratchpad in the next."""
    return wiring.Signature({"en": Out(1), "addr": Out(config.spad_addr_bits), "data": In(8 * config.bus_bytes),
                             "slices": Out(config.slices)})


class _RowWalk:
    """Registers that walk the beats of a command in order (row by row), and what each beat is:
    its byte ``shift`` in the bus word (the row's offset on its first beat, else 0), ``count``
    (row bytes it carries) and the scratchpad element address of its first byte."""

    def __init__(self, m: Module, config: DmaConfig, cmd, name: str):
        c = config
        self.c, self.m = c, m
        self.rows_left = Signal(c.count_bits, name=f"{name}_rows_left")
        self.row_addr = Signal(c.addr_bits, name=f"{name}_row_addr")
        self.spad_row = Signal(c.spad_addr_bits, name=f"{name}_spad_row")
        self.offset = Signal(c.count_bits, name=f"{name}_offset")  # row bytes before this beat's first
        self.shift = Signal(range(c.bus_bytes), name=f"{name}_shift")
        self.count = Signal(range(c.bus_bytes + 1), name=f"{name}_count")
        self.spad_addr = Signal(c.spad_addr_bits, name=f"{name}_spad_addr")
        self.row_end = Signal(name=f"{name}_row_end")
        self.last = Signal(name=f"{name}_last")
        self.cmd = cmd
        remaining = Signal(c.count_bits, name=f"{name}_remaining")
        room = Signal(range(c.bus_bytes + 1), name=f"{name}_room")
        m.d.comb += [
            remaining.eq(cmd.row_bytes - self.offset),
            room.eq(c.bus_bytes - self.shift),
            self.count.eq(Mux(remaining < room, remaining, room)),
            self.row_end.eq(remaining <= room),
            self.last.eq(self.row_end & (self.rows_left == 1)),
            self.spad_addr.eq(self.spad_row + (self.offset >> _log2(c.elem_bytes))),
        ]

    def start(self, cmd) -> list:
        return [self.rows_left.eq(cmd.rows), self.row_addr.eq(cmd.dram_addr), self.spad_row.eq(cmd.spad_addr),
                self.offset.eq(0), self.shift.eq(cmd.dram_addr[:_log2(self.c.bus_bytes)])]

    def advance(self) -> None:
        """Move to the next beat (call under the condition that the current one is taken)."""
        m, cmd = self.m, self.cmd
        with m.If(self.row_end):
            next_row = self.row_addr + cmd.dram_stride
            m.d.sync += [self.rows_left.eq(self.rows_left - 1), self.row_addr.eq(next_row),
                         self.spad_row.eq(self.spad_row + cmd.spad_stride), self.offset.eq(0),
                         self.shift.eq(next_row[:_log2(self.c.bus_bytes)])]
        with m.Else():
            m.d.sync += [self.offset.eq(self.offset + self.c.bus_bytes - self.shift), self.shift.eq(0)]


class Dma(wiring.Component):
    """The DMA unit (tile spec section 5): a unit command port (``cmd``, ``busy``; see
    :mod:`peforge.hw.tile.unit`), the AXI4 master ``m_axi``, the scratchpad ports ``spad_w``
    (:func:`spad_write_signature`) and ``spad_r`` (:func:`spad_read_signature`).

    Response codes (``rresp``, ``bresp``) are not checked.
    """

    def __init__(self, config: DmaConfig):
        self.config = config
        super().__init__({**unit_ports(config.command_layout),
                          "m_axi": Out(Axi4Signature(addr_bits=config.addr_bits, data_bytes=config.bus_bytes)),
                          "spad_w": Out(spad_write_signature(config)),
                          "spad_r": Out(spad_read_signature(config))})

    def elaborate(self, platform) -> Module:
        c = self.config
        m = Module()
        bus = self.m_axi
        lg_bus = _log2(c.bus_bytes)

        running = Signal()
        cmd = Signal(c.command_layout)
        store = Signal()
        m.d.comb += [self.cmd.ready.eq(~running), self.busy.eq(running), store.eq(cmd.dir)]
        accept = self.cmd.valid & self.cmd.ready

        # --- burst addresses: one per cycle while fewer than `outstanding` are in flight ---------
        in_flight = Signal(range(c.outstanding + 1))
        bursts_left_rows = Signal(c.count_bits)  # rows with bursts still to issue
        row_addr = Signal(c.addr_bits)
        addr = Signal(c.addr_bits)  # bus-aligned address of the next burst
        beats_left = Signal(c.count_bits + 1)  # beats of this row not yet in a burst
        to_boundary = Signal(range(BOUNDARY_BYTES // c.bus_bytes + 1))
        length = Signal(9)
        m.d.comb += to_boundary.eq((BOUNDARY_BYTES - addr[:12]) >> lg_bus)
        capped = Mux(beats_left < c.max_burst, beats_left, c.max_burst)
        m.d.comb += length.eq(Mux(to_boundary < capped, to_boundary, capped))

        def row_start(row, row_bytes):  # aligned address and beat count of the row at byte address `row`
            beats = (row[:lg_bus] + row_bytes + c.bus_bytes - 1) >> lg_bus
            return [addr.eq(Cat(Const(0, lg_bus), row[lg_bus:])), beats_left.eq(beats)]

        issue = Signal()
        addr_valid = running & (bursts_left_rows != 0) & (in_flight < c.outstanding)
        for ch in ("ar", "aw"):
            is_ch = ~store if ch == "ar" else store
            m.d.comb += [getattr(bus, f"{ch}addr").eq(addr), getattr(bus, f"{ch}len").eq(length - 1),
                         getattr(bus, f"{ch}size").eq(lg_bus), getattr(bus, f"{ch}burst").eq(BURST_INCR),
                         getattr(bus, f"{ch}valid").eq(addr_valid & is_ch)]
        m.d.comb += issue.eq(addr_valid & Mux(store, bus.awready, bus.arready))
        with m.If(issue):
            with m.If(beats_left == length):  # the row's last burst
                next_row = row_addr + cmd.dram_stride
                m.d.sync += [bursts_left_rows.eq(bursts_left_rows - 1), row_addr.eq(next_row),
                             *row_start(next_row, cmd.row_bytes)]
            with m.Else():
                m.d.sync += [addr.eq(addr + (length << lg_bus)), beats_left.eq(beats_left - length)]

        # --- bursts in flight: a read until its last beat, a write until its response ---------
        retire = Signal()
        m.d.comb += retire.eq(Mux(store, bus.bvalid & bus.bready, bus.rvalid & bus.rready & bus.rlast))
        m.d.sync += in_flight.eq(in_flight + issue - retire)

        walk = _RowWalk(m, c, cmd, "walk")
        finish = Signal()

        # --- load: every R beat straight into the scratchpad ---------------------------------
        m.d.comb += bus.rready.eq(running & ~store)
        beat_in = bus.rvalid & bus.rready
        lane_mask = Signal(c.run_elems)
        m.d.comb += lane_mask.eq(Cat(((walk.count >> _log2(c.elem_bytes)) > i) for i in range(c.run_elems)))
        m.d.comb += [self.spad_w.en.eq(beat_in), self.spad_w.addr.eq(walk.spad_addr),
                     self.spad_w.data.eq(bus.rdata >> (walk.shift << 3)), self.spad_w.mask.eq(lane_mask),
                     self.spad_w.slices.eq(cmd.slice_mask)]
        with m.If(beat_in):
            walk.advance()
            with m.If(walk.last):
                m.d.comb += finish.eq(1)

        # --- store: scratchpad runs through a 2-entry buffer to W, a burst after its address --
        m.submodules.buffer = buffer = SyncFIFO(width=8 * c.bus_bytes + len(walk.shift) + len(walk.count), depth=2)
        m.submodules.lengths = lengths = SyncFIFO(width=9, depth=c.outstanding)
        pending = Signal()  # a scratchpad read issued last cycle: its data is on spad_r.data now
        pending_meta = Signal(len(walk.shift) + len(walk.count))
        reads_left = Signal()  # beats not yet read from the scratchpad
        w_beat = Signal(8)  # beats of the current burst sent
        w_take = Signal()
        head_data = buffer.r_data[:8 * c.bus_bytes]
        head_shift = buffer.r_data[8 * c.bus_bytes:][:len(walk.shift)]
        head_count = buffer.r_data[8 * c.bus_bytes + len(walk.shift):]
        strobe = Signal(c.bus_bytes)
        m.d.comb += strobe.eq(Cat((head_count > i) for i in range(c.bus_bytes)))
        m.d.comb += [
            lengths.w_en.eq(issue & store), lengths.w_data.eq(length),
            bus.wvalid.eq(running & store & buffer.r_rdy & lengths.r_rdy),
            bus.wdata.eq(head_data << (head_shift << 3)), bus.wstrb.eq(strobe << head_shift),
            bus.wlast.eq(w_beat == lengths.r_data - 1),
            w_take.eq(bus.wvalid & bus.wready),
            buffer.r_en.eq(w_take), lengths.r_en.eq(w_take & bus.wlast),
            buffer.w_en.eq(pending), buffer.w_data.eq(Cat(self.spad_r.data, pending_meta)),
            bus.bready.eq(running & store),
        ]
        with m.If(w_take):
            m.d.sync += w_beat.eq(Mux(bus.wlast, 0, w_beat + 1))
        read_now = running & store & reads_left & (buffer.level + pending < 2 + w_take)
        m.d.comb += [self.spad_r.en.eq(read_now), self.spad_r.addr.eq(walk.spad_addr),
                     self.spad_r.slices.eq(cmd.slice_mask)]
        m.d.sync += pending.eq(read_now)
        with m.If(read_now):
            m.d.sync += pending_meta.eq(Cat(walk.shift, walk.count))
            walk.advance()
            with m.If(walk.last):
                m.d.sync += reads_left.eq(0)
        with m.If(store & retire & (bursts_left_rows == 0) & (in_flight == 1)):
            m.d.comb += finish.eq(1)

        # --- command accept and completion -------------------------------------------------
        with m.If(accept):
            payload = self.cmd.payload
            m.d.sync += [running.eq(1), cmd.eq(payload), bursts_left_rows.eq(payload.rows),
                         row_addr.eq(payload.dram_addr), reads_left.eq(1), w_beat.eq(0), *walk.start(payload),
                         *row_start(payload.dram_addr, payload.row_bytes)]
        with m.If(finish):
            m.d.sync += running.eq(0)
        return m


def transfer_golden(cmd: DmaCommand, dram: bytearray, spad: bytearray, elem_bytes: int) -> None:
    """Apply ``cmd`` to ``dram`` (bytes by address) and ``spad`` (element ``e`` in bytes
    ``[e * elem_bytes, (e + 1) * elem_bytes)``, little-endian) in place, row by row."""
    for r in range(cmd.rows):
        d = cmd.row_dram(r)
        s = (cmd.spad_addr + r * cmd.spad_stride) * elem_bytes
        if cmd.dir == "load":
            spad[s:s + cmd.row_bytes] = dram[d:d + cmd.row_bytes]
        else:
            dram[d:d + cmd.row_bytes] = spad[s:s + cmd.row_bytes]
