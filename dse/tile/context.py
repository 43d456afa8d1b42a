"""The state of one compilation of a layer for the tile: DRAM allocation and symbols, DMA
transfers with the scratchpad regions and ports they touch, bump allocation in the scratchpads."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ...hw.tile.config import TileConfig
from ...hw.tile.dma import DmaCommand
from .dram import ALIGN, Symbol, storage_bytes
from .program import ProgramBuilder, Region

__all__ = ["VECTOR_SLICE", "Context", "Arena", "spad_of"]

VECTOR_SLICE = 0  # the slice whose scratchpads a vector step prefers, and the moves use


def spad_of(symbol: Symbol) -> str:
    """The scratchpad kind a tensor's elements go in: 8-bit ``act``, 32-bit ``out``."""
    return "act" if symbol.elem_bytes == 1 else "out"

@dataclass
class Context:
    """One compilation: the tile, the program being built, the DRAM symbols and constants, the
    steps' plans."""

    tile: TileConfig
    builder: ProgramBuilder
    symbols: dict[str, Symbol]
    constants: dict[str, np.ndarray]
    top: int  # next free DRAM byte
    plans: dict[str, str] = field(default_factory=dict)

    def allocate(self, size: int) -> int:
        addr = self.top
        self.top += -(-size // ALIGN) * ALIGN
        return addr

    def add(self, name: str, shape, bits: int) -> Symbol:
        symbol = Symbol(name=name, addr=0, shape=tuple(int(s) for s in shape), elem_bytes=storage_bytes(bits))
        symbol = replace(symbol, addr=self.allocate(symbol.size))
        self.symbols[name] = symbol
        return symbol

    def constant(self, name: str, value: np.ndarray, bits: int) -> Symbol:
        if name not in self.symbols:
            self.add(name, value.shape, bits)
            self.constants[name] = value
        return self.symbols[name]

    # addresses of scratchpad elements, for the DMA (bytes) and the vector unit (elements)
    def dma_spad(self, spad: str, offset: int) -> int:
        return self.tile.dma_base(spad) + offset * self.tile.element_bytes(spad)

    def vec(self, spad: str, offset: int) -> int:
        return self.tile.spad_base(VECTOR_SLICE, spad) + offset

    def transfer(self, direction: str, *, tag, symbol_addr, spad, offset, rows, elems, dram_stride, pitch, slices,
                 elem_bytes) -> None:
        """A 2-D DMA ``load`` or ``store`` of ``rows`` rows of ``elems`` elements at ``offset`` of
        ``spad`` (row pitch ``pitch`` elements) in every slice of ``slices`` (a store: one), the DRAM
        rows ``dram_stride`` bytes apart from ``symbol_addr``."""
        eb = self.tile.element_bytes(spad)
        if eb != elem_bytes:
            raise ValueError(f"{tag}: {elem_bytes}-byte elements cannot move to or from the {eb}-byte {spad} "
                             f"scratchpad")
        cmd = DmaCommand(dir=direction, dram_addr=symbol_addr, spad_addr=self.dma_spad(spad, offset), rows=rows,
                         row_bytes=elems * eb, dram_stride=dram_stride if rows > 1 else 0,
                         spad_stride=pitch * eb if rows > 1 else 0, slice_mask=sum(1 << s for s in slices))
        touched = [Region(s, spad, offset, offset + (rows - 1) * pitch + elems) for s in slices]
        self.builder.issue("dma", cmd, ports=[(s, spad) for s in slices], tag=tag,
                           **({"writes": touched} if direction == "load" else {"reads": touched}))

    def load(self, **transfer) -> None:
        self.transfer("load", **transfer)

    def store(self, *, slice_: int, **transfer) -> None:
        spad = transfer["spad"]
        self.transfer("store", slices=[slice_], elem_bytes=self.tile.element_bytes(spad), **transfer)


class Arena:
    """Bump allocation of word-aligned regions in each scratchpad of a slice (the same offsets in
    every slice), for one step."""

    def __init__(self, tile: TileConfig):
        self.tile = tile
        self.top = {name: 0 for name in tile.spads}

    def fits(self, needs: dict[str, int]) -> bool:
        return all(self._end(spad, self.top[spad], size) <= self.tile.spads[spad].elements
                   for spad, size in needs.items())

    def _end(self, spad: str, start: int, size: int) -> int:
        w = self.tile.spads[spad].word_elements
        return -(-start // w) * w + size

    def alloc(self, spad: str, size: int, tag: str) -> int:
        w = self.tile.spads[spad].word_elements
        start = -(-self.top[spad] // w) * w
        if start + size > self.tile.spads[spad].elements:
            raise ValueError(f"{tag}: {size} elements do not fit the {spad} scratchpad "
                             f"({self.tile.spads[spad].elements - start} free)")
        self.top[spad] = start + size
        return start
