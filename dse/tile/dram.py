"""The DRAM image of a compiled layer: where each named tensor lives and in which layout.

A tensor is stored with elements of 1 byte (at most 8 bits) or 4 bytes (wider), little-endian
two's complement: the bytes the DMA moves into an 8-bit or a 32-bit scratchpad. Two layouts:

``rows``
    row-major, the last axis contiguous (activations, accumulators, constant tables, caches).
``tiles``
    a weight ``[N][K]`` cut into the tiles the compiler loads, each stored as the scratchpad
    image of that tile (rows at the weight scratchpad's skewed pitch, padding zero), so one linear
    DMA lands it where the GEMM engine reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ALIGN", "Tile", "Symbol", "storage_bytes"]

ALIGN = 64  # bytes: each tensor and packed tile starts on a boundary of whole bus beats (buses up to 64 bytes)


def storage_bytes(bits: int) -> int:
    """Bytes of one element of a ``bits``-bit signed tensor in DRAM: 1 or 4."""
    if not 1 <= bits <= 32:
        raise ValueError(f"storage_bytes: tensors of 1..32 bits, not {bits!r}")
    return 1 if bits <= 8 else 4


@dataclass(frozen=True)
class Tile:
    """One packed weight tile: rows ``n0 .. n1 - 1`` and columns ``k0 .. k1 - 1`` at ``addr``,
    row ``n`` starting ``(n - n0) * pitch`` elements after it; ``size`` bytes in all."""

    n0: int
    n1: int
    k0: int
    k1: int
    addr: int
    pitch: int
    size: int


@dataclass(frozen=True)
class Symbol:
    """A named tensor in DRAM.

    Parameters
    ----------
    name : str
    addr : int
        Byte address of element 0 (``rows``) or of the first tile (``tiles``).
    shape : tuple of int
    elem_bytes : int
        1 or 4.
    layout : str
        ``rows`` or ``tiles``.
    tiles : tuple of Tile
        The packed tiles (``tiles`` layout), in DRAM order.
    """

    name: str
    addr: int
    shape: tuple[int, ...]
    elem_bytes: int
    layout: str = "rows"
    tiles: tuple[Tile, ...] = ()

    @property
    def size(self) -> int:
        """Bytes it occupies."""
        if self.layout == "tiles":
            return sum(t.size for t in self.tiles)
        return int(np.prod(self.shape)) * self.elem_bytes

    @property
    def row_bytes(self) -> int:
        """Bytes from one row (last axis) to the next (``rows`` layout)."""
        return self.shape[-1] * self.elem_bytes

    def address(self, *index: int) -> int:
        """Byte address of the element at ``index`` (leading indices; the rest 0), ``rows`` layout."""
        flat = 0
        for i, size in enumerate(self.shape):
            flat = flat * size + (index[i] if i < len(index) else 0)
        return self.addr + flat * self.elem_bytes

    def _dtype(self) -> str:
        return "<i1" if self.elem_bytes == 1 else "<i4"

    def write(self, dram: bytearray, value) -> None:
        """Store ``value`` (integers of :attr:`shape`) into ``dram`` in this symbol's layout."""
        value = np.asarray(value, dtype=np.int64)
        if value.shape != self.shape:
            raise ValueError(f"{self.name}: a value of shape {value.shape} for a tensor of shape {self.shape}")
        low, high = -(1 << (8 * self.elem_bytes - 1)), 1 << (8 * self.elem_bytes - 1)
        if value.size and (value.min() < low or value.max() >= high):
            raise ValueError(f"{self.name}: values outside {self.elem_bytes}-byte signed integers")
        if self.layout == "rows":
            dram[self.addr:self.addr + self.size] = value.astype(self._dtype()).tobytes()
            return
        for t in self.tiles:
            image = np.zeros(t.size, dtype=np.int64)
            for n in range(t.n0, t.n1):
                start = (n - t.n0) * t.pitch
                image[start:start + t.k1 - t.k0] = value[n, t.k0:t.k1]
            dram[t.addr:t.addr + t.size] = image.astype("<i1").tobytes()

    def read(self, dram: bytes) -> np.ndarray:
        """The tensor held in ``dram``, ``int64``."""
        if self.layout == "rows":
            raw = np.frombuffer(bytes(dram[self.addr:self.addr + self.size]), dtype=self._dtype())
            return raw.astype(np.int64).reshape(self.shape)
        out = np.zeros(self.shape, dtype=np.int64)
        for t in self.tiles:
            image = np.frombuffer(bytes(dram[t.addr:t.addr + t.size]), dtype="<i1").astype(np.int64)
            for n in range(t.n0, t.n1):
                start = (n - t.n0) * t.pitch
                out[n, t.k0:t.k1] = image[start:start + t.k1 - t.k0]
        return out
