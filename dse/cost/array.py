"""Cycles of a GEMM on a systolic array of any PE, vectorized over designs and operator shapes.

The closed form of :meth:`peforge.hw.systolic.SystolicConfig.cycles` (the RTL's exact count),
evaluated on numpy arrays and free of the RTL generator's size limits, so the cost model can
price arrays of any size. ``tests/rtl/test_costmodel_exact.py`` checks both agree with the
simulated RTL on random shapes for every PE and dataflow.

With T cycles per beat (1, or ceil(w_bits / k) for the bit-serial PE), ``lanes`` k values per
cell and beat, and R x C cells:

- ws: F = ceil(K / (R·lanes))·ceil(N / C) folds, P = max(M, R), e = 1 for the mixed PE::

      cycles = (R + (F - 1)·P + M - 1 + R + C + e)·T + 1

- os: F = ceil(M / R)·ceil(N / C), Kb = ceil(K / lanes), r = M - (ceil(M / R) - 1)·R,
  P = max(Kb, R, C - 1), L_pe the PE's own latency for one beat::

      cycles = ((F - 1)·P + Kb + r + C - 3)·T + 2 + L_pe
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..design.point import Compute


@dataclass(frozen=True)
class ArrayShape:
    """What the cycle formula needs of each design's array and PE: ``(designs, 1, 1)`` columns.

    ``k_per_cell``: k values a cell takes per beat (the PE's lanes); ``k_bits``: bit-serial
    weight bits per cycle (0: a parallel PE); ``ws``: weight-stationary (else output-stationary);
    ``edge``: the mixed PE's dequantization stage at the bottom edge (ws); ``pe_latency``: the
    PE's cycles from its last beat to its result, less the bit-serial beat itself (os).
    """

    rows: np.ndarray
    cols: np.ndarray
    ws: np.ndarray
    k_per_cell: np.ndarray
    k_bits: np.ndarray
    max_w_bits: np.ndarray
    a_bits: np.ndarray
    edge: np.ndarray
    pe_latency: np.ndarray

    def interval(self, w_bits) -> np.ndarray:
        """Cycles per beat at weight precision ``w_bits`` (bit-serial: ceil(w_bits / k))."""
        w = np.clip(np.asarray(w_bits, dtype=np.float64), 2, self.max_w_bits)
        return np.where(self.k_bits > 0, np.ceil(w / np.maximum(self.k_bits, 1)), 1.0)

    @property
    def peak_macs_per_cycle(self) -> np.ndarray:
        """MACs per cycle of each array at the PE's narrowest precision (2-bit weights)."""
        return self.rows * self.cols * self.k_per_cell / self.interval(2)


def pe_figures(compute: Compute) -> tuple[float, ...]:
    """(lanes, bit-serial k, weight bits, activation bits, edge stage, PE latency) of the PE."""
    return _pe_figures(compute.pe, compute.pe_config)


@functools.lru_cache(maxsize=1024)
def _pe_figures(kind: str, pe) -> tuple[float, ...]:
    if kind == "mac":
        return 1, 0, pe.w_bits, pe.a_bits, 0, pe.cycles(1)
    if kind == "bitserial":
        return pe.lanes, pe.k, pe.max_w_bits, pe.a_bits, 0, pe.latency
    return pe.lanes, 0, pe.w_bits, 8, 1, pe.cycles(1)


def array_shapes(computes: Sequence[Compute]) -> ArrayShape:
    figures = np.array([pe_figures(c) for c in computes], dtype=np.float64)
    col = lambda values: np.asarray(values, dtype=np.float64)[:, None, None]  # noqa: E731
    return ArrayShape(
        rows=col([c.rows for c in computes]), cols=col([c.cols for c in computes]),
        ws=np.array([c.dataflow == "ws" for c in computes])[:, None, None],
        k_per_cell=col(figures[:, 0]), k_bits=col(figures[:, 1]), max_w_bits=col(figures[:, 2]),
        a_bits=col(figures[:, 3]), edge=col(figures[:, 4]), pe_latency=col(figures[:, 5]))


def gemm_cycles(shape: ArrayShape, m, k, n, w_bits) -> np.ndarray:
    """Cycles of ``(m x k) @ (k x n)`` at weight precision ``w_bits`` (arrays broadcast)."""
    m, k, n = (np.asarray(v, dtype=np.float64) for v in (m, k, n))
    r, c, lanes = shape.rows, shape.cols, shape.k_per_cell
    t = shape.interval(w_bits)
    ws_folds = np.ceil(k / (r * lanes)) * np.ceil(n / c)
    ws = (r + (ws_folds - 1) * np.maximum(m, r) + m - 1 + r + c + shape.edge) * t + 1
    row_blocks = np.ceil(m / r)
    os_folds = row_blocks * np.ceil(n / c)
    beats = np.ceil(k / lanes)
    last_rows = m - (row_blocks - 1) * r
    period = np.maximum(np.maximum(beats, r), c - 1)
    pe_latency = shape.pe_latency + np.where(shape.k_bits > 0, t, 0.0)
    os = ((os_folds - 1) * period + beats + last_rows + c - 3) * t + 2 + pe_latency
    return np.where(shape.ws, ws, os)
