"""Cycles of a GEMM on a systolic array of any PE, vectorized over designs and operator shapes.

PROVISIONAL: replaced by the exact formula of ``peforge.hw.systolic`` once it lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .accelerator import Compute


@dataclass(frozen=True)
class ArrayShape:
    """What the cycle formula needs of each design's array and PE: ``(designs, 1, 1)`` columns.

    ``k_per_cell``: products a cell adds per beat (the PE's lanes); ``k_bits``: bit-serial
    weight bits per cycle (0: a parallel PE); ``ws``: weight-stationary (else output-stationary).
    """

    rows: np.ndarray
    cols: np.ndarray
    ws: np.ndarray
    k_per_cell: np.ndarray
    k_bits: np.ndarray
    max_w_bits: np.ndarray
    a_bits: np.ndarray
    latency: np.ndarray

    def interval(self, w_bits) -> np.ndarray:
        """Cycles per beat at weight precision ``w_bits``."""
        serial = np.ceil(np.asarray(w_bits, dtype=np.float64) / np.maximum(self.k_bits, 1))
        return np.where(self.k_bits > 0, serial, 1.0)

    @property
    def peak_macs_per_cycle(self) -> np.ndarray:
        """MACs per cycle of each array at the PE's narrowest precision (2-bit weights)."""
        return self.rows * self.cols * self.k_per_cell / self.interval(2)


def _pe_figures(compute: Compute) -> tuple[int, int, int, int, int]:
    """(lanes per cell, bit-serial k, weight bits, activation bits, latency) of the PE."""
    pe = compute.pe_config
    if compute.pe == "mac":
        return 1, 0, pe.w_bits, pe.a_bits, pe.latency
    if compute.pe == "bitserial":
        return pe.lanes, pe.k, pe.max_w_bits, pe.a_bits, pe.latency
    return pe.lanes, 0, pe.w_bits, 8, pe.latency


def array_shapes(computes: Sequence[Compute]) -> ArrayShape:
    figures = np.array([_pe_figures(c) for c in computes], dtype=np.float64)
    col = lambda values: np.asarray(values, dtype=np.float64)[:, None, None]  # noqa: E731
    return ArrayShape(
        rows=col([c.rows for c in computes]), cols=col([c.cols for c in computes]),
        ws=np.array([c.dataflow == "ws" for c in computes])[:, None, None],
        k_per_cell=col(figures[:, 0]), k_bits=col(figures[:, 1]), max_w_bits=col(figures[:, 2]),
        a_bits=col(figures[:, 3]), latency=col(figures[:, 4]))


def gemm_cycles(shape: ArrayShape, m, k, n, w_bits) -> np.ndarray:
    """Cycles of ``(m x k) @ (k x n)`` at weight precision ``w_bits`` (arrays broadcast)."""
    m = np.asarray(m, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    beats = np.ceil(np.asarray(k, dtype=np.float64) / shape.k_per_cell)
    ii = shape.interval(w_bits)
    r, c = shape.rows, shape.cols
    ws_folds = np.ceil(beats / r) * np.ceil(n / c)
    ws = r + ws_folds * np.maximum(m * ii, r) + r + c - 2 + shape.latency
    os_folds = np.ceil(m / r) * np.ceil(n / c)
    os = os_folds * np.maximum(beats * ii, r + c - 1) + r + c - 2 + shape.latency
    return np.where(shape.ws, ws, os)
