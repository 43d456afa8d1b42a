"""A functional model of the tile running a compiled program: the compiler's golden before any RTL.

The DRAM is a ``bytearray``; the scratchpads are one integer array in the vector unit's tile
element address space (:meth:`TileConfig.spad_base <peforge.hw.tile.config.TileConfig.spad_base>`),
every element held as its scratchpad stores it (wrapped to its width). Commands take effect in
program order: the DMA copies bytes (an element of ``e`` bytes little-endian, two's complement),
a GEMM is :func:`peforge.hw.systolic.systolic_gemm` of the operands its command addresses, written
or added (32-bit wrap) into the output scratchpad, a vector command is the unit's golden model
(:func:`peforge.hw.tile.vector.execute`).

Program order is what the hardware computes only if no two commands that overlap in time touch
the same scratchpad elements with one of them writing, nor share a scratchpad's access port (the
DMA's transfers and the vector unit's writes share one; the vector unit reads on ports of its
own, a GEMM engine has its own per-bank ports):
:func:`interpret` checks that on the program's timeline (every unit's exact ``cycles``, the DMA's
for ``memory``), from what each command's own fields address, and raises :class:`RaceError`
otherwise (a missing ``Wait``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...hw.systolic import systolic_gemm
from ...hw.tile import vector
from ...hw.tile.config import SPAD_ID_BITS, SPADS, TileConfig
from ...hw.tile.dma import DmaCommand, MemoryModel
from ...hw.tile.gemm import GemmCommand
from ...hw.tile.isa import Issue, program_timeline
from ...hw.tile.rules import regions
from ...hw.tile.vector import VectorCommand
from .compiler import Compiled

__all__ = ["RaceError", "TileState", "interpret", "accesses", "check_races"]


class RaceError(ValueError):
    """Two commands running at once touch the same scratchpad elements, one of them writing."""


def _wrap(values: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64) & ((1 << bits) - 1)
    return values - ((values >> (bits - 1)) << bits) if signed else values


@dataclass
class TileState:
    """DRAM bytes and every scratchpad of a tile."""

    tile: TileConfig
    dram: bytearray
    spads: np.ndarray

    @classmethod
    def start(cls, tile: TileConfig, dram: bytearray) -> TileState:
        return cls(tile, bytearray(dram), np.zeros((tile.arrays << SPAD_ID_BITS) << tile.offset_bits, dtype=np.int64))

    def view(self, slice_: int, spad: str) -> np.ndarray:
        """The linear element space of one scratchpad (a view: writes go through)."""
        base = self.tile.spad_base(slice_, spad)
        return self.spads[base:base + self.tile.spads[spad].elements]

    # --- the units ---------------------------------------------------------------------------

    def dma(self, cmd: DmaCommand) -> None:
        tile = self.tile
        spad = SPADS[cmd.spad_addr >> tile.offset_bits]
        config, eb = tile.spads[spad], tile.element_bytes(spad)
        offset = cmd.spad_addr & ((1 << tile.offset_bits) - 1)
        slices = [s for s in range(tile.arrays) if cmd.slice_mask >> s & 1]
        for row in range(cmd.rows):
            start, dram = offset + row * cmd.spad_stride, cmd.dram_addr + row * cmd.dram_stride
            if start % eb or cmd.row_bytes % eb:
                raise ValueError(f"DMA row {row} at byte {start} of {cmd.row_bytes} splits {eb}-byte {spad} elements")
            lo, count = start // eb, cmd.row_bytes // eb
            if lo + count > config.elements or dram + cmd.row_bytes > len(self.dram):
                raise ValueError(f"DMA row {row} runs past the {spad} scratchpad or the DRAM")
            for s in slices:
                view = self.view(s, spad)
                if cmd.dir == "load":
                    raw = np.frombuffer(bytes(self.dram[dram:dram + cmd.row_bytes]), dtype=f"<i{eb}")
                    view[lo:lo + count] = _wrap(raw.astype(np.int64), config.element_bits, config.signed)
                else:
                    codes = view[lo:lo + count] & ((1 << (8 * eb)) - 1)  # sign- or zero-extended element
                    self.dram[dram:dram + cmd.row_bytes] = codes.astype(f"<u{eb}").tobytes()

    def gemm(self, slice_: int, cmd: GemmCommand) -> None:
        g = self.tile.gemm
        g.check(cmd)
        a = g.act.unpack(self.view(slice_, "act"), cmd.a_base, cmd.a_pitch, cmd.m, cmd.k)
        b_t = g.weight.unpack(self.view(slice_, "weight"), cmd.b_base, cmd.b_pitch, cmd.n, cmd.k)
        array = g.array
        meta = None if g.meta is None else g.meta_fields(
            g.meta.unpack(self.view(slice_, "meta"), cmd.meta_base, cmd.meta_pitch, cmd.n, g.groups(cmd.k)))
        c = systolic_gemm(a, b_t.T, array.pe_config, acc_bits=array.acc_bits, w_bits=cmd.w_bits, rows=array.rows,
                          dataflow=array.dataflow, meta=meta)
        c = np.asarray(c, dtype=np.int64)
        out = self.view(slice_, "out")
        for row in range(cmd.m):
            start = g.out.element_address(cmd.c_base, cmd.c_pitch, row, 0)
            value = c[row] + (out[start:start + cmd.n] if cmd.accumulate else 0)
            out[start:start + cmd.n] = _wrap(value, g.out.element_bits, True)

    def vector(self, cmd: VectorCommand) -> None:
        self.spads[:] = vector.execute(cmd, self.spads)
        for s in range(self.tile.arrays):  # each scratchpad keeps its elements' width
            for name, config in self.tile.spads.items():
                view = self.view(s, name)
                view[:] = _wrap(view, config.element_bits, config.signed)


# --- what each command touches, from its own fields ----------------------------------------------


def _vector_span(tile: TileConfig, address: int, rows: int, pitch: int, length: int):
    bits = tile.offset_bits
    slice_, spad = address >> (bits + SPAD_ID_BITS), SPADS[(address >> bits) & 3]
    offset = address & ((1 << bits) - 1)
    return (slice_, spad, offset, offset + (rows - 1) * pitch + length)


def accesses(tile: TileConfig, slot: str, cmd) -> tuple[list[tuple], list[tuple]]:
    """``(reads, writes)`` of a command: ``(slice, scratchpad, first element, end)`` ranges, as the
    tile's rules read its fields (:func:`peforge.hw.tile.rules.regions`)."""
    found = regions(tile, slot, cmd)
    return ([(r.slice, r.spad, r.start, r.end) for r in found if not r.writes],
            [(r.slice, r.spad, r.start, r.end) for r in found if r.writes])


def _touch(x: tuple, y: tuple) -> bool:
    return x[0] == y[0] and x[1] == y[1] and x[2] < y[3] and y[2] < x[3]


def _shared_ports(slot: str, reads, writes) -> set:
    """The shared access ports a command uses: the DMA's scratchpads, the vector unit's destination."""
    if slot == "dma":
        return {r[:2] for r in (*reads, *writes)}
    return {w[:2] for w in writes} if slot == "vec" else set()


def check_races(compiled: Compiled, memory: MemoryModel) -> None:
    """Raise :class:`RaceError` for the first pair of commands of different units that run at once
    on the timeline and conflict (see the module docstring)."""
    tile = compiled.tile
    timeline = program_timeline(compiled.program, lambda slot, cmd: tile.unit_cycles(slot, cmd, memory))
    running: list[tuple[int, int, str, list, list]] = []  # completed, index, slot, reads, writes
    for step in timeline.steps:
        ins = step.instruction
        if not isinstance(ins, Issue):
            continue
        running = [r for r in running if r[0] > step.issued]
        reads, writes = accesses(tile, ins.slot, ins.command)
        ports = _shared_ports(ins.slot, reads, writes)
        for done, index, slot, r_reads, r_writes in running:
            if slot == ins.slot:
                continue
            r_ports = _shared_ports(slot, r_reads, r_writes)
            if ports & r_ports or any(_touch(w, x) for w in writes for x in (*r_reads, *r_writes)) or \
                    any(_touch(w, x) for w in r_writes for x in reads):
                raise RaceError(f"instruction {step.index} ({ins.slot}, {compiled.tags[step.index]}) runs while "
                                f"instruction {index} ({slot}, {compiled.tags[index]}) touches the same elements "
                                f"or scratchpad port")
        running.append((step.completed, step.index, ins.slot, reads, writes))


def interpret(compiled: Compiled, dram: bytearray, memory: MemoryModel | None = None) -> bytearray:
    """The DRAM after ``compiled``'s program runs from ``dram`` (not modified); checks the
    program's timeline over ``memory`` (default :class:`MemoryModel`) for races first."""
    check_races(compiled, memory or MemoryModel())
    state = TileState.start(compiled.tile, dram)
    for ins in compiled.program:
        if not isinstance(ins, Issue):
            continue
        if ins.slot == "dma":
            state.dma(ins.command)
        elif ins.slot == "vec":
            state.vector(ins.command)
        else:
            state.gemm(int(ins.slot.removeprefix("gemm")), ins.command)
    return state.dram
