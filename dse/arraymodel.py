"""Cycles of a GEMM on a systolic array of any PE, vectorized over operator shapes.

PROVISIONAL: replaced by the exact formula of ``peforge.hw.systolic`` once it lands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .accelerator import Compute


@dataclass(frozen=True)
class ArrayShape:
    """What the cycle formula needs of an array and its PE."""

    rows: int
    cols: int
    dataflow: str
    k_per_cell: int  # products one cell adds per beat (the PE's lanes)
    k_bits: int  # bit-serial: weight bits per cycle (0: parallel PE)
    max_w_bits: int
    a_bits: int
    latency: int

    def interval(self, w_bits):
        """Cycles per beat at weight precision ``w_bits``."""
        if self.k_bits:
            return np.ceil(np.asarray(w_bits) / self.k_bits)
        return np.ones_like(np.asarray(w_bits, dtype=np.float64))

    @property
    def peak_macs_per_cycle(self) -> float:
        """MACs per cycle of the whole array at the PE's narrowest precision (2-bit weights)."""
        return self.rows * self.cols * self.k_per_cell / float(self.interval(2))


def array_shape(compute: Compute) -> ArrayShape:
    pe = compute.pe_config
    if compute.pe == "mac":
        return ArrayShape(compute.rows, compute.cols, compute.dataflow, 1, 0, pe.w_bits, pe.a_bits, pe.latency)
    if compute.pe == "bitserial":
        return ArrayShape(compute.rows, compute.cols, compute.dataflow, pe.lanes, pe.k, pe.max_w_bits, pe.a_bits,
                          pe.latency)
    return ArrayShape(compute.rows, compute.cols, compute.dataflow, pe.lanes, 0, pe.w_bits, 8, pe.latency)


def gemm_cycles(shape: ArrayShape, m, k, n, w_bits) -> np.ndarray:
    """Cycles of ``(m x k) @ (k x n)`` at weight precision ``w_bits`` (arrays broadcast)."""
    m = np.asarray(m, dtype=np.float64)
    beats = np.ceil(np.asarray(k, dtype=np.float64) / shape.k_per_cell)
    ii = shape.interval(w_bits)
    r, c = shape.rows, shape.cols
    if shape.dataflow == "ws":
        folds = np.ceil(beats / r) * np.ceil(np.asarray(n) / c)
        return r + folds * np.maximum(m * ii, r) + r + c - 2 + shape.latency
    folds = np.ceil(m / r) * np.ceil(np.asarray(n) / c)
    return folds * np.maximum(beats * ii, r + c - 1) + r + c - 2 + shape.latency
