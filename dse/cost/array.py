"""The systolic arrays of many designs as numpy columns, for the RTL array's own cycle formula.

The formula is :func:`peforge.hw.systolic.gemm_cycles` (the closed form the RTL array matches
exactly; ``tests/rtl/test_costmodel_exact.py`` and the Verilator property test check it on
simulated arrays); this module only lays each design's array and PE figures
(:meth:`peforge.hw.pe.protocol.PeConfigBase.figures`) out as ``(designs, 1, 1)`` columns that
broadcast against a workload's ``(steps, rows)`` shapes. Nothing here knows a PE kind.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from ...hw.pe.protocol import beat_cycles
from ...hw.systolic import gemm_cycles as rtl_gemm_cycles
from ..design.point import Compute


@dataclass(frozen=True)
class ArrayShape:
    """Each design's array and PE figures, as ``(designs, 1, 1)`` columns (units as in
    :class:`peforge.hw.pe.protocol.PeFigures`); ``ws``: weight-stationary, else output-stationary."""

    rows: np.ndarray
    cols: np.ndarray
    ws: np.ndarray
    lanes: np.ndarray
    a_bits: np.ndarray
    max_w_bits: np.ndarray
    k_bits: np.ndarray
    ws_edge_stages: np.ndarray
    os_latency_base: np.ndarray
    max_reduction: np.ndarray

    def beat_cycles(self, w_bits) -> np.ndarray:
        """Cycles per beat at weight precision ``w_bits`` (bit-serial: ceil(w_bits / k), else 1)."""
        return beat_cycles(w_bits, k_bits=self.k_bits, max_w_bits=self.max_w_bits)

    @property
    def peak_macs_per_cycle(self) -> np.ndarray:
        """MACs per cycle of each array at the PE's narrowest precision (2-bit weights)."""
        return self.rows * self.cols * self.lanes / self.beat_cycles(2)


_FIGURES = [f.name for f in fields(ArrayShape) if f.name not in ("rows", "cols", "ws")]


def array_shapes(computes: Sequence[Compute]) -> ArrayShape:
    figures = [c.pe_config.figures() for c in computes]
    col = lambda values: np.asarray(values, dtype=np.float64)[:, None, None]  # noqa: E731
    return ArrayShape(
        rows=col([c.rows for c in computes]), cols=col([c.cols for c in computes]),
        ws=np.array([c.dataflow == "ws" for c in computes])[:, None, None],
        **{name: col([getattr(f, name) for f in figures]) for name in _FIGURES})


def gemm_cycles(shape: ArrayShape, m, k, n, w_bits) -> np.ndarray:
    """Cycles of ``(m x k) @ (k x n)`` at weight precision ``w_bits`` on each design's array."""
    m, k, n = (np.asarray(v, dtype=np.float64) for v in (m, k, n))
    t = shape.beat_cycles(w_bits)
    os_latency = shape.os_latency_base + np.where(shape.k_bits > 0, t, 0)
    return rtl_gemm_cycles(rows=shape.rows, cols=shape.cols, ws=shape.ws, lanes=shape.lanes, beat_cycles=t,
                           edge=shape.ws_edge_stages, os_latency=os_latency, m=m, k=k, n=n)
